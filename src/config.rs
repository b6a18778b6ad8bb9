//! Every setting, read from the environment once at start and validated there.
//!
//! The authorizer and `scopegate invoke` read the same settings, so an event replayed offline
//! is answered exactly as the Lambda would answer it. A bad value stops the start with an
//! error that names the setting and the value ([`ConfigError`]); nothing is re-read or
//! re-validated per request.
//!
//! [`SETTINGS`] lists every variable with its default and range: the documentation's
//! configuration reference is checked against it.

use std::path::PathBuf;
use std::time::Duration;

use crate::alg::Alg;
use crate::claim::ClaimName;

/// One setting the code reads: its name, what values it takes (with its default and range)
/// and what it does. This table drives the parser (numbers are read through their row, so
/// a default or range is written once), [`Config::new`]'s defaults, and the test that
/// compares docs/configuration.md with it row by row.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The environment variable.
    pub name: &'static str,
    /// Its values: the default and the range.
    pub kind: Kind,
    /// One line on what it does.
    pub doc: &'static str,
}

/// The values a setting takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text: a word, a list, a URL, a name. Checked by its own parser.
    Text {
        /// The default as a user would write it; "" when unset means off or required.
        default: &'static str,
        /// The values it takes, as the documentation's range column says them.
        values: &'static str,
    },
    /// A whole number in `min..=max`.
    Number {
        /// Used when unset.
        default: u64,
        /// The least value.
        min: u64,
        /// The greatest value.
        max: u64,
        /// Another setting the value may not be below (its name, and how the documentation
        /// says it), checked after both are read.
        floor: Option<(&'static str, &'static str)>,
    },
}

impl Setting {
    /// The default as a user would write it ("" for none).
    pub fn default_text(&self) -> std::borrow::Cow<'static, str> {
        match self.kind {
            Kind::Text { default, .. } => default.into(),
            Kind::Number { default, .. } => default.to_string().into(),
        }
    }

    /// The range as docs/configuration.md writes it: `0 to 300`, `the TTL to 86400`, or the
    /// text setting's values.
    pub fn range_text(&self) -> std::borrow::Cow<'static, str> {
        match self.kind {
            Kind::Text { values, .. } => values.into(),
            Kind::Number {
                min, max, floor, ..
            } => match floor {
                Some((_, said)) => format!("{said} to {max}").into(),
                None => format!("{min} to {max}").into(),
            },
        }
    }

    /// The default of a number setting.
    ///
    /// # Panics
    /// On a text setting: a programming error, caught by the unit tests (and at compile
    /// time where it is used in a const).
    pub const fn number_default(&self) -> u64 {
        match self.kind {
            Kind::Number { default, .. } => default,
            Kind::Text { .. } => panic!("not a number setting"),
        }
    }

    /// A number setting's value in another environment (a deployed function's, read from its
    /// configuration), its default when unset, checked against its range.
    ///
    /// # Errors
    /// [`ConfigError`] naming the setting and the value.
    #[cfg(feature = "cli")]
    pub fn number_from(&self, get: impl Fn(&str) -> Option<String>) -> Result<u64, ConfigError> {
        number(&get, self)
    }

    /// The default of a text setting ("" for none).
    ///
    /// # Panics
    /// On a number setting (a programming error).
    pub const fn text_default(&self) -> &'static str {
        match self.kind {
            Kind::Text { default, .. } => default,
            Kind::Number { .. } => panic!("not a text setting"),
        }
    }
}

