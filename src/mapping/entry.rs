//! One mapping entry ([`Mapping`]) and its validated parts, checked when parsed so that the
//! warm path never meets a bad one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use super::invalid::MappingError;
pub use super::requirement::{ClaimMatch, Requirement, Scope, MAX_SCOPE_LEN};
use crate::policy::{ApiArn, ApiKind, Effect};
/// Every method segment a request ARN can hold: the seven methods and HTTP APIs' `ANY`. What
/// an entry for every method is written as, unless its path starts with `*`.
pub(crate) const EVERY_METHOD: [&str; 8] = {
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

/// The policy resources of `pattern` (a path as IAM reads it) for `method` on `api` and
/// `stage`: how every resource of a policy is written, an entry's and an exactness Deny's.
///
/// - `*` and `ANY` ([`Method::is_every`]) are written as every method segment a request ARN
///   can hold (the seven methods and HTTP APIs' `ANY`), unless the pattern starts with `*`
///   (then as the one segment `*`): `{api}/dev/*/orders` would also match
///   `GET /dev/admin/orders`;
/// - with `also_any`, one method also covers the `ANY` method segment: an HTTP API `ANY`
///   route's request may be that method, and the routeArn does not say (an explicit Deny
///   needs this; an Allow, or an exactness Deny, must not have it);
/// - with `slash_too`, each is preceded by itself followed by a slash.
pub(crate) fn method_arns(
    api: &str,
    stage: &str,
    method: Method,
    also_any: bool,
    pattern: &str,
    slash_too: bool,
) -> Vec<String> {
    let one = [if method.is_every() {
        "*"
    } else {
        method.as_str()
    }];
    let with_any = [method.as_str(), crate::policy::arn::ANY_METHOD];
    let methods: &[&str] = if method.is_every() && !pattern.starts_with('*') {
        &EVERY_METHOD
    } else if !method.is_every() && also_any {
        &with_any
    } else {
        &one
    };
    let mut out = Vec::with_capacity(methods.len() * if slash_too { 2 } else { 1 });
    for method in methods {
        let arn = crate::policy::method_arn(api, stage, method, pattern);
        if slash_too {
            out.push(format!("{arn}/"));
        }
        out.push(arn);
    }
    out
}

/// The longest stage name API Gateway allows.
pub const MAX_STAGE_LEN: usize = 128;
/// The longest resource path accepted.
pub const MAX_RESOURCE_LEN: usize = 1024;

/// The HTTP method an entry covers.
///
/// Two entries cover every method, and differ only in which route they name:
/// - `*` ([`Method::Every`]): every method of its route, as the seed writes it and as IAM
///   reads `*`. `* orders` for `admin` grants `POST orders` even where `POST orders` is
///   also mapped for another scope: it names each method's route;
/// - `ANY` ([`Method::Any`]): API Gateway's `ANY` method, a route of its own, which a
///   method's own route on the same path beats (`x-amazon-apigateway-any-method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// API Gateway's `ANY` method: every method, as a route that a method's own route on the
    /// same path beats.
    Any,
    /// `*`: every method, each as its own route (see [`Method`]).
    Every,
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

    /// Every method a request ARN can hold: [`CONCRETE`](Method::CONCRETE), and `Any` for an
    /// HTTP API's `ANY` request.
    pub const REQUEST: [Method; 8] = {
        let c = Method::CONCRETE;
        [c[0], c[1], c[2], c[3], c[4], c[5], c[6], Method::Any]
    };

    /// Whether it covers every method (`*` or `ANY`): how it is written into a policy, and
    /// which requests a Deny or a glob of it covers. Only routing tells the two apart.
    pub fn is_every(self) -> bool {
        matches!(self, Method::Any | Method::Every)
    }

    /// The method as written: `GET`, ..., `ANY`, or `*`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Any => "ANY",
            Method::Every => "*",
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

    /// Case-insensitive: `get` is `GET`; `*` is [`Method::Every`], `ANY` [`Method::Any`].
    fn from_str(s: &str) -> Result<Method, MappingError> {
        if s == "*" {
            return Ok(Method::Every);
        }
        if s.eq_ignore_ascii_case("ANY") {
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

    /// The stage a policy resource of this entry names for a request on `request_stage`: the
    /// entry's own, or, for `*`, the request's.
    pub fn for_request<'a>(&'a self, request_stage: &'a str) -> &'a str {
        if self.is_any() {
            request_stage
        } else {
            self.as_str()
        }
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
/// - A route template, as API Gateway and OpenAPI write one: `{id}` matches exactly one path
///   segment, and `{proxy+}` (last segment only) one or more. A request belongs to the most
///   specific route that matches it, as API Gateway routes it: literal segments before
///   `{param}`, `{param}` before `{proxy+}`, left to right. In the policy a template is
///   written with `*` (IAM has no one-segment wildcard), and the routes that `*` also covers
///   but the token is not granted are denied beside it: see [`crate::mapping::exact`].
/// - Templates and `*`/`?` do not mix in one path: a path is either a route or a glob.
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
        // Empty segments are looked for outside placeholders: a claim named
        // `https://example.com/tenant` holds a `//` of its own.
        let masked: String = path_segments(s)
            .map(|seg| if placeholder(seg).is_some() { "$" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        if masked.contains("//") {
            return Err(bad("it has an empty path segment (//)"));
        }
        let path = s.strip_prefix('/').unwrap_or(s);
        let path = path.strip_suffix('/').unwrap_or(path);
        if path.contains(['{', '}']) {
            let segments: Vec<&str> = path_segments(path).collect();
            for (i, seg) in segments.iter().enumerate() {
                if !seg.contains(['{', '}']) {
                    continue;
                }
                if seg.starts_with(PLACEHOLDER) {
                    let name = placeholder(seg).ok_or(()).map_err(|()| {
                        bad("a claim placeholder is a whole segment: ${claim:NAME}")
                    })?;
                    if name.contains(['{', '}', '*', '?']) {
                        return Err(bad("a claim placeholder's NAME holds no { } * or ?"));
                    }
                    if let Err(e) = crate::claim::ClaimName::new(name) {
                        return Err(MappingError::Resource {
                            value: s.to_owned(),
                            reason: e.reason(),
                        });
                    }
                    continue;
                }
                let name = seg
                    .strip_prefix('{')
                    .and_then(|x| x.strip_suffix('}'))
                    .ok_or(())
                    .map_err(|()| {
                        bad("a path parameter must be a whole segment: {name} or {name+}")
                    })?;
                let (name, greedy) = match name.strip_suffix('+') {
                    Some(n) => (n, true),
                    None => (name, false),
                };
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
                {
                    return Err(bad(
                        "a path parameter's name is letters, digits, _ - and . ({id}, {proxy+})",
                    ));
                }
                if greedy && i + 1 != segments.len() {
                    return Err(bad("a greedy parameter {name+} must be the last segment"));
                }
            }
            if masked.contains(['*', '?']) {
                return Err(bad(if path.contains(PLACEHOLDER) {
                    "a ${claim:NAME} segment stands for a route parameter: write the rest of the path as a route ({id}, {proxy+}), not a glob (*, ?)"
                } else {
                    "a path is a route template ({id}, {proxy+}) or a glob (*, ?), not both"
                }));
            }
        }
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

    /// Whether the path has wildcards (`*` or `?`): a glob, with IAM's meaning, rather than
    /// a route.
    pub fn has_wildcards(&self) -> bool {
        self.0.contains(['*', '?'])
    }

    /// Whether the path is a route: literal segments and `{param}`/`{proxy+}` templates, no
    /// glob. Routes take part in most-specific matching and in exactness.
    pub fn is_route(&self) -> bool {
        !self.has_wildcards()
    }

    /// Whether the path has `{param}`, `{proxy+}` or `${claim:NAME}` segments.
    pub fn has_params(&self) -> bool {
        self.0.contains('{')
    }

    /// Whether the path has `${claim:NAME}` segments: bound, per token, to a claim's value.
    pub fn is_bound(&self) -> bool {
        self.0.contains(PLACEHOLDER)
    }

    /// The segments of the path, a `${claim:NAME}` placeholder one segment whatever `/` its
    /// NAME holds; the root has one, empty.
    pub fn segments(&self) -> impl Iterator<Item = &str> + '_ {
        path_segments(&self.0)
    }

    /// The claims its `${claim:NAME}` segments name, as written, with each segment's index.
    pub fn bound_claims(&self) -> impl Iterator<Item = (usize, &str)> + '_ {
        self.segments()
            .enumerate()
            .filter_map(|(i, seg)| placeholder(seg).map(|name| (i, name)))
    }

    /// The path as an IAM resource pattern: a glob as written, and each template segment
    /// as `*` (`orders/{id}` is `orders/*`), a `${claim:NAME}` segment too. Wider than the
    /// route where a template is, since `*` also matches `/`: [`crate::mapping::exact`]
    /// denies what it over-covers.
    pub fn policy_pattern(&self) -> std::borrow::Cow<'_, str> {
        self.bound_pattern(|_| None)
    }

    /// [`policy_pattern`](Self::policy_pattern) with each `${claim:NAME}` segment written as
    /// the literal `value_of(NAME)` where it gives one, else `*`. The values are the
    /// token's, checked by [`crate::claim::bound_value`]: no `*`, `?` or `/` among them.
    pub fn bound_pattern<'v>(
        &self,
        value_of: impl Fn(&str) -> Option<&'v str>,
    ) -> std::borrow::Cow<'_, str> {
        if !self.has_params() {
            return std::borrow::Cow::Borrowed(&self.0);
        }
        let mut out = String::with_capacity(self.0.len());
        for (i, seg) in self.segments().enumerate() {
            if i > 0 {
                out.push('/');
            }
            out.push_str(match placeholder(seg) {
                Some(name) => value_of(name).unwrap_or("*"),
                None if seg.starts_with('{') => "*",
                None => seg,
            });
        }
        std::borrow::Cow::Owned(out)
    }
}

