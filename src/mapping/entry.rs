//! One mapping entry ([`Mapping`]) and its validated parts, checked when parsed so that the
//! warm path never meets a bad one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::policy::{ApiArn, ApiKind, ArnError, Effect};

/// The longest scope accepted: far beyond real scopes, short enough to bound what a mapping
/// can make the authorizer hash and log.
pub const MAX_SCOPE_LEN: usize = 256;
/// The longest stage name API Gateway allows.
pub const MAX_STAGE_LEN: usize = 128;
/// The longest resource path accepted.
pub const MAX_RESOURCE_LEN: usize = 1024;

/// A mapping entry, or one of its fields, that cannot be used; every variant names the field
/// and carries the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// A required field is absent.
    #[error("field {field:?} is missing")]
    Missing {
        /// The field, in the canonical form's spelling (or both spellings).
        field: &'static str,
    },
    /// The same field is given in both forms (`api` and `arn`, `method` and `httpVerb`).
    #[error("fields {first:?} and {second:?} say the same thing; give one")]
    Both {
        /// The canonical spelling.
        first: &'static str,
        /// The blog post's spelling.
        second: &'static str,
    },
    /// The API ARN is not an execute-api API ARN.
    #[error("field \"api\": {0}")]
    Api(#[source] ArnError),
    /// The stage is not an API Gateway stage name.
    #[error("field \"stage\": invalid stage {value:?}: expected 1 to 128 of A-Z a-z 0-9 _ -, \"$default\" or \"*\"")]
    Stage {
        /// The value given.
        value: String,
    },
    /// The method is not an HTTP method API Gateway routes.
    #[error("field \"method\": invalid method {value:?}: expected GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY or *")]
    Method {
        /// The value given.
        value: String,
    },
    /// The resource path cannot be matched against request paths.
    #[error("field \"resource\": invalid resource {value:?}: {reason}")]
    Resource {
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The scope cannot occur in a token.
    #[error("field \"scope\": invalid scope {value:?}: {reason}")]
    Scope {
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The effect is neither Allow nor Deny.
    #[error("field \"effect\": invalid effect {value:?}: expected \"Allow\" or \"Deny\"")]
    Effect {
        /// The value given.
        value: String,
    },
}

impl MappingError {
    /// The field at fault (the canonical spelling).
    pub fn field(&self) -> Option<&'static str> {
        Some(match self {
            MappingError::Missing { field } => field,
            MappingError::Both { first, .. } => first,
            MappingError::Api(_) => "api",
            MappingError::Stage { .. } => "stage",
            MappingError::Method { .. } => "method",
            MappingError::Resource { .. } => "resource",
            MappingError::Scope { .. } => "scope",
            MappingError::Effect { .. } => "effect",
        })
    }

    /// The value at fault, as given.
    pub fn value(&self) -> Option<&str> {
        match self {
            MappingError::Missing { .. } | MappingError::Both { .. } => None,
            MappingError::Api(e) => Some(&e.input),
            MappingError::Stage { value }
            | MappingError::Method { value }
            | MappingError::Resource { value, .. }
            | MappingError::Scope { value, .. }
            | MappingError::Effect { value } => Some(value),
        }
    }

    /// What is wrong, without the field and the value.
    pub fn reason(&self) -> String {
        match self {
            MappingError::Missing { .. } => "missing".to_owned(),
            MappingError::Both { second, .. } => {
                format!("given together with {second:?}, which says the same thing; give one")
            }
            MappingError::Api(e) => e.problem.to_string(),
            MappingError::Stage { .. } => {
                "expected 1 to 128 of A-Z a-z 0-9 _ -, \"$default\" or \"*\"".to_owned()
            }
            MappingError::Method { .. } => {
                "expected GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY or *".to_owned()
            }
            MappingError::Resource { reason, .. } | MappingError::Scope { reason, .. } => {
                (*reason).to_owned()
            }
            MappingError::Effect { .. } => "expected \"Allow\" or \"Deny\"".to_owned(),
        }
    }
}

/// The HTTP method an entry covers; `Any` stands for API Gateway's `ANY` method (every
/// method).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// Every method (`*` or `ANY`).
    Any,
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// `HEAD`.
    Head,
    /// `OPTIONS`.
    Options,
}