/// `SCOPEGATE_ISSUER`: Trusted issuer(s), comma-separated; the token's iss must equal one. Required.
pub const ISSUER: Setting = Setting {
    name: "SCOPEGATE_ISSUER",
    kind: Kind::Text {
        default: "",
        values: "https URLs, comma-separated (http only on loopback)",
    },
    doc: "Trusted issuer(s), comma-separated; the token's iss must equal one. Required.",
};
/// `SCOPEGATE_AUDIENCE`: When set, the token's aud must contain one of these (comma-separated).
pub const AUDIENCE: Setting = Setting {
    name: "SCOPEGATE_AUDIENCE",
    kind: Kind::Text {
        default: "",
        values: "comma-separated",
    },
    doc: "When set, the token's aud must contain one of these (comma-separated).",
};
/// `SCOPEGATE_JWKS_URL`: JWKS URL(s), one per issuer in the same order; default: OIDC discovery of each issuer.
pub const JWKS_URL: Setting = Setting {
    name: "SCOPEGATE_JWKS_URL",
    kind: Kind::Text {
        default: "",
        values: "https URLs, one per issuer, same order",
    },
    doc: "JWKS URL(s), one per issuer in the same order; default: OIDC discovery of each issuer.",
};
/// `SCOPEGATE_JWKS_FILE`: A local JWKS file trusted for every issuer (offline use); no fetches.
pub const JWKS_FILE: Setting = Setting {
    name: "SCOPEGATE_JWKS_FILE",
    kind: Kind::Text {
        default: "",
        values: "a file path",
    },
    doc: "A local JWKS file trusted for every issuer (offline use); no fetches.",
};
/// `SCOPEGATE_ALGORITHMS`: Allowed JWS algorithms. HMAC and none are never allowed.
pub const ALGORITHMS: Setting = Setting {
    name: "SCOPEGATE_ALGORITHMS",
    kind: Kind::Text {
        default: "RS256,RS384,RS512,PS256,ES256,ES384,EdDSA",
        values: "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA",
    },
    doc: "Allowed JWS algorithms. HMAC and none are never allowed.",
};
/// `SCOPEGATE_LEEWAY_SECONDS`: Clock skew allowed on exp, nbf and iat.
pub const LEEWAY_SECONDS: Setting = Setting {
    name: "SCOPEGATE_LEEWAY_SECONDS",
    kind: Kind::Number {
        default: 60,
        min: 0,
        max: 300,
        floor: None,
    },
    doc: "Clock skew allowed on exp, nbf and iat.",
};
/// `SCOPEGATE_REQUIRE_TYP`: Set to at+jwt to require RFC 9068 access tokens (typ header).
pub const REQUIRE_TYP: Setting = Setting {
    name: "SCOPEGATE_REQUIRE_TYP",
    kind: Kind::Text {
        default: "",
        values: "`at+jwt`",
    },
    doc: "Set to at+jwt to require RFC 9068 access tokens (typ header).",
};
/// `SCOPEGATE_SCOPE_CLAIM`: Claim holding the scopes; default scp (array or string), then scope.
pub const SCOPE_CLAIM: Setting = Setting {
    name: "SCOPEGATE_SCOPE_CLAIM",
    kind: Kind::Text {
        default: "",
        values: "a claim name",
    },
    doc: "Claim holding the scopes; default scp (array or string), then scope.",
};
/// `SCOPEGATE_GRANT_CLAIMS`: Claims besides the scopes that mapping entries may require.
pub const GRANT_CLAIMS: Setting = Setting {
    name: "SCOPEGATE_GRANT_CLAIMS",
    kind: Kind::Text {
        default: "",
        values: "comma-separated claim names or JSON Pointers",
    },
    doc: "Claims besides the scopes that mapping entries may require (groups, roles, /realm_access/roles, acr).",
};
/// `SCOPEGATE_PROVIDERS`: Per-issuer audiences, scope claim and grant claims, as a JSON array.
pub const PROVIDERS: Setting = Setting {
    name: "SCOPEGATE_PROVIDERS",
    kind: Kind::Text {
        default: "",
        values: "a JSON array of {\"issuer\", \"audiences\", \"scope_claim\", \"grant_claims\"}",
    },
    doc: "Per-issuer rules where issuers differ: each names one of SCOPEGATE_ISSUER and overrides SCOPEGATE_AUDIENCE, SCOPEGATE_SCOPE_CLAIM and SCOPEGATE_GRANT_CLAIMS for its tokens.",
};
/// `SCOPEGATE_INTROSPECT`: RFC 7662 introspection: never, opaque (non-JWT tokens only) or always.
pub const INTROSPECT: Setting = Setting {
    name: "SCOPEGATE_INTROSPECT",
    kind: Kind::Text {
        default: "never",
        values: "`never`, `opaque`, `always`",
    },
    doc: "RFC 7662 introspection: never, opaque (non-JWT tokens only) or always.",
};
/// `SCOPEGATE_INTROSPECTION_URL`: Introspection endpoint; default: introspection_endpoint from discovery.
pub const INTROSPECTION_URL: Setting = Setting {
    name: "SCOPEGATE_INTROSPECTION_URL",
    kind: Kind::Text {
        default: "",
        values: "an https URL",
    },
    doc: "Introspection endpoint; default: introspection_endpoint from discovery.",
};
/// `SCOPEGATE_INTROSPECTION_CLIENT_ID`: Client id for introspection (HTTP Basic).
pub const INTROSPECTION_CLIENT_ID: Setting = Setting {
    name: "SCOPEGATE_INTROSPECTION_CLIENT_ID",
    kind: Kind::Text {
        default: "",
        values: "",
    },
    doc: "Client id for introspection (HTTP Basic).",
};
/// `SCOPEGATE_INTROSPECTION_CLIENT_SECRET`: Client secret for introspection (HTTP Basic). Never logged.
pub const INTROSPECTION_CLIENT_SECRET: Setting = Setting {
    name: "SCOPEGATE_INTROSPECTION_CLIENT_SECRET",
    kind: Kind::Text {
        default: "",
        values: "",
    },
    doc: "Client secret for introspection (HTTP Basic). Never logged.",
};
/// `SCOPEGATE_INTROSPECTION_CACHE_SECONDS`: How long an introspection answer is reused, at most until exp.
pub const INTROSPECTION_CACHE_SECONDS: Setting = Setting {
    name: "SCOPEGATE_INTROSPECTION_CACHE_SECONDS",
    kind: Kind::Number {
        default: 30,
        min: 0,
        max: 300,
        floor: None,
    },
    doc: "How long an introspection answer is reused, at most until exp.",
};
/// `SCOPEGATE_TOKEN_CACHE_SECONDS`: How long a verified token is reused in a warm container, at most until exp (0 turns it off).
pub const TOKEN_CACHE_SECONDS: Setting = Setting {
    name: "SCOPEGATE_TOKEN_CACHE_SECONDS",
    kind: Kind::Number { default: 300, min: 0, max: 3600, floor: None },
    doc: "How long a verified token is reused in a warm container, at most until exp (0 turns it off).",
};
/// `SCOPEGATE_TOKEN_CACHE_ENTRIES`: Verified tokens kept per container.
pub const TOKEN_CACHE_ENTRIES: Setting = Setting {
    name: "SCOPEGATE_TOKEN_CACHE_ENTRIES",
    kind: Kind::Number {
        default: 10_000,
        min: 1,
        max: 1_000_000,
        floor: None,
    },
    doc: "Verified tokens kept per container.",
};
/// `SCOPEGATE_MAX_TOKEN_BYTES`: Longest token accepted, checked before any decoding.
pub const MAX_TOKEN_BYTES: Setting = Setting {
    name: "SCOPEGATE_MAX_TOKEN_BYTES",
    kind: Kind::Number {
        default: 16_384,
        min: 512,
        max: 65_536,
        floor: None,
    },
    doc: "Longest token accepted, checked before any decoding.",
};
/// `SCOPEGATE_HTTP_TIMEOUT_MS`: Timeout of every fetch to the identity provider.
pub const HTTP_TIMEOUT_MS: Setting = Setting {
    name: "SCOPEGATE_HTTP_TIMEOUT_MS",
    kind: Kind::Number {
        default: 2000,
        min: 100,
        max: 30_000,
        floor: None,
    },
    doc: "Timeout of every fetch to the identity provider.",
};
/// `SCOPEGATE_JWKS_COOLDOWN_SECONDS`: Least time between two JWKS refetches caused by unknown kids.
pub const JWKS_COOLDOWN_SECONDS: Setting = Setting {
    name: "SCOPEGATE_JWKS_COOLDOWN_SECONDS",
    kind: Kind::Number {
        default: 30,
        min: 0,
        max: 3600,
        floor: None,
    },
    doc: "Least time between two JWKS refetches caused by unknown kids.",
};
/// `SCOPEGATE_TOKEN_HEADER`: Header holding the bearer token in REQUEST and HTTP API events (case-insensitive).
pub const TOKEN_HEADER: Setting = Setting {
    name: "SCOPEGATE_TOKEN_HEADER",
    kind: Kind::Text {
        default: "Authorization",
        values: "an HTTP header name",
    },
    doc: "Header holding the bearer token in REQUEST and HTTP API events (case-insensitive).",
};
/// `SCOPEGATE_RESPONSE`: HTTP API (payload 2.0) answer: iam (policy) or simple (isAuthorized, one route: cache it per route, see caching.md).
pub const RESPONSE: Setting = Setting {
    name: "SCOPEGATE_RESPONSE",
    kind: Kind::Text {
        default: "iam",
        values: "`iam`, `simple`",
    },
    doc: "HTTP API (payload 2.0) answer: iam (policy) or simple (isAuthorized, one route: cache it per route, see caching.md).",
};
/// `SCOPEGATE_CONTEXT_CLAIMS`: Claims copied into the authorizer context: `KEY=NAME` (NAME a claim or a JSON Pointer) or a top-level NAME as its own key; string values of at most 256 bytes only, anything else left out whole.
pub const CONTEXT_CLAIMS: Setting = Setting {
    name: "SCOPEGATE_CONTEXT_CLAIMS",
    kind: Kind::Text { default: "", values: "comma-separated `KEY=NAME` or `NAME`" },
    doc: "Claims copied into the authorizer context: `KEY=NAME` (NAME a claim or a JSON Pointer) or a top-level NAME as its own key; string values of at most 256 bytes only, anything else left out whole.",
};
/// `SCOPEGATE_USAGE_KEY_CLAIM`: Claim returned as usageIdentifierKey (API Gateway usage plans).
pub const USAGE_KEY_CLAIM: Setting = Setting {
    name: "SCOPEGATE_USAGE_KEY_CLAIM",
    kind: Kind::Text {
        default: "",
        values: "a claim name",
    },
    doc: "Claim returned as usageIdentifierKey (API Gateway usage plans).",
};
/// `SCOPEGATE_BOUND_TOKENS`: check (a bound token is checked, an unbound one accepted) or require (an unbound token is refused).
pub const BOUND_TOKENS: Setting = Setting {
    name: "SCOPEGATE_BOUND_TOKENS",
    kind: Kind::Text {
        default: "check",
        values: "`check`, `require`",
    },
    doc: "Tokens bound to their client (cnf): check (a bound token is checked, an unbound one accepted) or require (an unbound token is refused).",
};
/// `SCOPEGATE_BOUND_KINDS`: the bindings accepted; a token bound by another kind is refused.
pub const BOUND_KINDS: Setting = Setting {
    name: "SCOPEGATE_BOUND_KINDS",
    kind: Kind::Text {
        default: "mtls,dpop",
        values: "a comma-separated list of `mtls`, `dpop`, or `none`",
    },
    doc: "The bindings accepted: mtls (RFC 8705 certificate-bound) and dpop (RFC 9449); a token bound by a kind not listed is refused.",
};
/// `SCOPEGATE_DPOP_ORIGIN`: the public origin DPoP proofs name in htu, when something (CloudFront) sits in front of API Gateway.
pub const DPOP_ORIGIN: Setting = Setting {
    name: "SCOPEGATE_DPOP_ORIGIN",
    kind: Kind::Text {
        default: "",
        values: "an https origin (`https://api.example.com`; http on loopback)",
    },
    doc: "The origin DPoP proofs name in htu; default: https:// and the event's domain name. Set it when something (CloudFront) sits in front.",
};
/// `SCOPEGATE_DPOP_MAX_AGE_SECONDS`: how old a DPoP proof's iat may be.
pub const DPOP_MAX_AGE_SECONDS: Setting = Setting {
    name: "SCOPEGATE_DPOP_MAX_AGE_SECONDS",
    kind: Kind::Number {
        default: 60,
        min: 1,
        max: 300,
        floor: None,
    },
    doc: "How old a DPoP proof's iat may be; also how long its jti is remembered.",
};
/// `SCOPEGATE_DPOP_REPLAY_TABLE`: DynamoDB table of the DPoP proofs seen, shared by every container; unset means the in-container check only.
pub const DPOP_REPLAY_TABLE: Setting = Setting {
    name: "SCOPEGATE_DPOP_REPLAY_TABLE",
    kind: Kind::Text {
        default: "",
        values: "a DynamoDB table name",
    },
    doc: "DynamoDB table of the DPoP proofs seen (a conditional write per proof), shared by every container; unset means each container checks only its own.",
};
/// `SCOPEGATE_MAPPINGS_FILE`: Mappings file; default: the embedded seed-data/mappings.json.
pub const MAPPINGS_FILE: Setting = Setting {
    name: "SCOPEGATE_MAPPINGS_FILE",
    kind: Kind::Text {
        default: "",
        values: "a file path",
    },
    doc: "Mappings file; default: the embedded seed-data/mappings.json.",
};
/// `SCOPEGATE_MAPPINGS_TABLE`: DynamoDB table holding the mappings; when set, the authorizer reads them from there (warm cache) instead of SCOPEGATE_MAPPINGS_FILE.
pub const MAPPINGS_TABLE: Setting = Setting {
    name: "SCOPEGATE_MAPPINGS_TABLE",
    kind: Kind::Text { default: "", values: "a DynamoDB table name" },
    doc: "DynamoDB table holding the mappings; when set, the authorizer reads them from there (warm cache) instead of SCOPEGATE_MAPPINGS_FILE.",
};
/// `SCOPEGATE_SNAPSHOT_BUCKET`: S3 bucket of the mappings snapshot: the fallback when DynamoDB fails, and what loads read when the version record names its digest; unset means no fallback.
pub const SNAPSHOT_BUCKET: Setting = Setting {
    name: "SCOPEGATE_SNAPSHOT_BUCKET",
    kind: Kind::Text { default: "", values: "an S3 bucket name" },
    doc: "S3 bucket of the mappings snapshot: the fallback when DynamoDB fails, and what loads read when the version record names its digest; unset means no fallback.",
};
/// `SCOPEGATE_SNAPSHOT_KEY`: Object key of the mappings snapshot in SCOPEGATE_SNAPSHOT_BUCKET.
pub const SNAPSHOT_KEY: Setting = Setting {
    name: "SCOPEGATE_SNAPSHOT_KEY",
    kind: Kind::Text {
        default: "mappings/snapshot.json",
        values: "an S3 key, no leading `/`",
    },
    doc: "Object key of the mappings snapshot in SCOPEGATE_SNAPSHOT_BUCKET.",
};
/// `SCOPEGATE_MAPPING_TTL_SECONDS`: How long a warm container serves its mappings before checking the version.
pub const MAPPING_TTL_SECONDS: Setting = Setting {
    name: "SCOPEGATE_MAPPING_TTL_SECONDS",
    kind: Kind::Number {
        default: 60,
        min: 1,
        max: 3600,
        floor: None,
    },
    doc: "How long a warm container serves its mappings before checking the version.",
};
/// `SCOPEGATE_MAPPING_MAX_STALE_SECONDS`: How long the last good mappings are served while DynamoDB fails, before the S3 snapshot.
pub const MAPPING_MAX_STALE_SECONDS: Setting = Setting {
    name: "SCOPEGATE_MAPPING_MAX_STALE_SECONDS",
    kind: Kind::Number {
        default: 3600,
        min: 1,
        max: 86_400,
        floor: Some(("SCOPEGATE_MAPPING_TTL_SECONDS", "the TTL")),
    },
    doc: "How long the last good mappings are served while DynamoDB fails, before the S3 snapshot.",
};
/// `SCOPEGATE_POLICY_MAX_BYTES`: The largest answer returned; a larger one is narrowed to
/// the request. API Gateway's quota on a Lambda authorizer's result is 8 KB and cannot be
/// raised: 8 192 is the most, and the default of 8 000 leaves a margin in case AWS counts a
/// kilobyte as 1 000 bytes.
pub const POLICY_MAX_BYTES: Setting = Setting {
    name: "SCOPEGATE_POLICY_MAX_BYTES",
    kind: Kind::Number {
        default: 8000,
        min: 1024,
        max: 8192,
        floor: None,
    },
    doc: "The largest answer (policy, context and principal) returned; a larger one is narrowed to the request alone.",
};
/// `SCOPEGATE_LOG_LEVEL`: Log filter: a level, or `target=level` directives.
pub const LOG_LEVEL: Setting = Setting {
    name: "SCOPEGATE_LOG_LEVEL",
    kind: Kind::Text {
        default: "info",
        values: "target=level directives",
    },
    doc: "Log filter: a level, or target=level directives.",
};