/// How a claim placeholder segment starts, in the style of IAM's policy variables.
pub const PLACEHOLDER: &str = "${claim:";

/// The claim name of a `${claim:NAME}` segment.
pub fn placeholder(seg: &str) -> Option<&str> {
    seg.strip_prefix(PLACEHOLDER)?.strip_suffix('}')
}

/// The segments of `path` split at `/`, but a segment starting `${claim:` runs to its first
/// `}` before it may end, so that `${claim:/org/id}` is one segment.
pub(crate) fn path_segments(path: &str) -> impl Iterator<Item = &str> + '_ {
    let mut rest = Some(path);
    std::iter::from_fn(move || {
        let r = rest?;
        let from = if r.starts_with(PLACEHOLDER) {
            r.find('}').unwrap_or(0)
        } else {
            0
        };
        match r[from..].find('/') {
            Some(k) => {
                rest = Some(&r[from + k + 1..]);
                Some(&r[..from + k])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
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

/// One permissions-mapping entry: a token meeting `scopes` is granted (or, with `effect:
/// Deny`, refused) `method` on `resource` of `api` in `stage`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "RawMapping")]
pub struct Mapping {
    /// The API, `arn:aws:execute-api:REGION:ACCOUNT:APIID`.
    pub api: ApiArn,
    /// The stage, or `*` for every stage.
    pub stage: Stage,
    /// The method, `*` ([`Method::Every`]) or `ANY` ([`Method::Any`]).
    pub method: Method,
    /// The resource path pattern.
    pub resource: ResourcePath,
    /// What a token must carry for this entry to apply: one scope, all of several, (only
    /// when written so) none beyond a verified token, or, for a route held for nobody,
    /// something no token carries ([`Requirement::nobody`]).
    pub scopes: Requirement,
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
        self.policy_resources_as(&self.resource.policy_pattern(), request_stage, kind)
    }

    /// [`policy_resources`](Self::policy_resources) with the resource written as `pattern`:
    /// its [`bound_pattern`](ResourcePath::bound_pattern) for one token's claims.
    pub fn policy_resources_as(
        &self,
        pattern: &str,
        request_stage: &str,
        kind: ApiKind,
    ) -> Vec<String> {
        let slash_too = !self.resource.is_root()
            && !pattern.ends_with('*')
            && (self.effect == Effect::Deny || kind == ApiKind::Rest);
        method_arns(
            self.api.as_str(),
            self.stage.for_request(request_stage),
            self.method,
            self.effect == Effect::Deny,
            pattern,
            slash_too,
        )
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
            && self.scopes == other.scopes
    }
}

impl fmt::Display for Mapping {
    /// `email: Allow GET arn:.../dev/GET/my-resource`, for listings and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {}",
            self.scopes,
            self.effect,
            self.resource_arn()
        )
    }
}

/// `"claims"` as written: each claim once, with its values, in order.
struct ClaimsOut<'a>(&'a [ClaimMatch]);

