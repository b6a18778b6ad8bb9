//! What `scopegate local` prints at start: where everything is, and the seed's three curl
//! cases ready to paste (allowed, denied, rejected by the gateway).

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::error::display_addr;
use super::gateway::{GatewayOptions, CACHE_HEADER};
use super::idp::{CLIENT_ID, CLIENT_SECRET, DISCOVERY_PATH, JWKS_PATH, TOKEN_PATH};

/// One example request for the banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurlExample {
    /// The HTTP method, `GET`, ...
    pub method: String,
    /// The concrete path after the stage, without leading slash (`my-resource`); see
    /// [`super::Route::example_path`].
    pub path: String,
    /// The scopes (space-delimited) of the token to send; empty for a token with none.
    pub scope: String,
}

/// Everything the start-up banner shows.
#[derive(Debug, Clone)]
pub struct Banner<'a> {
    /// The gateway's listener address.
    pub gateway: SocketAddr,
    /// The dev identity provider's issuer URL.
    pub issuer: &'a str,
    /// The gateway's settings (API, stage, routes, token source, TTL).
    pub options: &'a GatewayOptions,
    /// The command that prints a token, without `--scope`, e.g.
    /// `scopegate token --issuer http://127.0.0.1:9001`; the banner appends `--scope ...`.
    pub token_command: &'a str,
    /// A request the mapping allows, with a scope that grants it.
    pub allowed: Option<CurlExample>,
    /// A request the mapping denies, with a token lacking the scope.
    pub denied: Option<CurlExample>,
}

/// The start-up text: URLs, settings, and ready-to-paste curl lines.
pub fn startup_banner(banner: &Banner<'_>) -> String {
    let opts = banner.options;
    let base = format!("http://{}/{}", display_addr(banner.gateway), opts.stage);
    let issuer = banner.issuer;
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "scopegate local: API Gateway (REST API, Lambda TOKEN authorizer) in front of the authorizer; no AWS, no Docker.\n"
    );
    let _ = writeln!(out, "Dev identity provider   {issuer}");
    let _ = writeln!(out, "  discovery             {issuer}{DISCOVERY_PATH}");
    let _ = writeln!(out, "  JWKS                  {issuer}{JWKS_PATH}");
    let _ = writeln!(
        out,
        "  token endpoint        {issuer}{TOKEN_PATH}  (client_credentials; client {CLIENT_ID} / {CLIENT_SECRET}, or none)"
    );
    let _ = writeln!(out, "Gateway                 {base}/");
    let _ = writeln!(out, "  API                   {}", opts.api);
    let regex = match &opts.token_regex {
        Some(re) => format!("validated by {}", re.as_str()),
        None => "not validated".to_owned(),
    };
    let _ = writeln!(
        out,
        "  token source          {} header, {regex}",
        opts.token_header
    );
    let cache = if opts.authorizer_ttl == 0 {
        "off (TTL 0): the authorizer is called for every request".to_owned()
    } else {
        format!(
            "{} s per token, re-evaluated against each methodArn",
            opts.authorizer_ttl
        )
    };
    let _ = writeln!(out, "  authorizer cache      {cache}");
    let _ = writeln!(
        out,
        "                        (response header {CACHE_HEADER}: miss = authorizer called, hit = cached answer)"
    );
    for (i, route) in opts.routes.iter().enumerate() {
        let label = if i == 0 { "  routes" } else { "" };
        let _ = writeln!(out, "{label:<24}{route}");
    }

    let header = &opts.token_header;
    let curl = |example: &CurlExample, value: &str| {
        let method = if example.method == "GET" || example.method == "*" {
            String::new()
        } else {
            format!("-X {} ", example.method)
        };
        format!(
            "  curl -i {method}{} \\\n    -H \"{header}: {value}\"",
            shell_quote(&format!("{base}/{}", example.path))
        )
    };
    let token = |scope: &str| {
        format!(
            "Bearer $({} --scope {})",
            banner.token_command,
            shell_quote(scope)
        )
    };
    if let Some(allowed) = &banner.allowed {
        let _ = writeln!(
            out,
            "\nAllowed, 200 (a token with scope {:?}):",
            allowed.scope
        );
        let _ = writeln!(out, "{}", curl(allowed, &token(&allowed.scope)));
    }
    if let Some(denied) = &banner.denied {
        let what = if denied.scope.trim().is_empty() {
            "a token with no scope".to_owned()
        } else {
            format!("a token with scope {:?} only", denied.scope)
        };
        let _ = writeln!(out, "\nDenied by the policy, 403 ({what}):");
        let _ = writeln!(out, "{}", curl(denied, &token(&denied.scope)));
    }
    if let Some(example) = banner.allowed.as_ref().or(banner.denied.as_ref()) {
        let _ = writeln!(
            out,
            "\nRejected by the gateway without calling the authorizer, 401 (not a JWT):"
        );
        let _ = writeln!(out, "{}", curl(example, "Bearer ThisIsNotAJWT"));
    }
    let _ = writeln!(out, "\nPress Ctrl-C to stop.");
    out
}

/// `s` as one shell word: bare when it is plainly safe, single-quoted otherwise.
fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b':' | b'=' | b',')
        });
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::gateway::Route;

    #[test]
    fn banner_has_urls_and_the_three_curl_cases() {
        let opts = GatewayOptions::new(
            "arn:aws:execute-api:us-east-1:123456789012:abc123",
            "dev",
            vec![Route::new("GET", "my-resource")],
        );
        let text = startup_banner(&Banner {
            gateway: "0.0.0.0:8080".parse().unwrap(),
            issuer: "http://127.0.0.1:9000",
            options: &opts,
            token_command: "scopegate token --issuer http://127.0.0.1:9000",
            allowed: Some(CurlExample {
                method: "GET".into(),
                path: "my-resource".into(),
                scope: "email".into(),
            }),
            denied: Some(CurlExample {
                method: "GET".into(),
                path: "my-resource".into(),
                scope: String::new(),
            }),
        });
        assert!(text.contains("http://127.0.0.1:9000/.well-known/openid-configuration"));
        assert!(text.contains("Gateway                 http://127.0.0.1:8080/dev/"));
        assert!(text.contains(
            "curl -i http://127.0.0.1:8080/dev/my-resource \\\n    -H \"Authorization: Bearer $(scopegate token --issuer http://127.0.0.1:9000 --scope email)\""
        ));
        assert!(text.contains("--scope '')"));
        assert!(text.contains("-H \"Authorization: Bearer ThisIsNotAJWT\""));
        assert!(text.contains("routes                GET /my-resource"));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("email"), "email");
        assert_eq!(shell_quote("email profile"), "'email profile'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