/// Every environment variable the authorizer reads, in the documentation's order.
pub const SETTINGS: &[Setting] = &[
    ISSUER,
    AUDIENCE,
    JWKS_URL,
    JWKS_FILE,
    ALGORITHMS,
    LEEWAY_SECONDS,
    REQUIRE_TYP,
    SCOPE_CLAIM,
    GRANT_CLAIMS,
    PROVIDERS,
    INTROSPECT,
    INTROSPECTION_URL,
    INTROSPECTION_CLIENT_ID,
    INTROSPECTION_CLIENT_SECRET,
    INTROSPECTION_CACHE_SECONDS,
    TOKEN_CACHE_SECONDS,
    TOKEN_CACHE_ENTRIES,
    MAX_TOKEN_BYTES,
    HTTP_TIMEOUT_MS,
    JWKS_COOLDOWN_SECONDS,
    TOKEN_HEADER,
    RESPONSE,
    CONTEXT_CLAIMS,
    USAGE_KEY_CLAIM,
    BOUND_TOKENS,
    BOUND_KINDS,
    DPOP_ORIGIN,
    DPOP_MAX_AGE_SECONDS,
    DPOP_REPLAY_TABLE,
    MAPPINGS_FILE,
    MAPPINGS_TABLE,
    SNAPSHOT_BUCKET,
    SNAPSHOT_KEY,
    MAPPING_TTL_SECONDS,
    MAPPING_MAX_STALE_SECONDS,
    POLICY_MAX_BYTES,
    LOG_LEVEL,
];

/// A setting with a bad value. Names the setting and the value, so the operator can fix it
/// without reading code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required setting is not set.
    #[error("{name} must be set: {hint}")]
    Missing {
        /// The setting.
        name: &'static str,
        /// What to put there.
        hint: &'static str,
    },
    /// A setting's value cannot be used.
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

fn invalid(name: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Where the keys of one issuer come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// OIDC discovery (`/.well-known/openid-configuration`) of the issuer, then its jwks_uri.
    Discovery,
    /// A JWKS URL given directly.
    Url(String),
    /// A local JWKS file, read once at start (offline use; never refetched).
    File(PathBuf),
}

/// One trusted issuer and where its keys live. Keys are never taken from the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// The exact `iss` value.
    pub issuer: String,
    /// Where its signing keys come from.
    pub jwks: JwksSource,
}

/// One issuer's own rules (`SCOPEGATE_PROVIDERS`), where they differ from the deployment's:
/// Entra ID's app roles in `roles` beside Okta's `groups`, each with its own audience. A
/// rule left out is the deployment's setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRules {
    /// The issuer, exactly as in [`Config::issuers`].
    pub issuer: String,
    /// Its tokens' accepted audiences, instead of [`Config::audiences`]; never empty.
    pub audiences: Option<Vec<String>>,
    /// Where its tokens hold scopes, instead of [`Config::scope_claim`].
    pub scope_claim: Option<ScopeClaim>,
    /// The grant claims read from its tokens, instead of [`Config::grant_claims`].
    pub grant_claims: Option<Vec<ClaimName>>,
}