impl Method {
    /// The concrete methods `Any` stands for, in the order a policy lists them.
    pub const CONCRETE: [Method; 7] = [
        Method::Delete,
        Method::Get,
        Method::Head,
        Method::Options,
        Method::Patch,
        Method::Post,
        Method::Put,
    ];

    /// The method segment of a methodArn: `GET`, ..., or `*` for `Any`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Any => "*",
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = MappingError;

    /// Case-insensitive: `get` is `GET`; `*` and `ANY` are [`Method::Any`].
    fn from_str(s: &str) -> Result<Method, MappingError> {
        if s == "*" || s.eq_ignore_ascii_case("ANY") {
            return Ok(Method::Any);
        }
        Method::CONCRETE
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| MappingError::Method {
                value: s.to_owned(),
            })
    }
}

/// Implements string serde (validated on the way in) for a type with `FromStr` and
/// `Display`.
macro_rules! serde_as_str {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$t, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_str!(Method);
serde_as_str!(Scope);
serde_as_str!(Stage);
serde_as_str!(ResourcePath);

/// An OAuth scope as it appears in a token's `scp` or `scope` claim: an RFC 6749 3.3
/// scope-token (printable ASCII but space, `"` and `\`; see [`crate::scope`]) of at most
/// [`MAX_SCOPE_LEN`] characters. A token can carry no other scope, so an entry naming one
/// could never apply: it is refused rather than kept as dead weight.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    /// Validates a scope.
    pub fn new(s: &str) -> Result<Scope, MappingError> {
        let bad = |reason| MappingError::Scope {
            value: s.to_owned(),
            reason,
        };
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.chars().count() > MAX_SCOPE_LEN {
            return Err(bad("it is longer than 256 characters"));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(bad(
                "it contains whitespace, which separates scopes in a token",
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(bad("it contains control characters"));
        }
        if crate::scope::check_token(s).is_err() {
            return Err(bad(
                "RFC 6749 3.3 allows only printable ASCII but space, '\"' and '\\' in a scope",
            ));
        }
        Ok(Scope(s.to_owned()))
    }

    /// The scope text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Scope {
    type Err = MappingError;

    fn from_str(s: &str) -> Result<Scope, MappingError> {
        Scope::new(s)
    }
}

/// An API Gateway stage name (`dev`), HTTP APIs' `$default`, or `*` for every stage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stage(String);

impl Stage {
    /// Validates a stage name.
    pub fn new(s: &str) -> Result<Stage, MappingError> {
        let ok = s == "*"
            || s == "$default"
            || (!s.is_empty()
                && s.len() <= MAX_STAGE_LEN
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        if ok {
            Ok(Stage(s.to_owned()))
        } else {
            Err(MappingError::Stage {
                value: s.to_owned(),
            })
        }
    }

    /// The stage name, or `*`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the entry applies to every stage.
    pub fn is_any(&self) -> bool {
        self.0 == "*"
    }

    /// Whether the entry applies to a request on `stage`.
    pub fn applies_to(&self, stage: &str) -> bool {
        self.is_any() || self.0 == stage
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Stage {
    type Err = MappingError;

    fn from_str(s: &str) -> Result<Stage, MappingError> {
        Stage::new(s)
    }
}

/// A resource path pattern, matched against the request path of a methodArn: stored without
/// the leading slash (`/orders` and `orders` are the same), the root as `""` (from `/` or
/// `""`).
///
/// - `*` matches any run of characters, `/` included (`orders/*` covers `orders/7/items`);
///   `?` matches one character.
/// - A trailing slash is removed (`orders/` is `orders`). A request made with a trailing
///   slash (`GET /dev/orders/`) has a methodArn ending in `orders/`, and a REST API serves
///   it from the `orders` resource. So an entry for `orders` is written for both `orders`
///   and `orders/`: an Allow lets the request through as the route it reaches (the seed's
///   own first request is `GET /dev/my-resource/?myParam=myValue`), and a Deny cannot be
///   slipped past with a slash. An HTTP API routes `orders/` apart, so there only the Deny
///   is widened. The root stays the root (`.../GET/`), and a pattern ending in `*` already
///   covers the slash.
/// - `{id}` path parameters are refused: API Gateway puts the actual request path in the
///   methodArn, not the resource template, so `orders/{id}` would never match; write
///   `orders/*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePath(String);

impl ResourcePath {
    /// Validates and normalises a resource path.
    pub fn new(s: &str) -> Result<ResourcePath, MappingError> {
        let bad = |reason| MappingError::Resource {
            value: s.to_owned(),
            reason,
        };
        if s.len() > MAX_RESOURCE_LEN {
            return Err(bad("it is longer than 1024 bytes"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains whitespace or control characters"));
        }
        if s.contains(['{', '}']) {
            return Err(bad(
                "path parameters like {id} are templates, and the policy is matched against \
                 the request path: use * instead (orders/* rather than orders/{id})",
            ));
        }
        if s.contains("//") {
            return Err(bad("it has an empty path segment (//)"));
        }
        let path = s.strip_prefix('/').unwrap_or(s);
        let path = path.strip_suffix('/').unwrap_or(path);
        Ok(ResourcePath(path.to_owned()))
    }

    /// The root resource, `/`.
    pub fn root() -> ResourcePath {
        ResourcePath(String::new())
    }

    /// The normalised path: no leading or trailing slash, `""` for the root.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the root resource.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the path has wildcards (`*` or `?`).
    pub fn has_wildcards(&self) -> bool {
        self.0.contains(['*', '?'])
    }
}

impl fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ResourcePath {
    type Err = MappingError;

    fn from_str(s: &str) -> Result<ResourcePath, MappingError> {
        ResourcePath::new(s)
    }
}

/// One permissions-mapping entry: `scope` grants (or, with `effect: Deny`, refuses) `method`
/// on `resource` of `api` in `stage`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "RawMapping")]
pub struct Mapping {
    /// The API, `arn:aws:execute-api:REGION:ACCOUNT:APIID`.
    pub api: ApiArn,
    /// The stage, or `*` for every stage.
    pub stage: Stage,
    /// The method, or [`Method::Any`].
    pub method: Method,
    /// The resource path pattern.
    pub resource: ResourcePath,
    /// The scope a token must carry for this entry to apply.
    pub scope: Scope,
    /// Allow (the default when a document omits it) or Deny.
    pub effect: Effect,
}

impl Mapping {
    /// The entry's resource ARN, `{api}/{stage}/{METHOD}/{resource}` with `*` for every
    /// method: how the entry reads in listings. (The policy uses
    /// [`policy_resources`](Mapping::policy_resources), which is tighter.)
    pub fn resource_arn(&self) -> String {
        crate::policy::method_arn(
            self.api.as_str(),
            self.stage.as_str(),
            self.method.as_str(),
            self.resource.as_str(),
        )
    }

    /// The resource patterns this entry contributes to the policy for a request on
    /// `request_stage` (an entry for which [`Stage::applies_to`] holds). They are tighter
    /// than [`resource_arn`](Mapping::resource_arn), because IAM's `*` also matches `/`:
    ///
    /// - stage `*` is written as the request's stage: `{api}/*/GET/orders` would also match
    ///   `{api}/dev/GET/x/GET/orders`, whose stage is `dev` and path `x/GET/orders`;
    /// - method `Any` is written as every method segment a request ARN can hold (the seven
    ///   methods and HTTP APIs' `ANY`), unless the resource starts with `*`:
    ///   `{api}/dev/*/orders` would also match `GET /dev/admin/orders`. Listing `ANY` too
    ///   matters for Denies: an Allow whose resource starts with `*` is written with a `*`
    ///   method and covers an `ANY` route, so a Deny on every method must cover it as well;
    /// - a Deny on one method also denies the `ANY` method segment: an HTTP API `ANY`
    ///   route's request may be that method, and the routeArn does not say;
    /// - an entry on a path without a trailing wildcard also covers the path with a
    ///   trailing slash (see [`ResourcePath`]): a Deny always; an Allow only for a REST API
    ///   (`kind`), which serves `orders/` from the `orders` resource. An HTTP API routes
    ///   `orders/` on its own (to a `{proxy+}` route or `$default`), so granting it there
    ///   could reach another route: not granted (fail closed).
    pub fn policy_resources(&self, request_stage: &str, kind: ApiKind) -> Vec<String> {
        let stage = if self.stage.is_any() {
            request_stage
        } else {
            self.stage.as_str()
        };
        let resource = self.resource.as_str();
        const EVERY: [&str; 8] = {
            let m = crate::policy::arn::REQUEST_METHODS;
            [
                m[0],
                m[1],
                m[2],
                m[3],
                m[4],
                m[5],
                m[6],
                crate::policy::arn::ANY_METHOD,
            ]
        };
        // An HTTP API `ANY` route's routeArn does not say which method the request used, so
        // a Deny on one method must deny it there too (fail closed); an Allow on one method
        // cannot allow it.
        let one = [self.method.as_str()];
        let deny_one = [self.method.as_str(), crate::policy::arn::ANY_METHOD];
        let methods: &[&str] = if self.method == Method::Any && !resource.starts_with('*') {
            &EVERY
        } else if self.method != Method::Any && self.effect == Effect::Deny {
            &deny_one
        } else {
            &one
        };
        let slash_too = !self.resource.is_root()
            && !resource.ends_with('*')
            && (self.effect == Effect::Deny || kind == ApiKind::Rest);
        let mut out = Vec::with_capacity(methods.len() * if slash_too { 2 } else { 1 });
        for method in methods {
            let arn = crate::policy::method_arn(self.api.as_str(), stage, method, resource);
            if slash_too {
                out.push(format!("{arn}/"));
            }
            out.push(arn);
        }
        out
    }

    /// Whether the entry applies to requests on `api` (`arn:...:APIID`) and `stage`.
    pub fn applies_to(&self, api: &str, stage: &str) -> bool {
        self.api.as_str() == api && self.stage.applies_to(stage)
    }

    /// Whether two entries target the same (api, stage, method, resource, scope), whatever
    /// their effects.
    pub fn same_target(&self, other: &Mapping) -> bool {
        self.api == other.api
            && self.stage == other.stage
            && self.method == other.method
            && self.resource == other.resource
            && self.scope == other.scope
    }
}

impl fmt::Display for Mapping {
    /// `email: Allow GET arn:.../dev/GET/my-resource`, for listings and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.scope, self.effect, self.resource_arn())
    }
}

/// A mapping entry as written, in either form, before validation. Unknown fields are refused
/// so that a typo (`"efect": "Deny"`) cannot silently turn a Deny into the default Allow.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMapping {
    #[serde(alias = "api_arn")]
    api: Option<String>,
    arn: Option<String>,
    stage: Option<String>,
    method: Option<String>,
    #[serde(rename = "httpVerb")]
    http_verb: Option<String>,
    resource: Option<String>,
    scope: Option<String>,
    effect: Option<String>,
}

fn one_of(
    first: Option<String>,
    second: Option<String>,
    names: (&'static str, &'static str),
    missing: &'static str,
) -> Result<String, MappingError> {
    match (first, second) {
        (Some(_), Some(_)) => Err(MappingError::Both {
            first: names.0,
            second: names.1,
        }),
        (Some(v), None) | (None, Some(v)) => Ok(v),
        (None, None) => Err(MappingError::Missing { field: missing }),
    }
}

impl TryFrom<RawMapping> for Mapping {
    type Error = MappingError;

    fn try_from(raw: RawMapping) -> Result<Mapping, MappingError> {
        let api = one_of(raw.api, raw.arn, ("api", "arn"), "api (or arn)")?;
        let api = ApiArn::parse(&api).map_err(MappingError::Api)?;
        let stage = Stage::new(&raw.stage.ok_or(MappingError::Missing { field: "stage" })?)?;
        let method = one_of(
            raw.method,
            raw.http_verb,
            ("method", "httpVerb"),
            "method (or httpVerb)",
        )?
        .parse()?;
        let resource = ResourcePath::new(
            &raw.resource
                .ok_or(MappingError::Missing { field: "resource" })?,
        )?;
        let scope = Scope::new(&raw.scope.ok_or(MappingError::Missing { field: "scope" })?)?;
        let effect = match raw.effect.as_deref() {
            None => Effect::Allow,
            Some(e) if e.eq_ignore_ascii_case("allow") => Effect::Allow,
            Some(e) if e.eq_ignore_ascii_case("deny") => Effect::Deny,
            Some(e) => {
                return Err(MappingError::Effect {
                    value: e.to_owned(),
                })
            }
        };
        Ok(Mapping {
            api,
            stage,
            method,
            resource,
            scope,
            effect,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5";

    fn entry(json: &str) -> Result<Mapping, String> {
        serde_json::from_str::<Mapping>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn methods_parse_case_insensitively() {
        assert_eq!("get".parse::<Method>().unwrap(), Method::Get);
        assert_eq!("Delete".parse::<Method>().unwrap(), Method::Delete);
        assert_eq!("*".parse::<Method>().unwrap(), Method::Any);
        assert_eq!("any".parse::<Method>().unwrap(), Method::Any);
        assert_eq!(Method::Any.to_string(), "*");
        assert_eq!(Method::Options.to_string(), "OPTIONS");
        let err = "FETCH".parse::<Method>().unwrap_err();
        assert!(err.to_string().contains("\"FETCH\""), "{err}");
    }

    #[test]
    fn scopes() {
        for ok in [
            "email",
            "orders:read",
            "api://orders/Orders.Read",
            "https://x/y",
        ] {
            assert_eq!(Scope::new(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "a b",
            "a\tb",
            "a\u{7}",
            "caf\u{e9}",
            "a\"b",
            "a\\b",
            &"x".repeat(257),
        ] {
            let err = Scope::new(bad).unwrap_err();
            assert!(matches!(err, MappingError::Scope { .. }), "{bad:?}");
        }
        assert!(Scope::new(&"x".repeat(256)).is_ok());
    }

    #[test]
    fn stages() {
        for ok in ["dev", "DEV", "prod_2", "blue-green", "$default", "*"] {
            assert_eq!(Stage::new(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "de v", "dev/x", "a*", "$other"] {
            assert!(Stage::new(bad).is_err(), "{bad:?}");
        }
        assert!(Stage::new("*").unwrap().applies_to("prod"));
        assert!(Stage::new("dev").unwrap().applies_to("dev"));
        assert!(!Stage::new("dev").unwrap().applies_to("DEV"));
    }

    #[test]
    fn resource_paths_normalise() {
        for (input, normal) in [
            ("my-resource", "my-resource"),
            ("/my-resource", "my-resource"),
            ("/my-resource/", "my-resource"),
            ("/", ""),
            ("", ""),
            ("*", "*"),
            ("/orders/*", "orders/*"),
            ("orders/?", "orders/?"),
            ("a/b/c", "a/b/c"),
        ] {
            assert_eq!(
                ResourcePath::new(input).unwrap().as_str(),
                normal,
                "{input:?}"
            );
        }
        assert!(ResourcePath::new("/").unwrap().is_root());
        assert!(ResourcePath::new("orders/*").unwrap().has_wildcards());
    }

    #[test]
    fn resource_paths_refuse_templates_and_junk() {
        let err = ResourcePath::new("/orders/{id}").unwrap_err().to_string();
        assert!(
            err.contains("orders/{id}") && err.contains("use *"),
            "{err}"
        );
        for bad in ["orders/{proxy+}", "a b", "a\nb", "a//b", "//"] {
            assert!(ResourcePath::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn both_forms_parse_to_the_same_entry() {
        let canonical = entry(&format!(
            r#"{{"api":"{API}","stage":"dev","method":"GET","resource":"my-resource","scope":"email","effect":"Allow"}}"#
        ))
        .unwrap();
        let seed = entry(&format!(
            r#"{{"arn":"{API}","resource":"my-resource","stage":"dev","httpVerb":"GET","scope":"email"}}"#
        ))
        .unwrap();
        assert_eq!(canonical, seed);
        assert_eq!(
            serde_json::to_string(&seed).unwrap(),
            format!(
                r#"{{"api":"{API}","stage":"dev","method":"GET","resource":"my-resource","scope":"email","effect":"Allow"}}"#
            )
        );
        let back: Mapping = serde_json::from_str(&serde_json::to_string(&seed).unwrap()).unwrap();
        assert_eq!(back, seed);
    }

    #[test]
    fn entry_errors_name_the_field_and_value() {
        let base = |extra: &str| {
            format!(
                r#"{{"api":"{API}","stage":"dev","method":"GET","resource":"r","scope":"s"{extra}}}"#
            )
        };
        let cases = [
            (base(r#","effect":"Permit""#), "\"effect\""),
            (base(r#","efect":"Deny""#), "unknown field `efect`"),
            (base(r#","arn":"x""#), "\"api\" and \"arn\""),
            (base(r#","httpVerb":"GET""#), "\"method\" and \"httpVerb\""),
            (
                r#"{"api":"arn:aws:execute-api:us-east-1:1:x","stage":"dev","method":"GET","resource":"r","scope":"s"}"#.to_owned(),
                "field \"api\"",
            ),
            (
                format!(r#"{{"api":"{API}","method":"GET","resource":"r","scope":"s"}}"#),
                "\"stage\" is missing",
            ),
            (
                format!(r#"{{"api":"{API}","stage":"dev","resource":"r","scope":"s"}}"#),
                "method (or httpVerb)",
            ),
            (
                format!(r#"{{"api":"{API}","stage":"d v","method":"GET","resource":"r","scope":"s"}}"#),
                "\"d v\"",
            ),
        ];
        for (json, needle) in cases {
            let err = entry(&json).unwrap_err();
            assert!(err.contains(needle), "{json}: {err}");
        }
        let deny = entry(&base(r#","effect":"deny""#)).unwrap();
        assert_eq!(deny.effect, Effect::Deny);
    }

    fn mapping(stage: &str, method: &str, resource: &str, effect: Effect) -> Mapping {
        Mapping {
            api: ApiArn::parse(API).unwrap(),
            stage: Stage::new(stage).unwrap(),
            method: method.parse().unwrap(),
            resource: ResourcePath::new(resource).unwrap(),
            scope: Scope::new("s").unwrap(),
            effect,
        }
    }

    #[test]
    fn resource_arns() {
        let m = mapping("dev", "get", "/my-resource", Effect::Allow);
        assert_eq!(m.resource_arn(), format!("{API}/dev/GET/my-resource"));
        assert_eq!(
            m.policy_resources("dev", ApiKind::Rest),
            [
                format!("{API}/dev/GET/my-resource/"),
                format!("{API}/dev/GET/my-resource")
            ]
        );
        let root = mapping("*", "GET", "/", Effect::Allow);
        assert_eq!(root.resource_arn(), format!("{API}/*/GET/"));
        assert_eq!(
            root.policy_resources("prod", ApiKind::Rest),
            [format!("{API}/prod/GET/")]
        );
        let any = mapping("dev", "ANY", "*", Effect::Allow);
        assert_eq!(any.resource_arn(), format!("{API}/dev/*/*"));
        assert_eq!(
            any.policy_resources("dev", ApiKind::Rest),
            [format!("{API}/dev/*/*")]
        );
    }

    #[test]
    fn policy_resources_do_not_overreach_through_slashes() {
        use crate::policy::{build, evaluate};
        let any = mapping("*", "*", "orders", Effect::Allow);
        let p = build(
            any.policy_resources("dev", ApiKind::Rest)
                .into_iter()
                .map(|r| (Effect::Allow, r)),
        );
        let at = |rest: &str| format!("{API}/{rest}");
        assert_eq!(evaluate(&p, &at("dev/GET/orders")), Effect::Allow);
        assert_eq!(evaluate(&p, &at("dev/PATCH/orders")), Effect::Allow);
        assert_eq!(evaluate(&p, &at("dev/GET/admin/orders")), Effect::Deny);
        assert_eq!(evaluate(&p, &at("dev/GET/x/GET/orders")), Effect::Deny);
        // The looser listing form would have allowed both.
        let loose = build([(Effect::Allow, any.resource_arn())]);
        assert_eq!(evaluate(&loose, &at("dev/GET/admin/orders")), Effect::Allow);
    }

    #[test]
    fn an_allow_covers_the_trailing_slash_and_the_root_stays_the_root() {
        use crate::policy::{build, evaluate};
        // The seed: GET my-resource for `email`, and its first request has a slash.
        let seed = mapping("dev", "GET", "my-resource", Effect::Allow);
        let root = mapping("dev", "GET", "/", Effect::Allow);
        let p = build([&seed, &root].iter().flat_map(|m| {
            m.policy_resources("dev", ApiKind::Rest)
                .into_iter()
                .map(|r| (m.effect, r))
        }));
        let at = |rest: &str| format!("{API}/dev/{rest}");
        assert_eq!(evaluate(&p, &at("GET/my-resource")), Effect::Allow);
        assert_eq!(evaluate(&p, &at("GET/my-resource/")), Effect::Allow);
        assert_eq!(evaluate(&p, &at("GET/")), Effect::Allow);
        // Only one slash, at the end: not a path below, not an empty segment.
        assert_eq!(evaluate(&p, &at("GET/my-resource/x")), Effect::Deny);
        assert_eq!(evaluate(&p, &at("GET/my-resource//")), Effect::Deny);
        assert_eq!(evaluate(&p, &at("GET//")), Effect::Deny);
        assert_eq!(evaluate(&p, &at("POST/my-resource/")), Effect::Deny);
    }

    #[test]
    fn on_an_http_api_only_a_deny_covers_the_trailing_slash() {
        use crate::policy::{build, evaluate};
        let allow = mapping("dev", "GET", "orders", Effect::Allow);
        let deny = mapping("dev", "DELETE", "orders", Effect::Deny);
        let all = mapping("dev", "*", "*", Effect::Allow);
        let policy = |ms: &[&Mapping]| {
            build(ms.iter().flat_map(|m| {
                m.policy_resources("dev", ApiKind::Http)
                    .into_iter()
                    .map(|r| (m.effect, r))
            }))
        };
        let p = policy(&[&allow]);
        let at = |rest: &str| format!("{API}/dev/{rest}");
        assert_eq!(evaluate(&p, &at("GET/orders")), Effect::Allow);
        assert_eq!(evaluate(&p, &at("GET/orders/")), Effect::Deny);
        let p = policy(&[&all, &deny]);
        assert_eq!(evaluate(&p, &at("DELETE/orders/")), Effect::Deny);
        assert_eq!(evaluate(&p, &at("ANY/orders/")), Effect::Deny);
    }

    #[test]
    fn deny_covers_the_trailing_slash() {
        use crate::policy::{build, evaluate};
        let allow = mapping("dev", "*", "*", Effect::Allow);
        let deny = mapping("dev", "DELETE", "orders", Effect::Deny);
        let p = build([&allow, &deny].iter().flat_map(|m| {
            m.policy_resources("dev", ApiKind::Rest)
                .into_iter()
                .map(|r| (m.effect, r))
        }));
        assert_eq!(
            evaluate(&p, &format!("{API}/dev/DELETE/orders")),
            Effect::Deny
        );
        assert_eq!(
            evaluate(&p, &format!("{API}/dev/DELETE/orders/")),
            Effect::Deny
        );
        assert_eq!(
            evaluate(&p, &format!("{API}/dev/DELETE/orders/7")),
            Effect::Allow
        );
    }
}
