//! execute-api ARNs: the API prefix a mapping names, and the methodArn (or HTTP API routeArn)
//! a request carries.
//!
//! ```text
//! arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev/GET/orders/7
//! \______________ ApiArn / MethodArn::api() _________/ stage method resource
//! ```
//!
//! [`MethodArn::parse`] runs on every invocation, so it borrows from the event and does not
//! allocate (only the error path does, to carry the offending input).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The AWS partitions whose execute-api ARNs scopegate accepts.
const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

/// The longest API id accepted. API Gateway's own ids are 10 lowercase alphanumerics; the
/// margin tolerates test and demo placeholders such as the seed's `my-api-gw`.
const MAX_API_ID: usize = 64;

/// What exactly is wrong with an ARN, so that the message can say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArnProblem {
    /// The text does not start with `arn:`.
    #[error("it does not start with `arn:`")]
    NotAnArn,
    /// The partition is not one scopegate knows.
    #[error("the partition must be aws, aws-cn or aws-us-gov")]
    Partition,
    /// The service is not `execute-api`.
    #[error("the service must be execute-api")]
    Service,
    /// The region does not look like `us-east-1`.
    #[error("the region must look like us-east-1")]
    Region,
    /// The account is not 12 digits.
    #[error("the account must be 12 digits")]
    Account,
    /// The API id is empty, too long, or has characters outside `[A-Za-z0-9_-]`.
    #[error("the API id must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -")]
    ApiId,
    /// An API ARN was given a `/stage/...` suffix.
    #[error("an API ARN ends at the API id, without /stage/method/resource")]
    TrailingPath,
    /// A methodArn has nothing after the API id.
    #[error("the stage is missing after the API id")]
    MissingStage,
    /// A methodArn has nothing after the stage.
    #[error("the HTTP method is missing after the stage")]
    MissingMethod,
    /// Whitespace or control characters, which no ARN contains.
    #[error("it contains whitespace or control characters")]
    BadCharacter,
    /// A methodArn's stage is not an API Gateway stage name.
    #[error("the stage must be 1 to 128 characters of A-Z, a-z, 0-9, _ and -, or $default")]
    Stage,
    /// A methodArn's method is not one API Gateway sends.
    #[error("the method must be GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS (or ANY for an HTTP API route)")]
    Method,
}

/// The methods API Gateway writes into a methodArn: the request's own, in upper case.
pub const REQUEST_METHODS: [&str; 7] = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];

/// The method segment of an HTTP API route declared `ANY`.
pub const ANY_METHOD: &str = "ANY";

/// Which kind of API Gateway API: REST (`methodArn`, payload without a version) or HTTP
/// (`routeArn`, payload 1.0 or 2.0). It decides which method segments an ARN may carry, and
/// the routing rules a mapping set follows for that API (trailing-slash twins, `ANY`
/// routes, `$default`). Written `rest` / `http` in mapping files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKind {
    /// A REST API's methodArn: one of `REQUEST_METHODS`.
    Rest,
    /// An HTTP API's routeArn: one of `REQUEST_METHODS`, or `ANY_METHOD`.
    Http,
}

impl ApiKind {
    /// The name used in mapping files and on the command line: `rest` or `http`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKind::Rest => "rest",
            ApiKind::Http => "http",
        }
    }
}