/// The rules one issuer's tokens are read by: its [`ProviderRules`] over the deployment's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerRules {
    /// When non-empty, the token's aud must contain one of these.
    pub audiences: Vec<String>,
    /// Where scopes are read from.
    pub scope_claim: ScopeClaim,
    /// The grant claims read.
    pub grant_claims: Vec<ClaimName>,
}

/// Which tokens are sent to the RFC 7662 introspection endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntrospectMode {
    /// Only tokens that are not JWTs (opaque tokens); JWTs are verified locally.
    Opaque,
    /// Every token; JWTs are verified locally first, then checked for revocation.
    Always,
}

/// RFC 7662 introspection settings; present only when introspection is on.
#[derive(Clone, PartialEq, Eq)]
pub struct IntrospectionConfig {
    /// Which tokens are introspected.
    pub mode: IntrospectMode,
    /// The endpoint; `None` means "from the first issuer's discovery document".
    pub url: Option<String>,
    /// Client id for HTTP Basic authentication.
    pub client_id: String,
    /// Client secret for HTTP Basic authentication.
    pub client_secret: String,
    /// How long an answer is reused (bounded by the token's exp).
    pub cache_ttl: Duration,
}

impl std::fmt::Debug for IntrospectionConfig {
    // The secret must never reach a log line, even through `{:?}` of the config.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionConfig")
            .field("mode", &self.mode)
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("cache_ttl", &self.cache_ttl)
            .finish()
    }
}

/// The answer format for HTTP API (payload 2.0) events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// An IAM policy, as for REST APIs.
    Iam,
    /// The simple response, `{"isAuthorized": bool, "context": {...}}`.
    Simple,
}

/// What is done with tokens that are not bound to their client (`SCOPEGATE_BOUND_TOKENS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundMode {
    /// A bound token is checked; an unbound one is accepted as a bearer token.
    Check,
    /// An unbound token is refused.
    Require,
}

/// The kinds of binding accepted (`SCOPEGATE_BOUND_KINDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundKinds {
    /// Certificate-bound tokens (RFC 8705, `cnf.x5t#S256`).
    pub mtls: bool,
    /// DPoP-bound tokens (RFC 9449, `cnf.jkt`).
    pub dpop: bool,
}

/// How DPoP proofs are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopConfig {
    /// The origin proofs name, when not `https://` and the event's domain name.
    pub origin: Option<String>,
    /// How old a proof may be, in seconds.
    pub max_age: u64,
    /// The DynamoDB table shared by every container, if any.
    pub replay_table: Option<String>,
}

/// Where the scopes are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeClaim {
    /// `scp` (array or space-delimited string), else `scope` (space-delimited string).
    Standard,
    /// One named claim (array or space-delimited string).
    Named(String),
}

/// Where the mappings come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingsSource {
    /// The seed data compiled into the binary.
    Embedded,
    /// A JSON file.
    File(PathBuf),
}

/// The validated settings. Built once per container ([`Config::from_env`]) or by hand in
/// tests and local mode; every field has a sensible default (see [`SETTINGS`]).
#[derive(Debug, Clone)]
pub struct Config {
    /// Trusted issuers, each with its key source. Never empty.
    pub issuers: Vec<IssuerConfig>,
    /// When non-empty, the token's aud must contain one of these.
    pub audiences: Vec<String>,
    /// Allowed algorithms. Defaults to every asymmetric algorithm but PS384 and PS512.
    pub algorithms: Vec<Alg>,
    /// Clock skew allowed on exp, nbf and iat. Defaults to 60 s, at most 300 s.
    pub leeway: u64,
    /// Require the RFC 9068 `typ: at+jwt` header. Defaults to false.
    pub require_at_jwt: bool,
    /// Where scopes are read from. Defaults to [`ScopeClaim::Standard`].
    pub scope_claim: ScopeClaim,
    /// The claims besides the scopes that mapping entries may require; a token's other claims
    /// are never read for a grant. Defaults to none.
    pub grant_claims: Vec<ClaimName>,
    /// Per-issuer audiences, scope claim and grant claims, where an issuer differs from the
    /// settings above. Defaults to none.
    pub providers: Vec<ProviderRules>,
    /// Introspection, when on. Defaults to off.
    pub introspection: Option<IntrospectionConfig>,
    /// How long a verified token is reused; zero turns the cache off. Defaults to 300 s.
    pub token_cache_ttl: Duration,
    /// Verified tokens kept. Defaults to 10 000.
    pub token_cache_entries: usize,
    /// Longest token accepted. Defaults to 16 KiB.
    pub max_token_bytes: usize,
    /// Timeout of each fetch to the identity provider. Defaults to 2 s.
    pub http_timeout: Duration,
    /// Least time between unknown-kid refetches of one JWKS. Defaults to 30 s.
    pub jwks_cooldown: Duration,
    /// Header holding the token in REQUEST and HTTP API events. Defaults to Authorization.
    pub token_header: String,
    /// HTTP API answer format. Defaults to [`ResponseMode::Iam`].
    pub response: ResponseMode,
    /// Claims copied into the authorizer context, each under its key.
    pub context_claims: Vec<ContextClaim>,
    /// Claim returned as usageIdentifierKey.
    pub usage_key_claim: Option<String>,
    /// Where the mappings come from. Defaults to the embedded seed data.
    pub mappings: MappingsSource,
    /// The largest IAM answer returned, in bytes; a larger one is narrowed to the request.
    /// Defaults to 8 000, under API Gateway's 8 KB quota on an authorizer's result.
    pub policy_max_bytes: usize,
    /// DynamoDB table of the mappings; when set it replaces [`Config::mappings`]. Defaults to
    /// none.
    pub mappings_table: Option<String>,
    /// S3 bucket of the mappings snapshot (the fallback). Defaults to none (no fallback).
    pub snapshot_bucket: Option<String>,
    /// Object key of the snapshot. Defaults to `mappings/snapshot.json`.
    pub snapshot_key: String,
    /// How long mappings are served before the version is checked. Defaults to 60 s.
    pub mapping_ttl: Duration,
    /// How long the last good mappings are served while DynamoDB fails. Defaults to 3600 s.
    pub mapping_max_stale: Duration,
    /// Whether unbound tokens are accepted. Defaults to [`BoundMode::Check`].
    pub bound_mode: BoundMode,
    /// Which bindings are accepted. Defaults to both.
    pub bound_kinds: BoundKinds,
    /// DPoP proof checks. Defaults to the event's origin, 60 s, no table.
    pub dpop: DpopConfig,
}

impl Config {
    /// A config trusting `issuers` (each through discovery), everything else at its default.
    pub fn new(issuers: Vec<IssuerConfig>) -> Self {
        Self {
            issuers,
            audiences: Vec::new(),
            algorithms: Alg::DEFAULT_ALLOWED.to_vec(),
            leeway: LEEWAY_SECONDS.number_default(),
            require_at_jwt: false,
            scope_claim: ScopeClaim::Standard,
            grant_claims: Vec::new(),
            providers: Vec::new(),
            introspection: None,
            token_cache_ttl: Duration::from_secs(TOKEN_CACHE_SECONDS.number_default()),
            token_cache_entries: TOKEN_CACHE_ENTRIES.number_default() as usize,
            max_token_bytes: MAX_TOKEN_BYTES.number_default() as usize,
            http_timeout: Duration::from_millis(HTTP_TIMEOUT_MS.number_default()),
            jwks_cooldown: Duration::from_secs(JWKS_COOLDOWN_SECONDS.number_default()),
            token_header: TOKEN_HEADER.text_default().to_owned(),
            response: ResponseMode::Iam,
            context_claims: Vec::new(),
            usage_key_claim: None,
            mappings: MappingsSource::Embedded,
            policy_max_bytes: POLICY_MAX_BYTES.number_default() as usize,
            mappings_table: None,
            snapshot_bucket: None,
            snapshot_key: SNAPSHOT_KEY.text_default().to_owned(),
            mapping_ttl: Duration::from_secs(MAPPING_TTL_SECONDS.number_default()),
            mapping_max_stale: Duration::from_secs(MAPPING_MAX_STALE_SECONDS.number_default()),
            bound_mode: BoundMode::Check,
            bound_kinds: BoundKinds {
                mtls: true,
                dpop: true,
            },
            dpop: DpopConfig {
                origin: None,
                max_age: DPOP_MAX_AGE_SECONDS.number_default(),
                replay_table: None,
            },
        }
    }