impl Serialize for ClaimsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = serializer.serialize_map(None)?;
        for group in self.0.chunk_by(|a, b| a.name() == b.name()) {
            let values: Vec<serde_json::Value> =
                group.iter().map(|c| c.value().to_json()).collect();
            m.serialize_entry(group[0].name().as_str(), &values)?;
        }
        m.end()
    }
}

impl Serialize for Mapping {
    /// The canonical form: `"scope"` for one scope (as the seed writes it), `"scopes"` for
    /// all of several or for none (`[]`, any verified token), `"nobody": true` for a route
    /// held for nobody.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Mapping", 6)?;
        s.serialize_field("api", &self.api)?;
        s.serialize_field("stage", &self.stage)?;
        s.serialize_field("method", &self.method)?;
        s.serialize_field("resource", &self.resource)?;
        if self.scopes.is_nobody() {
            s.serialize_field("nobody", &true)?;
        } else {
            match self.scopes.single() {
                Some(one) => s.serialize_field("scope", one)?,
                None => s.serialize_field("scopes", self.scopes.scopes())?,
            }
            if !self.scopes.claims().is_empty() {
                s.serialize_field("claims", &ClaimsOut(self.scopes.claims()))?;
            }
        }
        s.serialize_field("effect", &self.effect)?;
        s.end()
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
    scopes: Option<Vec<String>>,
    /// `true`: the route is held for nobody ([`Requirement::nobody`]), in place of `scope`
    /// or `scopes`.
    nobody: Option<bool>,
    /// Claim values required beside the scopes: `{"groups": ["support-leads"]}`.
    claims: Option<RawClaims>,
    effect: Option<String>,
}