impl fmt::Display for ApiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API Gateway stage name as it appears in a request: 1 to 128 of `[A-Za-z0-9_-]`, or
/// HTTP APIs' `$default`. Never `*`: a request names one stage.
pub fn valid_request_stage(stage: &str) -> bool {
    stage == "$default"
        || (!stage.is_empty()
            && stage.len() <= 128
            && stage
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
}

/// An ARN that scopegate cannot use, with the text it was given. Its `Display` quotes the
/// input, which suits ARNs an operator typed; for a request's ARN, log
/// [`problem`](ArnError::problem) alone (the request path is the caller's text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid execute-api ARN {input:?}: {problem}")]
pub struct ArnError {
    /// The offending text, as given.
    pub input: String,
    /// What is wrong with it.
    pub problem: ArnProblem,
}

impl ArnError {
    fn new(input: &str, problem: ArnProblem) -> ArnError {
        ArnError {
            input: input.to_owned(),
            problem,
        }
    }
}

/// Checks `arn:PARTITION:execute-api:REGION:ACCOUNT:APIID` at the start of `s` and returns
/// the byte length of that prefix (the API id ends at the first `/` or at the end).
fn api_prefix_len(s: &str) -> Result<usize, ArnProblem> {
    if s.bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(ArnProblem::BadCharacter);
    }
    let rest = s.strip_prefix("arn:").ok_or(ArnProblem::NotAnArn)?;
    let (partition, rest) = rest.split_once(':').ok_or(ArnProblem::Partition)?;
    if !PARTITIONS.contains(&partition) {
        return Err(ArnProblem::Partition);
    }
    let rest = rest
        .strip_prefix("execute-api:")
        .ok_or(ArnProblem::Service)?;
    let (region, rest) = rest.split_once(':').ok_or(ArnProblem::Region)?;
    if !valid_region(region) {
        return Err(ArnProblem::Region);
    }
    let (account, rest) = rest.split_once(':').ok_or(ArnProblem::Account)?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ArnProblem::Account);
    }
    let id_len = rest.find('/').unwrap_or(rest.len());
    let id = &rest[..id_len];
    if id.is_empty()
        || id.len() > MAX_API_ID
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ArnProblem::ApiId);
    }
    Ok(s.len() - rest.len() + id_len)
}

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`: two letters, one or more lowercase words, a
/// number.
fn valid_region(region: &str) -> bool {
    let mut parts = region.split('-');
    let Some(first) = parts.next() else {
        return false;
    };
    if first.len() != 2 || !first.bytes().all(|b| b.is_ascii_lowercase()) {
        return false;
    }
    let mut words = 0;
    let mut last = "";
    for part in parts {
        if !last.is_empty() {
            if !last.bytes().all(|b| b.is_ascii_lowercase()) {
                return false;
            }
            words += 1;
        }
        if part.is_empty() {
            return false;
        }
        last = part;
    }
    words >= 1 && last.bytes().all(|b| b.is_ascii_digit())
}

/// A validated API ARN, `arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5`: the API a
/// mapping entry grants on. It compares equal to [`MethodArn::api`] of requests to that API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiArn(String);

impl ApiArn {
    /// Validates an API ARN; a methodArn (with `/stage/...`) is refused so that a mapping
    /// cannot silently name less than a whole API.
    pub fn parse(s: &str) -> Result<ApiArn, ArnError> {
        let len = api_prefix_len(s).map_err(|p| ArnError::new(s, p))?;
        if len != s.len() {
            return Err(ArnError::new(s, ArnProblem::TrailingPath));
        }
        Ok(ApiArn(s.to_owned()))
    }

    /// The ARN text, as compared against a request's [`MethodArn::api`].
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The API id (`a1b2c3d4e5`), used in storage keys.
    pub fn api_id(&self) -> &str {
        self.field(5)
    }

    /// The region (`us-east-1`).
    pub fn region(&self) -> &str {
        self.field(3)
    }

    /// The 12-digit account.
    pub fn account(&self) -> &str {
        self.field(4)
    }

    fn field(&self, n: usize) -> &str {
        // Validated at parse: exactly six colon-separated fields.
        self.0.splitn(6, ':').nth(n).unwrap_or_default()
    }
}

impl fmt::Display for ApiArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lets an [`ApiArn`]-keyed map be searched by a request's [`MethodArn::api`]; the derived
/// order is the text's, so the two agree.
impl std::borrow::Borrow<str> for ApiArn {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ApiArn {
    type Err = ArnError;

    fn from_str(s: &str) -> Result<ApiArn, ArnError> {
        ApiArn::parse(s)
    }
}

impl Serialize for ApiArn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ApiArn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ApiArn, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        ApiArn::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A request's methodArn (REST) or routeArn (HTTP API payload 2.0), borrowed from the event:
/// `arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev/GET/orders/7`.
///
/// The root resource's methodArn ends in `GET/`, so its [`resource`](MethodArn::resource) is
/// `""`; an ARN that ends at the method segment is read the same way.
///
/// The stage and the method are checked against API Gateway's grammar
/// (`valid_request_stage`, `REQUEST_METHODS`): the stage is written into policies (for
/// entries on every stage), and a method outside the set would be matched by nothing but
/// wildcards. A request ARN that API Gateway could not have sent is refused, never decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodArn<'a> {
    arn: &'a str,
    api_end: usize,
    stage_end: usize,
    method_end: usize,
}

impl<'a> MethodArn<'a> {
    /// Splits and checks a methodArn or routeArn, accepting the methods of either kind of
    /// API (`ANY` included); see [`MethodArn::parse_for`].
    pub fn parse(arn: &'a str) -> Result<MethodArn<'a>, ArnError> {
        MethodArn::parse_for(arn, ApiKind::Http)
    }

    /// Splits and checks an ARN from `kind` of API without allocating (but for the error).
    pub fn parse_for(arn: &'a str, kind: ApiKind) -> Result<MethodArn<'a>, ArnError> {
        let api_end = api_prefix_len(arn).map_err(|p| ArnError::new(arn, p))?;
        let after_api = &arn[api_end..];
        let Some(path) = after_api.strip_prefix('/') else {
            return Err(ArnError::new(arn, ArnProblem::MissingStage));
        };
        let stage_len = path.find('/').unwrap_or(path.len());
        if stage_len == 0 {
            return Err(ArnError::new(arn, ArnProblem::MissingStage));
        }
        let stage_end = api_end + 1 + stage_len;
        if stage_end == arn.len() {
            return Err(ArnError::new(arn, ArnProblem::MissingMethod));
        }
        let rest = &arn[stage_end + 1..];
        let method_len = rest.find('/').unwrap_or(rest.len());
        if method_len == 0 {
            return Err(ArnError::new(arn, ArnProblem::MissingMethod));
        }
        if !valid_request_stage(&arn[api_end + 1..stage_end]) {
            return Err(ArnError::new(arn, ArnProblem::Stage));
        }
        let method = &rest[..method_len];
        if !(REQUEST_METHODS.contains(&method) || (kind == ApiKind::Http && method == ANY_METHOD)) {
            return Err(ArnError::new(arn, ArnProblem::Method));
        }
        Ok(MethodArn {
            arn,
            api_end,
            stage_end,
            method_end: stage_end + 1 + method_len,
        })
    }

    /// The whole ARN, as evaluated against a policy.
    pub fn as_str(&self) -> &'a str {
        self.arn
    }

    /// `arn:aws:execute-api:REGION:ACCOUNT:APIID`, which selects the mapping entries that
    /// apply (compare with [`ApiArn::as_str`]).
    pub fn api(&self) -> &'a str {
        &self.arn[..self.api_end]
    }

    /// The API id alone.
    pub fn api_id(&self) -> &'a str {
        let api = self.api();
        &api[api.rfind(':').map_or(0, |i| i + 1)..]
    }

    /// The stage (`dev`, or `$default` for HTTP APIs).
    pub fn stage(&self) -> &'a str {
        &self.arn[self.api_end + 1..self.stage_end]
    }

    /// The HTTP method as API Gateway wrote it (`GET`; `ANY` for an HTTP API `ANY` route).
    pub fn method(&self) -> &'a str {
        &self.arn[self.stage_end + 1..self.method_end]
    }

    /// The request path after `METHOD/`, without a leading slash; `""` for the root.
    pub fn resource(&self) -> &'a str {
        self.arn.get(self.method_end + 1..).unwrap_or("")
    }
}

impl fmt::Display for MethodArn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.arn)
    }
}

/// Formats `{api}/{stage}/{method}/{resource}` the way API Gateway builds a methodArn: the
/// root resource (`""` or `"/"`) gives a trailing `/`, and a leading `/` on `resource` is
/// not doubled.
pub fn method_arn(api: &str, stage: &str, method: &str, resource: &str) -> String {
    let resource = resource.strip_prefix('/').unwrap_or(resource);
    let mut s = String::with_capacity(api.len() + stage.len() + method.len() + resource.len() + 3);
    s.push_str(api);
    s.push('/');
    s.push_str(stage);
    s.push('/');
    s.push_str(method);
    s.push('/');
    s.push_str(resource);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

    #[test]
    fn api_arn_accepts_partitions_and_regions() {
        for arn in [
            API,
            "arn:aws-cn:execute-api:cn-north-1:123456789012:abc",
            "arn:aws-us-gov:execute-api:us-gov-west-1:123456789012:abc",
            "arn:aws:execute-api:ap-southeast-2:123456789012:my-api-gw",
            "arn:aws:execute-api:us-east-1:219852565112:rz8w6b1ik2",
        ] {
            let parsed = ApiArn::parse(arn).unwrap();
            assert_eq!(parsed.as_str(), arn);
            assert_eq!(parsed.to_string(), arn);
        }
        let a = ApiArn::parse(API).unwrap();
        assert_eq!(a.api_id(), "a1b2c3d4e5");
        assert_eq!(a.region(), "us-east-1");
        assert_eq!(a.account(), "123456789012");
    }

    #[test]
    fn api_arn_refuses_with_the_reason() {
        let cases = [
            ("", ArnProblem::NotAnArn),
            ("arn:aws:s3:::bucket", ArnProblem::Service),
            (
                "arn:aws-eu:execute-api:us-east-1:123456789012:a",
                ArnProblem::Partition,
            ),
            (
                "arn:aws:execute-api:REGION:123456789012:a",
                ArnProblem::Region,
            ),
            (
                "arn:aws:execute-api:us-east:123456789012:a",
                ArnProblem::Region,
            ),
            (
                "arn:aws:execute-api:us-east-1:ACCOUNTID:my-api-gw",
                ArnProblem::Account,
            ),
            (
                "arn:aws:execute-api:us-east-1:12345678901:a",
                ArnProblem::Account,
            ),
            (
                "arn:aws:execute-api:us-east-1:123456789012:",
                ArnProblem::ApiId,
            ),
            (
                "arn:aws:execute-api:us-east-1:123456789012:a.b",
                ArnProblem::ApiId,
            ),
            (
                "arn:aws:execute-api:us-east-1:123456789012:a/dev",
                ArnProblem::TrailingPath,
            ),
            (
                "arn:aws:execute-api:us-east-1:123456789012:a b",
                ArnProblem::BadCharacter,
            ),
        ];
        for (input, problem) in cases {
            let err = ApiArn::parse(input).unwrap_err();
            assert_eq!(err.problem, problem, "{input}");
            assert_eq!(err.input, input);
            assert!(err.to_string().contains(input), "{err}");
        }
    }

    #[test]
    fn api_arn_serde_validates() {
        let a: ApiArn = serde_json::from_str(&format!("{API:?}")).unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), format!("{API:?}"));
        let err = serde_json::from_str::<ApiArn>("\"arn:aws:execute-api:x\"").unwrap_err();
        assert!(err.to_string().contains("region"), "{err}");
    }

    #[test]
    fn method_arn_splits() {
        let s = format!("{API}/dev/GET/orders/7");
        let m = MethodArn::parse(&s).unwrap();
        assert_eq!(m.api(), API);
        assert_eq!(m.api_id(), "a1b2c3d4e5");
        assert_eq!(m.stage(), "dev");
        assert_eq!(m.method(), "GET");
        assert_eq!(m.resource(), "orders/7");
        assert_eq!(m.as_str(), s);
    }

    #[test]
    fn method_arn_root_and_http_api_default_route() {
        let root = format!("{API}/dev/GET/");
        let m = MethodArn::parse(&root).unwrap();
        assert_eq!((m.method(), m.resource()), ("GET", ""));

        let route = format!("{API}/$default/GET/pets");
        let m = MethodArn::parse(&route).unwrap();
        assert_eq!(
            (m.stage(), m.method(), m.resource()),
            ("$default", "GET", "pets")
        );
        let bare = format!("{API}/dev/GET");
        assert_eq!(MethodArn::parse(&bare).unwrap().resource(), "");

        let trailing = format!("{API}/dev/GET/my-resource/");
        assert_eq!(
            MethodArn::parse(&trailing).unwrap().resource(),
            "my-resource/"
        );
    }

    #[test]
    fn method_arn_refuses_malformed() {
        for (input, problem) in [
            (API.to_owned(), ArnProblem::MissingStage),
            (format!("{API}/"), ArnProblem::MissingStage),
            (format!("{API}//GET/x"), ArnProblem::MissingStage),
            (format!("{API}/dev"), ArnProblem::MissingMethod),
            (format!("{API}/dev/"), ArnProblem::MissingMethod),
            (format!("{API}/dev//x"), ArnProblem::MissingMethod),
            (format!("{API}/dev/GET/a b"), ArnProblem::BadCharacter),
            (format!("{API}/$default/$default"), ArnProblem::Method),
            ("GET /orders".to_owned(), ArnProblem::BadCharacter),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:f".to_owned(),
                ArnProblem::Service,
            ),
        ] {
            let err = MethodArn::parse(&input).unwrap_err();
            assert_eq!(err.problem, problem, "{input}");
        }
    }

    /// Issue 8, class 3: the stage and the method of a request ARN follow API Gateway's
    /// grammar, or the event is refused; `pro?` or `*` must never reach a policy.
    #[test]
    fn request_stage_and_method_follow_api_gateways_grammar() {
        let long = "s".repeat(128);
        for stage in ["dev", "PROD_2", "blue-green", "$default", long.as_str()] {
            let s = format!("{API}/{stage}/GET/x");
            assert_eq!(MethodArn::parse(&s).unwrap().stage(), stage);
        }
        let too_long = "s".repeat(129);
        for stage in [
            "*",
            "pro?",
            "d*v",
            "$other",
            "de.v",
            "%64ev",
            "d\u{e9}v",
            too_long.as_str(),
        ] {
            let s = format!("{API}/{stage}/GET/x");
            assert_eq!(
                MethodArn::parse(&s).unwrap_err().problem,
                ArnProblem::Stage,
                "{stage}"
            );
        }
        for method in REQUEST_METHODS {
            let s = format!("{API}/dev/{method}/x");
            assert_eq!(
                MethodArn::parse_for(&s, ApiKind::Rest).unwrap().method(),
                method
            );
        }
        let any = format!("{API}/dev/ANY/x");
        assert_eq!(
            MethodArn::parse_for(&any, ApiKind::Http).unwrap().method(),
            "ANY"
        );
        assert_eq!(
            MethodArn::parse_for(&any, ApiKind::Rest)
                .unwrap_err()
                .problem,
            ArnProblem::Method
        );
        for method in [
            "get", "Get", "TRACE", "CONNECT", "*", "G?T", "$default", "FETCH",
        ] {
            let s = format!("{API}/dev/{method}/x");
            for kind in [ApiKind::Rest, ApiKind::Http] {
                assert_eq!(
                    MethodArn::parse_for(&s, kind).unwrap_err().problem,
                    ArnProblem::Method,
                    "{method}"
                );
            }
        }
    }

    #[test]
    fn method_arn_formats_like_api_gateway() {
        assert_eq!(method_arn(API, "dev", "GET", ""), format!("{API}/dev/GET/"));
        assert_eq!(
            method_arn(API, "dev", "GET", "/"),
            format!("{API}/dev/GET/")
        );
        assert_eq!(
            method_arn(API, "dev", "GET", "/orders/7"),
            format!("{API}/dev/GET/orders/7")
        );
        let s = method_arn(API, "prod", "DELETE", "orders/7");
        let m = MethodArn::parse(&s).unwrap();
        assert_eq!(
            (m.stage(), m.method(), m.resource()),
            ("prod", "DELETE", "orders/7")
        );
    }
}