    /// The rules the tokens of `issuer` are read by: its [`ProviderRules`] where given, else
    /// the deployment's settings.
    pub fn rules_for(&self, issuer: &str) -> IssuerRules {
        let own = self.providers.iter().find(|p| p.issuer == issuer);
        IssuerRules {
            audiences: own
                .and_then(|p| p.audiences.clone())
                .unwrap_or_else(|| self.audiences.clone()),
            scope_claim: own
                .and_then(|p| p.scope_claim.clone())
                .unwrap_or_else(|| self.scope_claim.clone()),
            grant_claims: own
                .and_then(|p| p.grant_claims.clone())
                .unwrap_or_else(|| self.grant_claims.clone()),
        }
    }

    /// Reads the process environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad setting.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `get` (the environment, or a map in tests). Empty values count
    /// as unset.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad setting.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let issuers = list(get(ISSUER.name).as_deref());
        if issuers.is_empty() {
            return Err(ConfigError::Missing {
                name: ISSUER.name,
                hint: "the identity provider's issuer URL, exactly as in its tokens' iss claim",
            });
        }
        for iss in &issuers {
            check_url(ISSUER.name, iss)?;
        }
        let jwks_urls = list(get(JWKS_URL.name).as_deref());
        for url in &jwks_urls {
            check_url(JWKS_URL.name, url)?;
        }
        let jwks_file = get(JWKS_FILE.name).map(PathBuf::from);
        if jwks_file.is_some() && !jwks_urls.is_empty() {
            return Err(invalid(
                JWKS_FILE.name,
                &jwks_file.unwrap_or_default().display().to_string(),
                "set either SCOPEGATE_JWKS_FILE or SCOPEGATE_JWKS_URL, not both",
            ));
        }
        if !jwks_urls.is_empty() && jwks_urls.len() != issuers.len() {
            return Err(invalid(
                JWKS_URL.name,
                &jwks_urls.join(","),
                format!(
                    "give one JWKS URL per issuer ({} issuers, {} URLs), or none to use discovery",
                    issuers.len(),
                    jwks_urls.len()
                ),
            ));
        }
        let issuers = issuers
            .into_iter()
            .enumerate()
            .map(|(i, issuer)| IssuerConfig {
                issuer,
                jwks: match (&jwks_file, jwks_urls.get(i)) {
                    (Some(f), _) => JwksSource::File(f.clone()),
                    (None, Some(u)) => JwksSource::Url(u.clone()),
                    (None, None) => JwksSource::Discovery,
                },
            })
            .collect();

        let mut cfg = Config::new(issuers);
        cfg.audiences = list(get(AUDIENCE.name).as_deref());
        if let Some(v) = get(ALGORITHMS.name) {
            cfg.algorithms = parse_algorithms(&v)?;
        }
        cfg.leeway = number(&get, &LEEWAY_SECONDS)?;
        if let Some(v) = get(REQUIRE_TYP.name) {
            match v.to_ascii_lowercase().as_str() {
                "at+jwt" | "application/at+jwt" => cfg.require_at_jwt = true,
                _ => return Err(invalid(REQUIRE_TYP.name, &v, "the only value is at+jwt")),
            }
        }
        if let Some(v) = get(SCOPE_CLAIM.name) {
            cfg.scope_claim = ScopeClaim::Named(v);
        }
        cfg.grant_claims = grant_claims(get(GRANT_CLAIMS.name).as_deref())?;
        cfg.providers = providers(get(PROVIDERS.name).as_deref(), &cfg.issuers)?;
        cfg.introspection = introspection(&get)?;
        cfg.token_cache_ttl = Duration::from_secs(number(&get, &TOKEN_CACHE_SECONDS)?);
        cfg.token_cache_entries = number(&get, &TOKEN_CACHE_ENTRIES)? as usize;
        cfg.max_token_bytes = number(&get, &MAX_TOKEN_BYTES)? as usize;
        cfg.http_timeout = Duration::from_millis(number(&get, &HTTP_TIMEOUT_MS)?);
        cfg.jwks_cooldown = Duration::from_secs(number(&get, &JWKS_COOLDOWN_SECONDS)?);
        if let Some(v) = get(TOKEN_HEADER.name) {
            if !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(invalid(TOKEN_HEADER.name, &v, "not an HTTP header name"));
            }
            cfg.token_header = v;
        }
        if let Some(v) = get(RESPONSE.name) {
            cfg.response = match v.to_ascii_lowercase().as_str() {
                "iam" => ResponseMode::Iam,
                "simple" => ResponseMode::Simple,
                _ => return Err(invalid(RESPONSE.name, &v, "expected iam or simple")),
            };
        }
        cfg.context_claims = context_claims(get(CONTEXT_CLAIMS.name).as_deref())?;
        cfg.usage_key_claim = get(USAGE_KEY_CLAIM.name);
        if let Some(v) = get(MAPPINGS_FILE.name) {
            cfg.mappings = MappingsSource::File(PathBuf::from(v));
        }
        cfg.policy_max_bytes = number(&get, &POLICY_MAX_BYTES)? as usize;
        mapping_store(&get, &mut cfg)?;
        bound_tokens(&get, &mut cfg)?;
        Ok(cfg)
    }
}

fn bound_tokens(
    get: &impl Fn(&str) -> Option<String>,
    cfg: &mut Config,
) -> Result<(), ConfigError> {
    if let Some(v) = get(BOUND_TOKENS.name) {
        cfg.bound_mode = match v.to_ascii_lowercase().as_str() {
            "check" => BoundMode::Check,
            "require" => BoundMode::Require,
            _ => return Err(invalid(BOUND_TOKENS.name, &v, "expected check or require")),
        };
    }
    if let Some(v) = get(BOUND_KINDS.name) {
        let mut kinds = BoundKinds {
            mtls: false,
            dpop: false,
        };
        let names = list(Some(&v));
        for name in &names {
            match name.to_ascii_lowercase().as_str() {
                "mtls" => kinds.mtls = true,
                "dpop" => kinds.dpop = true,
                "none" if names.len() == 1 => {}
                _ => {
                    return Err(invalid(
                        BOUND_KINDS.name,
                        &v,
                        "expected a comma-separated list of mtls and dpop, or none alone",
                    ))
                }
            }
        }
        cfg.bound_kinds = kinds;
    }
    if cfg.bound_mode == BoundMode::Require && !cfg.bound_kinds.mtls && !cfg.bound_kinds.dpop {
        return Err(invalid(
            BOUND_KINDS.name,
            "none",
            "SCOPEGATE_BOUND_TOKENS=require with no kind accepted would refuse every token",
        ));
    }
    if let Some(o) = get(DPOP_ORIGIN.name) {
        // https, or plain http on loopback only (`scopegate local`), as for the issuer.
        let ok = check_url(DPOP_ORIGIN.name, &o).is_ok()
            && url::Url::parse(&o).is_ok_and(|u| {
                u.username().is_empty()
                    && u.password().is_none()
                    && u.path() == "/"
                    && u.query().is_none()
                    && u.fragment().is_none()
            });
        if !ok {
            return Err(invalid(
                DPOP_ORIGIN.name,
                &o,
                "expected an https origin: https://host[:port], without a path, query or fragment (http:// only on loopback)",
            ));
        }
        cfg.dpop.origin = Some(o.trim_end_matches('/').to_owned());
    }
    cfg.dpop.max_age = number(get, &DPOP_MAX_AGE_SECONDS)?;
    if let Some(t) = get(DPOP_REPLAY_TABLE.name) {
        cfg.dpop.replay_table = Some(table_name(DPOP_REPLAY_TABLE.name, t)?);
    }
    Ok(())
}