/// `"claims"` as written: claim name -> the values it must hold, all of them. A name given
/// twice is refused (a JSON reader keeping the last would silently drop a requirement).
#[derive(Debug, Default)]
pub(crate) struct RawClaims(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for RawClaims {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawClaims;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of claim names to lists of values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawClaims, A::Error> {
                let mut out: Vec<(String, serde_json::Value)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if out.iter().any(|(n, _)| *n == name) {
                        return Err(serde::de::Error::custom(format!(
                            "claim {name:?} is given twice"
                        )));
                    }
                    out.push((name, map.next_value()?));
                }
                Ok(RawClaims(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl RawClaims {
    /// The claim values required, each checked.
    fn matches(self) -> Result<Vec<ClaimMatch>, MappingError> {
        claim_matches(self.0)
    }
}

/// The claim values `claims` (name -> list of values) requires, each checked: an entry's
/// `"claims"`, or a stored item's.
pub(crate) fn claim_matches(
    claims: impl IntoIterator<Item = (String, serde_json::Value)>,
) -> Result<Vec<ClaimMatch>, MappingError> {
    {
        use crate::claim::{ClaimName, ClaimValue};
        let mut out = Vec::new();
        for (name, values) in claims {
            let bad = |reason| MappingError::Claims {
                value: name.clone(),
                reason,
            };
            let claim = ClaimName::new(&name).map_err(|e| bad(e.reason()))?;
            let serde_json::Value::Array(values) = values else {
                return Err(bad("list the values the claim must hold: [\"value\", ...]"));
            };
            if values.is_empty() {
                return Err(bad("list at least one value"));
            }
            for v in &values {
                let v = ClaimValue::from_json(v).map_err(|e| bad(e.reason()))?;
                out.push(ClaimMatch::new(claim.clone(), v));
            }
        }
        Ok(out)
    }
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
        let nobody = raw.nobody == Some(true);
        let scopes = match (raw.scope, raw.scopes) {
            (Some(_), Some(_)) => {
                return Err(MappingError::Both {
                    first: "scope",
                    second: "scopes",
                })
            }
            (Some(_), None) | (None, Some(_)) if nobody => {
                return Err(MappingError::Nobody {
                    reason: "a route held for nobody requires no scope: give \"nobody\" or \"scope\"/\"scopes\", not both",
                })
            }
            (None, None) if nobody => Requirement::nobody(),
            (Some(one), None) => Requirement::one(Scope::new(&one)?),
            (None, Some(all)) => Requirement::all_of(
                all.iter()
                    .map(|s| Scope::new(s))
                    .collect::<Result<Vec<_>, _>>()?,
            )?,
            (None, None) => {
                return Err(MappingError::Missing {
                    field: "scope (or scopes: [...], [] for any verified token)",
                })
            }
        };
        let scopes = match raw.claims {
            Some(claims) => scopes.with_claims(claims.matches()?)?,
            None => scopes,
        };
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
        if nobody && effect == Effect::Deny {
            return Err(MappingError::Nobody {
                reason: "a Deny for nobody denies nothing: \"nobody\" holds a route (an Allow) for nobody",
            });
        }
        if nobody && !resource.is_route() {
            return Err(MappingError::Nobody {
                reason: "only a route (literal segments, {param}, {proxy+}) can be held for nobody, not a glob",
            });
        }
        Ok(Mapping {
            api,
            stage,
            method,
            resource,
            scopes,
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

    /// A route held for nobody (an OpenAPI operation scopegate cannot honour) is written
    /// `"nobody": true` in place of a scope, round-trips, and is refused where it would mean
    /// nothing.
    #[test]
    fn a_route_held_for_nobody() {
        let m = entry(&format!(
            r#"{{"api":"{API}","stage":"dev","method":"GET","resource":"keys/{{id}}","nobody":true}}"#
        ))
        .unwrap();
        assert!(m.scopes.is_nobody());
        assert_eq!(
            m.to_string(),
            format!("(nobody): Allow {API}/dev/GET/keys/{{id}}")
        );
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains(r#""nobody":true"#), "{json}");
        assert_eq!(entry(&json).unwrap(), m);
        for (extra, why) in [
            (r#""nobody":true,"effect":"Deny""#, "denies nothing"),
            (r#""nobody":true,"scope":"a""#, "not both"),
            (r#""nobody":false"#, "missing"),
        ] {
            let err = entry(&format!(
                r#"{{"api":"{API}","stage":"dev","method":"GET","resource":"keys",{extra}}}"#
            ))
            .unwrap_err();
            assert!(err.contains(why), "{extra}: {err}");
        }
        let err = entry(&format!(
            r#"{{"api":"{API}","stage":"dev","method":"GET","resource":"keys/*","nobody":true}}"#
        ))
        .unwrap_err();
        assert!(err.contains("not a glob"), "{err}");
    }

    #[test]
    fn methods_parse_case_insensitively() {
        assert_eq!("get".parse::<Method>().unwrap(), Method::Get);
        assert_eq!("Delete".parse::<Method>().unwrap(), Method::Delete);
        assert_eq!("*".parse::<Method>().unwrap(), Method::Every);
        assert_eq!("any".parse::<Method>().unwrap(), Method::Any);
        assert_eq!(Method::Any.to_string(), "ANY");
        assert_eq!(Method::Every.to_string(), "*");
        assert_eq!(Method::Options.to_string(), "OPTIONS");
        let err = "FETCH".parse::<Method>().unwrap_err();
        assert!(err.to_string().contains("\"FETCH\""), "{err}");
    }

    #[test]
    fn claims_are_required_beside_scopes_and_refused_when_unusable() {
        let api = API;
        let parse = |rest: &str| -> Result<Mapping, String> {
            serde_json::from_str::<Mapping>(&format!(
                r#"{{"api":"{api}","stage":"dev","method":"DELETE","resource":"orders/{{id}}",{rest}}}"#
            ))
            .map_err(|e| e.to_string())
        };
        let m = parse(
            r#""scopes":["orders:write"],"claims":{"groups":["support-leads"],"acr":["urn:okta:mfa"]}"#,
        )
        .unwrap();
        assert_eq!(m.scopes.claims().len(), 2);
        assert_eq!(
            m.scopes.to_string(),
            r#"orders:write acr="urn:okta:mfa" groups="support-leads""#
        );
        assert!(!m.scopes.is_any_token());
        assert_eq!(m.scopes.single().map(Scope::as_str), Some("orders:write"));
        // Written back: the one scope as "scope", the claims grouped by name.
        let json = serde_json::to_string(&m).unwrap();
        assert!(
            json.contains(r#""scope":"orders:write","claims":{"acr":["urn:okta:mfa"],"groups":["support-leads"]}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Mapping>(&json).unwrap(), m);
        // Claims alone, with "scopes": [] written out.
        let only =
            parse(r#""scopes":[],"claims":{"/realm_access/roles":["admin"],"tier":[3, true]}"#)
                .unwrap();
        assert!(only.scopes.scopes().is_empty() && !only.scopes.is_any_token());
        assert_eq!(only.scopes.keys().len(), 3);
        for (bad, why) in [
            (r#""scope":"a","claims":{"groups":"x"}"#, "list the values"),
            (r#""scope":"a","claims":{"groups":[]}"#, "at least one"),
            (
                r#""scope":"a","claims":{"groups":["x"],"groups":["y"]}"#,
                "twice",
            ),
            (r#""scope":"a","claims":{"g r":["x"]}"#, "printable ASCII"),
            (r#""scope":"a","claims":{"scope":["x"]}"#, "hold scopes"),
            (r#""scope":"a","claims":{"/a//b":["x"]}"#, "JSON Pointer"),
            (r#""scope":"a","claims":{"g":[1.5]}"#, "an integer"),
            (r#""scope":"a","claims":{"g":[""]}"#, "1 to 256"),
            (r#""scope":"a","claims":{"g":[null]}"#, "an integer"),
            (r#""scope":"a","claims":{"g":[["x"]]}"#, "an integer"),
            (r#""scope":"a","claims":{"g":["a"]}"#, "control"),
            (r#""nobody":true,"claims":{"g":["x"]}"#, "nobody"),
            (r#""claims":{"g":["x"]}"#, "missing"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let many: Vec<String> = (0..17).map(|i| format!("\"v{i}\"")).collect();
        let err = parse(&format!(
            r#""scope":"a","claims":{{"g":[{}]}}"#,
            many.join(",")
        ))
        .unwrap_err();
        assert!(err.contains("at most 16"), "{err}");
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
    fn route_templates_are_whole_segments_and_render_as_star() {
        for (input, pattern) in [
            ("/orders/{id}", "orders/*"),
            ("orders/{id}/payments", "orders/*/payments"),
            ("/files/{proxy+}", "files/*"),
            ("{proxy+}", "*"),
            ("a/{x.y-z_1}/b", "a/*/b"),
        ] {
            let p = ResourcePath::new(input).unwrap();
            assert!(p.is_route() && p.has_params(), "{input}");
            assert_eq!(p.policy_pattern(), pattern, "{input}");
        }
        assert!(ResourcePath::new("orders").unwrap().is_route());
        assert!(!ResourcePath::new("orders/*").unwrap().is_route());
        for (bad, why) in [
            ("orders/{id", "whole segment"),
            ("orders/x{id}", "whole segment"),
            ("orders/{}", "name"),
            ("orders/{a b}", "whitespace"),
            ("orders/{+}", "name"),
            ("{proxy+}/x", "last segment"),
            ("orders/{id}/*", "not both"),
            ("a b", "whitespace"),
            ("a\nb", "control"),
            ("a//b", "//"),
            ("//", "//"),
        ] {
            let err = ResourcePath::new(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn all_of_and_any_token_are_written_as_scopes() {
        let all = entry(&format!(
            r#"{{"api":"{API}","stage":"dev","method":"POST","resource":"orders","scopes":["orders:write","orders:admin"]}}"#
        ))
        .unwrap();
        assert_eq!(all.scopes.to_string(), "orders:admin orders:write");
        let json = serde_json::to_string(&all).unwrap();
        assert!(
            json.contains(r#""scopes":["orders:admin","orders:write"]"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Mapping>(&json).unwrap(), all);
        let any = entry(&format!(
            r#"{{"api":"{API}","stage":"dev","method":"GET","resource":"health","scopes":[]}}"#
        ))
        .unwrap();
        assert!(any.scopes.is_any_token());
        let json = serde_json::to_string(&any).unwrap();
        assert!(json.contains(r#""scopes":[]"#), "{json}");
        assert_eq!(serde_json::from_str::<Mapping>(&json).unwrap(), any);
        // One scope in a list is the same entry as `scope`, written back as `scope`.
        let one = entry(&format!(
            r#"{{"api":"{API}","stage":"dev","method":"GET","resource":"r","scopes":["s"]}}"#
        ))
        .unwrap();
        assert!(serde_json::to_string(&one)
            .unwrap()
            .contains(r#""scope":"s""#));
        // Never by omission, never both, never a bad scope inside.
        for (json, needle) in [
            (
                format!(r#"{{"api":"{API}","stage":"dev","method":"GET","resource":"r"}}"#),
                "scope (or scopes",
            ),
            (
                format!(
                    r#"{{"api":"{API}","stage":"dev","method":"GET","resource":"r","scope":"a","scopes":["b"]}}"#
                ),
                "\"scope\" and \"scopes\"",
            ),
            (
                format!(
                    r#"{{"api":"{API}","stage":"dev","method":"GET","resource":"r","scopes":["a b"]}}"#
                ),
                "whitespace",
            ),
            (
                format!(
                    r#"{{"api":"{API}","stage":"dev","method":"GET","resource":"r","scopes":"a"}}"#
                ),
                "invalid type",
            ),
        ] {
            let err = entry(&json).unwrap_err();
            assert!(err.contains(needle), "{json}: {err}");
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
            scopes: Requirement::one(Scope::new("s").unwrap()),
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
        assert_eq!(any.resource_arn(), format!("{API}/dev/ANY/*"));
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