/// `t` if it is a DynamoDB table name (3 to 255 of `A-Z a-z 0-9 _ - .`).
fn table_name(name: &'static str, t: String) -> Result<String, ConfigError> {
    let ok = (3..=255).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(t)
    } else {
        Err(invalid(
            name,
            &t,
            "a DynamoDB table name is 3 to 255 of A-Z a-z 0-9 _ - .",
        ))
    }
}

fn mapping_store(
    get: &impl Fn(&str) -> Option<String>,
    cfg: &mut Config,
) -> Result<(), ConfigError> {
    if let Some(t) = get(MAPPINGS_TABLE.name) {
        cfg.mappings_table = Some(table_name(MAPPINGS_TABLE.name, t)?);
    }
    if let Some(b) = get(SNAPSHOT_BUCKET.name) {
        let ok = (3..=63).contains(&b.len())
            && b.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
            && b.as_bytes()[0].is_ascii_alphanumeric()
            && b.as_bytes()[b.len() - 1].is_ascii_alphanumeric();
        if !ok {
            return Err(invalid(SNAPSHOT_BUCKET.name, &b, "an S3 bucket name is 3 to 63 of a-z 0-9 - ., starting and ending with a letter or digit"));
        }
        cfg.snapshot_bucket = Some(b);
    }
    if let Some(k) = get(SNAPSHOT_KEY.name) {
        if k.len() > 1024 || k.starts_with('/') {
            return Err(invalid(
                SNAPSHOT_KEY.name,
                &k,
                "an S3 key of at most 1024 bytes, without a leading /",
            ));
        }
        cfg.snapshot_key = k;
    }
    let ttl = number(get, &MAPPING_TTL_SECONDS)?;
    let max_stale = number(get, &MAPPING_MAX_STALE_SECONDS)?;
    if max_stale < ttl {
        return Err(invalid(
            MAPPING_MAX_STALE_SECONDS.name,
            &max_stale.to_string(),
            format!("must be at least SCOPEGATE_MAPPING_TTL_SECONDS ({ttl})"),
        ));
    }
    cfg.mapping_ttl = Duration::from_secs(ttl);
    cfg.mapping_max_stale = Duration::from_secs(max_stale);
    Ok(())
}

fn introspection(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<IntrospectionConfig>, ConfigError> {
    let mode = match get(INTROSPECT.name) {
        None => return Ok(None),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "never" => return Ok(None),
            "opaque" => IntrospectMode::Opaque,
            "always" => IntrospectMode::Always,
            _ => {
                return Err(invalid(
                    INTROSPECT.name,
                    &v,
                    "expected never, opaque or always",
                ))
            }
        },
    };
    let url = get(INTROSPECTION_URL.name);
    if let Some(u) = &url {
        check_url(INTROSPECTION_URL.name, u)?;
    }
    let client_id = get(INTROSPECTION_CLIENT_ID.name).ok_or(ConfigError::Missing {
        name: INTROSPECTION_CLIENT_ID.name,
        hint: "introspection needs client credentials (RFC 7662 section 2.1)",
    })?;
    let client_secret = get(INTROSPECTION_CLIENT_SECRET.name).ok_or(ConfigError::Missing {
        name: INTROSPECTION_CLIENT_SECRET.name,
        hint: "introspection needs client credentials (RFC 7662 section 2.1)",
    })?;
    Ok(Some(IntrospectionConfig {
        mode,
        url,
        client_id,
        client_secret,
        cache_ttl: Duration::from_secs(number(get, &INTROSPECTION_CACHE_SECONDS)?),
    }))
}

/// `SCOPEGATE_GRANT_CLAIMS`: each name checked ([`ClaimName`]), repeats dropped.
///
/// # Errors
/// [`ConfigError`] naming the setting and the first bad name.
pub fn grant_claims(v: Option<&str>) -> Result<Vec<ClaimName>, ConfigError> {
    let mut out: Vec<ClaimName> = Vec::new();
    for name in list(v) {
        let claim =
            ClaimName::new(&name).map_err(|e| invalid(GRANT_CLAIMS.name, &name, e.reason()))?;
        if !out.contains(&claim) {
            out.push(claim);
        }
    }
    Ok(out)
}

/// `SCOPEGATE_PROVIDERS`: a JSON array of per-issuer rules, each naming one of `issuers`
/// once. Unknown members are refused (a misspelt `audience` must not silently leave the
/// deployment's audience in force), and so is an empty audience list (it would turn the
/// audience check off for that issuer; leave the member out instead).
///
/// # Errors
/// [`ConfigError`] naming the setting and what is wrong.
pub fn providers(
    v: Option<&str>,
    issuers: &[IssuerConfig],
) -> Result<Vec<ProviderRules>, ConfigError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        issuer: String,
        audiences: Option<Vec<String>>,
        scope_claim: Option<String>,
        grant_claims: Option<Vec<String>>,
    }
    let Some(text) = v.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    let bad = |why: String| invalid(PROVIDERS.name, "(the JSON given)", why);
    let raw: Vec<Raw> = serde_json::from_str(text)
        .map_err(|e| bad(format!("not a JSON array of providers: {e}")))?;
    let mut out: Vec<ProviderRules> = Vec::new();
    for r in raw {
        if !issuers.iter().any(|i| i.issuer == r.issuer) {
            return Err(bad(format!(
                "issuer {:?} is not one of SCOPEGATE_ISSUER",
                r.issuer
            )));
        }
        if out.iter().any(|p| p.issuer == r.issuer) {
            return Err(bad(format!("issuer {:?} is given twice", r.issuer)));
        }
        if r.audiences
            .as_ref()
            .is_some_and(|a| a.is_empty() || a.iter().any(|x| x.is_empty()))
        {
            return Err(bad(format!(
                "issuer {:?}: audiences must name at least one audience (leave the member out to use SCOPEGATE_AUDIENCE)",
                r.issuer
            )));
        }
        let scope_claim = match r.scope_claim {
            None => None,
            Some(c) if c.is_empty() || !c.bytes().all(|b| b.is_ascii_graphic()) => {
                return Err(bad(format!(
                    "issuer {:?}: scope_claim is a claim name",
                    r.issuer
                )))
            }
            Some(c) => Some(ScopeClaim::Named(c)),
        };
        let grant = match r.grant_claims {
            None => None,
            Some(names) => Some(grant_claims(Some(&names.join(",")))?),
        };
        out.push(ProviderRules {
            issuer: r.issuer,
            audiences: r.audiences,
            scope_claim,
            grant_claims: grant,
        });
    }
    Ok(out)
}

/// A claim copied into the authorizer context (`SCOPEGATE_CONTEXT_CLAIMS`), under `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextClaim {
    /// The context key: what an integration reads as `$context.authorizer.KEY`.
    pub key: Box<str>,
    /// The claim, top-level or a JSON Pointer.
    pub claim: ClaimName,
}

/// The context keys the authorizer always writes itself.
const FIXED_CONTEXT_KEYS: [&str; 3] = ["sub", "scope", "client_id"];

/// Reads `SCOPEGATE_CONTEXT_CLAIMS`: `KEY=NAME`, or a top-level `NAME` as its own key. A
/// pointer needs a key (`org=/org/id`): `/org/id` is no name an integration can read.
///
/// # Errors
/// [`ConfigError::Invalid`] for a bad claim name or key, a key given twice, or one of the
/// keys the authorizer writes itself (`sub`, `scope`, `client_id`).
pub fn context_claims(v: Option<&str>) -> Result<Vec<ContextClaim>, ConfigError> {
    let name = CONTEXT_CLAIMS.name;
    let mut out: Vec<ContextClaim> = Vec::new();
    for item in list(v) {
        let (key, claim) = match item.split_once('=') {
            Some((k, c)) => (k.trim(), c.trim()),
            None if item.starts_with('/') => {
                return Err(invalid(
                    name,
                    &item,
                    "a JSON Pointer needs a context key: KEY=/path/to/claim",
                ))
            }
            None => (item.as_str(), item.as_str()),
        };
        let claim = ClaimName::new(claim).map_err(|e| invalid(name, &item, e.reason()))?;
        let key_ok = (1..=64).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
        if !key_ok {
            return Err(invalid(
                name,
                &item,
                "a context key is 1 to 64 of A-Z a-z 0-9 _ - . :",
            ));
        }
        if FIXED_CONTEXT_KEYS.contains(&key) {
            return Err(invalid(
                name,
                &item,
                "sub, scope and client_id are written by the authorizer itself: use another key",
            ));
        }
        if out.iter().any(|c| &*c.key == key) {
            return Err(invalid(name, &item, "this context key is given twice"));
        }
        out.push(ContextClaim {
            key: key.into(),
            claim,
        });
    }
    Ok(out)
}

fn list(v: Option<&str>) -> Vec<String> {
    v.map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// Reads a number setting through its row of [`SETTINGS`]: its default when unset, else a
/// whole number within its range.
fn number(get: &impl Fn(&str) -> Option<String>, setting: &Setting) -> Result<u64, ConfigError> {
    let Kind::Number {
        default, min, max, ..
    } = setting.kind
    else {
        unreachable!("{} is not a number setting", setting.name)
    };
    let name = setting.name;
    let Some(v) = get(name) else {
        return Ok(default);
    };
    let n: u64 = v
        .parse()
        .map_err(|_| invalid(name, &v, "expected a whole number"))?;
    if !(min..=max).contains(&n) {
        return Err(invalid(
            name,
            &v,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(n)
}

/// Whether `url`'s host is a loopback one (`127.0.0.0/8`, `::1`, `localhost`), parsed as a
/// host: the one place plain http is allowed (local mode and tests), here and for DPoP's
/// `htu`.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

fn check_url(name: &'static str, url: &str) -> Result<(), ConfigError> {
    // Plain http is accepted only on loopback: local mode and tests run an identity provider
    // there, and nothing else should ever hand keys over an unauthenticated channel. The host
    // is parsed, not prefix-matched: `http://127.0.0.1.example.com` is not loopback.
    let ok = match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" => u.host_str().is_some(),
        Ok(u) if u.scheme() == "http" => is_loopback(&u),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            name,
            url,
            "expected an https:// URL (http:// only on loopback)",
        ))
    }
}

fn parse_algorithms(v: &str) -> Result<Vec<Alg>, ConfigError> {
    let mut out = Vec::new();
    for name in list(Some(v)) {
        let alg = Alg::from_name(&name).ok_or_else(|| {
            let reason = if name.starts_with("HS") || name.eq_ignore_ascii_case("none") {
                "symmetric and unsigned algorithms are never allowed".to_owned()
            } else {
                format!("unknown algorithm {name:?}; known: RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA")
            };
            invalid(ALGORITHMS.name, v, reason)
        })?;
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    if out.is_empty() {
        return Err(invalid(ALGORITHMS.name, v, "no algorithm given"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    /// Keys and introspection over plain http only from a loopback host, parsed as a host:
    /// `http://127.0.0.1.example.com` starts like loopback and is not.
    #[test]
    fn plain_http_only_from_a_loopback_host() {
        for (url, ok) in [
            ("https://idp.example.com", true),
            ("http://127.0.0.1:8081", true),
            ("http://127.5.0.1:8081", true),
            ("http://localhost:8081", true),
            ("http://[::1]:8081", true),
            ("http://127.0.0.1.example.com", false),
            ("http://localhost.example.com", false),
            ("http://idp.example.com", false),
            ("ftp://127.0.0.1", false),
            ("https://", false),
        ] {
            assert_eq!(cfg(&[(ISSUER.name, url)]).is_ok(), ok, "{url}");
        }
    }

    #[test]
    fn the_bound_token_settings_are_checked() {
        let base = (ISSUER.name, "https://a.example.com");
        let c = cfg(&[base]).unwrap();
        assert_eq!(c.bound_mode, BoundMode::Check);
        assert_eq!(
            c.bound_kinds,
            BoundKinds {
                mtls: true,
                dpop: true
            }
        );
        assert_eq!(
            c.dpop,
            DpopConfig {
                origin: None,
                max_age: 60,
                replay_table: None
            }
        );
        let c = cfg(&[
            base,
            (BOUND_TOKENS.name, "require"),
            (BOUND_KINDS.name, "DPoP"),
            (DPOP_ORIGIN.name, "https://api.example.com/"),
            (DPOP_MAX_AGE_SECONDS.name, "30"),
            (DPOP_REPLAY_TABLE.name, "dpop-replay"),
        ])
        .unwrap();
        assert_eq!(c.bound_mode, BoundMode::Require);
        assert_eq!(
            c.bound_kinds,
            BoundKinds {
                mtls: false,
                dpop: true
            }
        );
        assert_eq!(c.dpop.origin.as_deref(), Some("https://api.example.com"));
        assert_eq!(
            (c.dpop.max_age, c.dpop.replay_table.as_deref()),
            (30, Some("dpop-replay"))
        );
        assert!(cfg(&[base, (DPOP_ORIGIN.name, "http://127.0.0.1:8080")]).is_ok());
        for (name, bad) in [
            (BOUND_TOKENS.name, "always"),
            (BOUND_KINDS.name, "mtls,jkt"),
            (BOUND_KINDS.name, "none,dpop"),
            (DPOP_ORIGIN.name, "https://api.example.com/prod"),
            (DPOP_ORIGIN.name, "https://api.example.com?x=1"),
            (DPOP_ORIGIN.name, "http://api.example.com"),
            (DPOP_ORIGIN.name, "https://u:p@api.example.com"),
            (DPOP_MAX_AGE_SECONDS.name, "0"),
            (DPOP_MAX_AGE_SECONDS.name, "301"),
            (DPOP_REPLAY_TABLE.name, "ab"),
        ] {
            let e = cfg(&[base, (name, bad)]).unwrap_err();
            assert!(e.to_string().contains(name), "{name}={bad}: {e}");
        }
        // Requiring a binding while accepting none would refuse every token.
        let e = cfg(&[
            base,
            (BOUND_TOKENS.name, "require"),
            (BOUND_KINDS.name, "none"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("refuse every token"), "{e}");
    }

    #[test]
    fn the_table_holds_the_defaults_config_new_uses() {
        // Text defaults the parser turns into types: the table's text must parse to them.
        assert_eq!(
            parse_algorithms(ALGORITHMS.text_default()).unwrap(),
            Alg::DEFAULT_ALLOWED.to_vec()
        );
        let c = cfg(&[(ISSUER.name, "https://a")]).unwrap();
        assert!(c.introspection.is_none() && INTROSPECT.text_default() == "never");
        assert_eq!(c.response, ResponseMode::Iam);
        assert_eq!(RESPONSE.text_default(), "iam");
        // Every number's default is within its own range, and names are unique.
        let mut names = std::collections::BTreeSet::new();
        for s in SETTINGS {
            assert!(names.insert(s.name), "{} twice", s.name);
            if let Kind::Number {
                default,
                min,
                max,
                floor,
            } = s.kind
            {
                assert!((min..=max).contains(&default), "{}", s.name);
                if let Some((other, _)) = floor {
                    let other = SETTINGS.iter().find(|o| o.name == other).unwrap();
                    assert!(other.number_default() <= default, "{}", s.name);
                }
            }
        }
    }

    #[test]
    fn issuer_is_required() {
        let err = cfg(&[]).unwrap_err().to_string();
        assert!(err.contains("SCOPEGATE_ISSUER"), "{err}");
    }

    #[test]
    fn defaults() {
        let c = cfg(&[("SCOPEGATE_ISSUER", "https://idp.example.com")]).unwrap();
        assert_eq!(c.issuers[0].jwks, JwksSource::Discovery);
        assert_eq!(c.leeway, 60);
        assert_eq!(c.algorithms.len(), 7);
        assert!(c.introspection.is_none());
        assert_eq!(c.max_token_bytes, 16384);
    }

    #[test]
    fn errors_name_setting_and_value() {
        let err = cfg(&[
            ("SCOPEGATE_ISSUER", "https://i"),
            ("SCOPEGATE_LEEWAY_SECONDS", "301"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("SCOPEGATE_LEEWAY_SECONDS") && err.contains("301"),
            "{err}"
        );
        let err = cfg(&[
            ("SCOPEGATE_ISSUER", "https://i"),
            ("SCOPEGATE_ALGORITHMS", "RS256,HS256"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("never allowed"), "{err}");
        let err = cfg(&[("SCOPEGATE_ISSUER", "http://idp.example.com")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("https"), "{err}");
    }

    #[test]
    fn jwks_urls_pair_with_issuers() {
        let c = cfg(&[
            ("SCOPEGATE_ISSUER", "https://a, https://b"),
            ("SCOPEGATE_JWKS_URL", "https://a/keys,https://b/keys"),
        ])
        .unwrap();
        assert_eq!(c.issuers[1].jwks, JwksSource::Url("https://b/keys".into()));
        assert!(cfg(&[
            ("SCOPEGATE_ISSUER", "https://a,https://b"),
            ("SCOPEGATE_JWKS_URL", "https://a/k")
        ])
        .is_err());
    }

    #[test]
    fn introspection_needs_credentials_and_hides_secret() {
        assert!(cfg(&[
            ("SCOPEGATE_ISSUER", "https://a"),
            ("SCOPEGATE_INTROSPECT", "always")
        ])
        .is_err());
        let c = cfg(&[
            ("SCOPEGATE_ISSUER", "https://a"),
            ("SCOPEGATE_INTROSPECT", "opaque"),
            ("SCOPEGATE_INTROSPECTION_CLIENT_ID", "id"),
            ("SCOPEGATE_INTROSPECTION_CLIENT_SECRET", "s3cr3t"),
        ])
        .unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    /// Issue 21 §4: per-issuer rules over the deployment's; anything that could silently
    /// leave a check weaker than written is refused.
    #[test]
    fn providers_override_per_issuer_and_refuse_what_is_unclear() {
        let c = cfg(&[
            (
                "SCOPEGATE_ISSUER",
                "https://okta.example.com,https://entra.example.com",
            ),
            ("SCOPEGATE_AUDIENCE", "api://default"),
            ("SCOPEGATE_GRANT_CLAIMS", "groups"),
            (
                "SCOPEGATE_PROVIDERS",
                r#"[{"issuer": "https://entra.example.com", "audiences": ["api://orders"],
                     "scope_claim": "scp", "grant_claims": ["roles", "/xms/tid"]}]"#,
            ),
        ])
        .unwrap();
        let okta = c.rules_for("https://okta.example.com");
        assert_eq!(okta.audiences, ["api://default"]);
        assert_eq!(okta.scope_claim, ScopeClaim::Standard);
        assert_eq!(okta.grant_claims, [ClaimName::new("groups").unwrap()]);
        let entra = c.rules_for("https://entra.example.com");
        assert_eq!(entra.audiences, ["api://orders"]);
        assert_eq!(entra.scope_claim, ScopeClaim::Named("scp".into()));
        assert_eq!(entra.grant_claims.len(), 2);
        // Only the members given override: the rest stay the deployment's.
        let c = cfg(&[
            ("SCOPEGATE_ISSUER", "https://a"),
            ("SCOPEGATE_AUDIENCE", "api://default"),
            (
                "SCOPEGATE_PROVIDERS",
                r#"[{"issuer": "https://a", "grant_claims": ["roles"]}]"#,
            ),
        ])
        .unwrap();
        assert_eq!(c.rules_for("https://a").audiences, ["api://default"]);
        for (bad, why) in [
            (
                r#"[{"issuer": "https://b"}]"#,
                "not one of SCOPEGATE_ISSUER",
            ),
            (
                r#"[{"issuer": "https://a"}, {"issuer": "https://a"}]"#,
                "twice",
            ),
            (
                r#"[{"issuer": "https://a", "audiences": []}]"#,
                "at least one",
            ),
            (
                r#"[{"issuer": "https://a", "audience": ["x"]}]"#,
                "unknown field",
            ),
            (
                r#"[{"issuer": "https://a", "scope_claim": "a b"}]"#,
                "claim name",
            ),
            (
                r#"[{"issuer": "https://a", "grant_claims": ["scope"]}]"#,
                "scope",
            ),
            (r#"{"issuer": "https://a"}"#, "JSON array"),
        ] {
            let err = cfg(&[
                ("SCOPEGATE_ISSUER", "https://a"),
                ("SCOPEGATE_PROVIDERS", bad),
            ])
            .unwrap_err()
            .to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn mapping_store_settings() {
        let c = cfg(&[("SCOPEGATE_ISSUER", "https://a")]).unwrap();
        assert_eq!(c.mappings_table, None);
        assert_eq!(c.snapshot_key, "mappings/snapshot.json");
        assert_eq!(
            (c.mapping_ttl.as_secs(), c.mapping_max_stale.as_secs()),
            (60, 3600)
        );
        let c = cfg(&[
            ("SCOPEGATE_ISSUER", "https://a"),
            ("SCOPEGATE_MAPPINGS_TABLE", "scopegate-mappings"),
            ("SCOPEGATE_SNAPSHOT_BUCKET", "my-bucket.1"),
            ("SCOPEGATE_SNAPSHOT_KEY", "x/y.json"),
            ("SCOPEGATE_MAPPING_TTL_SECONDS", "5"),
            ("SCOPEGATE_MAPPING_MAX_STALE_SECONDS", "5"),
        ])
        .unwrap();
        assert_eq!(c.mappings_table.as_deref(), Some("scopegate-mappings"));
        assert_eq!(c.snapshot_bucket.as_deref(), Some("my-bucket.1"));
        assert_eq!(c.snapshot_key, "x/y.json");
        assert_eq!(
            (c.mapping_ttl.as_secs(), c.mapping_max_stale.as_secs()),
            (5, 5)
        );
        for (name, value, needle) in [
            ("SCOPEGATE_MAPPINGS_TABLE", "ab", "3 to 255"),
            ("SCOPEGATE_MAPPINGS_TABLE", "a b c", "3 to 255"),
            ("SCOPEGATE_SNAPSHOT_BUCKET", "My_Bucket", "bucket name"),
            ("SCOPEGATE_SNAPSHOT_KEY", "/abs", "leading /"),
            ("SCOPEGATE_MAPPING_TTL_SECONDS", "0", "between 1 and 3600"),
            (
                "SCOPEGATE_MAPPING_MAX_STALE_SECONDS",
                "30",
                "at least SCOPEGATE_MAPPING_TTL_SECONDS",
            ),
        ] {
            let err = cfg(&[("SCOPEGATE_ISSUER", "https://a"), (name, value)])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(name) && err.contains(needle),
                "{name}={value}: {err}"
            );
        }
    }

    #[test]
    fn context_claims_take_keys_and_pointers() {
        let c = context_claims(Some("tenant_id, email,org=/org/id, cognito:groups")).unwrap();
        let pairs: Vec<(&str, &str)> = c.iter().map(|c| (&*c.key, c.claim.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("tenant_id", "tenant_id"),
                ("email", "email"),
                ("org", "/org/id"),
                ("cognito:groups", "cognito:groups")
            ]
        );
        for (bad, needle) in [
            ("/org/id", "needs a context key"),
            ("sub", "written by the authorizer"),
            ("scope=email", "written by the authorizer"),
            ("a=email,a=sub", "given twice"),
            ("a b=email", "1 to 64"),
            ("=email", "1 to 64"),
            ("t=", "1 to 256"),
            ("x=scope", "scope"),
            ("https://example.com/tenant", "1 to 64"),
        ] {
            let err = context_claims(Some(bad)).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
        assert!(context_claims(Some("tenant=https://example.com/tenant")).is_ok());
    }
}
