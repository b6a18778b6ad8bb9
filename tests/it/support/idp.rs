//! [`IdpGuard`]: a real OpenID Connect provider on loopback, for tests.
//!
//! It runs `node tests/idp/server.mjs` (the npm package `oidc-provider`, installed by
//! `npm ci --prefix tests/idp`). The provider's setup is described at the top of that file:
//! clients [`CLIENT_ID`] and [`INTROSPECTOR_ID`], the JWT resource [`API_AUDIENCE`] (the
//! default), the opaque resource [`OPAQUE_AUDIENCE`] and the short-lived [`SHORT_RESOURCE`].
//!
//! # Example
//! ```ignore
//! let idp = IdpGuard::start().await;
//! let jwt = idp.token("orders:read").await;        // RS256, typ at+jwt, aud API_AUDIENCE
//! let opaque = idp.opaque_token("orders:read").await;
//! idp.revoke(&opaque).await;                        // introspection now says active=false
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tokio::sync::oneshot;

use super::{http_client, repo_root, require_installed, ChildGuard, START_DEADLINE, STOP_GRACE};

/// The confidential client that gets client_credentials tokens.
pub const CLIENT_ID: &str = "scopegate-test";
/// [`CLIENT_ID`]'s secret (client_secret_basic).
pub const CLIENT_SECRET: &str = "scopegate-test-secret";
/// A client that may introspect any token (client_secret_basic).
pub const INTROSPECTOR_ID: &str = "scopegate-introspector";
/// [`INTROSPECTOR_ID`]'s secret.
pub const INTROSPECTOR_SECRET: &str = "introspector-secret";
/// The same as [`INTROSPECTOR_ID`] but authenticating with client_secret_post.
pub const INTROSPECTOR_POST_ID: &str = "scopegate-introspector-post";
/// The default resource: its tokens are RS256 JWTs with this `aud`.
pub const API_AUDIENCE: &str = "https://api.scopegate.test";
/// The resource whose tokens are opaque (introspectable and revocable); also their `aud`.
pub const OPAQUE_AUDIENCE: &str = "https://opaque.scopegate.test";
/// A resource whose JWTs carry `aud` = [`API_AUDIENCE`] but live [`SHORT_TOKEN_TTL_SECS`].
pub const SHORT_RESOURCE: &str = "https://short.scopegate.test";
/// Lifetime of [`API_AUDIENCE`] and [`OPAQUE_AUDIENCE`] tokens.
pub const TOKEN_TTL_SECS: u64 = 600;
/// Lifetime of [`SHORT_RESOURCE`] tokens.
pub const SHORT_TOKEN_TTL_SECS: u64 = 1;
/// Every scope the provider grants.
pub const ALL_SCOPES: &str = "email profile orders:read orders:write inventory:read admin";

/// A running `tests/idp/server.mjs`, stopped on drop.
pub struct IdpGuard {
    child: ChildGuard,
    port: u16,
    issuer: String,
    jwks_uri: String,
    token_endpoint: String,
    introspection_endpoint: String,
    revocation_endpoint: String,
    key_file: Option<PathBuf>,
    http: reqwest::Client,
}

impl IdpGuard {
    /// Starts the provider on a free port with a new RS256 signing key.
    ///
    /// # Panics
    /// If `tests/idp/node_modules` is missing, or the server is not ready within
    /// [`START_DEADLINE`]; the message shows the command and the server's stderr.
    pub async fn start() -> IdpGuard {
        Self::launch(0, None).await
    }

    /// Starts the provider signing with the first key of `key_file`, a private JWKS JSON
    /// (`{"keys":[...]}`); every key in it is published at the JWKS URI.
    pub async fn start_with_key_file(key_file: impl AsRef<Path>) -> IdpGuard {
        Self::launch(0, Some(key_file.as_ref().to_path_buf())).await
    }

    /// Stops the provider and starts it again on the same port (so the same issuer) with a new
    /// signing key: a key rotation. Tokens issued before still verify only against the old key,
    /// and opaque tokens are forgotten (state is in memory).
    pub async fn restart(&mut self) {
        self.restart_inner(None).await;
    }

    /// Like [`restart`](Self::restart), but signs with the first key of `key_file`.
    pub async fn restart_with_key_file(&mut self, key_file: impl AsRef<Path>) {
        self.restart_inner(Some(key_file.as_ref().to_path_buf()))
            .await;
    }

    async fn restart_inner(&mut self, key_file: Option<PathBuf>) {
        self.child.stop(STOP_GRACE);
        let port = self.port;
        // Take the old guard's place; the old child is already reaped.
        *self = Self::launch(port, key_file).await;
    }

    async fn launch(port: u16, key_file: Option<PathBuf>) -> IdpGuard {
        let dir = repo_root().join("tests/idp");
        require_installed(
            dir.join("node_modules/oidc-provider"),
            "the test identity provider (npm oidc-provider)",
            "npm ci --prefix tests/idp",
        );
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut command = Command::new("node");
            command
                .arg(dir.join("server.mjs"))
                .current_dir(&dir)
                .env("PORT", port.to_string())
                .env("EXIT_ON_STDIN_EOF", "1");
            match &key_file {
                Some(path) => command.env("KEY_FILE", path),
                None => command.env_remove("KEY_FILE"),
            };
            let (ready_tx, ready_rx) = oneshot::channel::<String>();
            let mut ready_tx = Some(ready_tx);
            let mut child = ChildGuard::spawn(
                command,
                Some(Box::new(move |line: &str| {
                    if let Some(issuer) = line.strip_prefix("READY ") {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(issuer.to_owned());
                        }
                    }
                })),
            );
            // A start normally takes about a second; one that has not printed READY after
            // 20 s is stuck (seen once in CI, under load, with nothing on its stderr), so it is
            // killed and started again while the deadline allows.
            let attempt_deadline =
                deadline.min(tokio::time::Instant::now() + std::time::Duration::from_secs(20));
            let issuer = match tokio::time::timeout_at(attempt_deadline, ready_rx).await {
                Ok(Ok(issuer)) => issuer,
                Ok(Err(_closed)) => {
                    // The server exited before READY. After a restart, the old socket's port
                    // can be briefly taken: try again while there is time.
                    let report = child.report();
                    if port != 0
                        && report.contains("EADDRINUSE")
                        && tokio::time::Instant::now() < deadline
                        && attempt < 50
                    {
                        // A pause before binding the port again, not a wait on a condition:
                        // the kernel frees it on its own time.
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                    panic!("the test identity provider exited before it was ready\n{report}");
                }
                Err(_elapsed) if tokio::time::Instant::now() < deadline && attempt < 3 => {
                    eprintln!(
                        "the test identity provider was not ready after 20 s; starting it again\n{}",
                        child.report()
                    );
                    child.stop(STOP_GRACE);
                    continue;
                }
                Err(_elapsed) => panic!(
                    "the test identity provider was not ready within {START_DEADLINE:?}\n{}",
                    child.report()
                ),
            };
            let http = http_client();
            let discovery = match get_json(
                &http,
                &format!("{issuer}/.well-known/openid-configuration"),
            )
            .await
            {
                Ok(doc) => doc,
                Err(e) => panic!(
                    "discovery failed on the test identity provider: {e}\n{}",
                    child.report()
                ),
            };
            let field = |name: &str| -> String {
                discovery[name]
                    .as_str()
                    .unwrap_or_else(|| panic!("discovery has no {name}: {discovery}"))
                    .to_owned()
            };
            assert_eq!(field("issuer"), issuer, "discovery issuer");
            let port = issuer
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no port in issuer {issuer}"));
            return IdpGuard {
                jwks_uri: field("jwks_uri"),
                token_endpoint: field("token_endpoint"),
                introspection_endpoint: field("introspection_endpoint"),
                revocation_endpoint: field("revocation_endpoint"),
                child,
                port,
                issuer,
                key_file,
                http,
            };
        }
    }

    /// `http://127.0.0.1:<port>`, exactly as in the tokens' `iss` (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port the provider listens on (kept across [`restart`](Self::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `<issuer>/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// The JWKS URI from discovery.
    pub fn jwks_uri(&self) -> &str {
        &self.jwks_uri
    }

    /// The token endpoint from discovery.
    pub fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// The RFC 7662 introspection endpoint from discovery.
    pub fn introspection_endpoint(&self) -> &str {
        &self.introspection_endpoint
    }

    /// The RFC 7009 revocation endpoint from discovery.
    pub fn revocation_endpoint(&self) -> &str {
        &self.revocation_endpoint
    }

    /// The key file the provider signs with, if it was started with one.
    pub fn key_file(&self) -> Option<&Path> {
        self.key_file.as_deref()
    }

    /// The published JWKS.
    pub async fn jwks(&self) -> Value {
        get_json(&self.http, &self.jwks_uri)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A client_credentials access token for [`API_AUDIENCE`]: an RS256 JWT (typ at+jwt) with
    /// `scope` = the requested scopes the provider knows (others are dropped silently), valid
    /// for [`TOKEN_TTL_SECS`]. `scopes` is space-delimited; `""` asks for none.
    pub async fn token(&self, scopes: &str) -> String {
        self.access_token(API_AUDIENCE, scopes).await
    }

    /// A client_credentials JWT for [`API_AUDIENCE`] issued to `client_id` (its secret is
    /// `<client_id>-secret`): `scopegate-lead` and `scopegate-contractor` get claims besides
    /// the scopes (`groups`, `tenant_id`, `realm_access.roles`; tests/idp/server.mjs).
    pub async fn token_for(&self, client_id: &str, scopes: &str) -> String {
        let secret = format!("{client_id}-secret");
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("resource", API_AUDIENCE),
        ];
        if !scopes.is_empty() {
            form.push(("scope", scopes));
        }
        let (status, body) = self
            .post_form(&self.token_endpoint, client_id, &secret, &form)
            .await;
        assert_eq!(status, 200, "token request as {client_id} failed: {body}");
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("token response has no access_token: {body}"))
            .to_owned()
    }

    /// A DPoP-bound client_credentials JWT for [`API_AUDIENCE`] (RFC 9449 §5): the request
    /// carries `proof`, a DPoP proof for `POST` [`token_endpoint`](Self::token_endpoint), and
    /// the provider binds the token to the proof's key (`cnf.jkt`). Returns the whole answer,
    /// whose `token_type` is `DPoP`.
    pub async fn dpop_token_response(&self, scopes: &str, proof: &str) -> (u16, Value) {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("resource", API_AUDIENCE),
        ];
        if !scopes.is_empty() {
            form.push(("scope", scopes));
        }
        self.post_form_with(
            &self.token_endpoint,
            CLIENT_ID,
            CLIENT_SECRET,
            &form,
            &[("DPoP", proof)],
        )
        .await
    }

    /// A certificate-bound client_credentials JWT for [`API_AUDIENCE`] (RFC 8705 §3), issued
    /// to `scopegate-mtls` presenting `pem` as its client certificate (forwarded in
    /// `X-Client-Cert`, as a TLS-terminating proxy would).
    pub async fn certificate_bound_token(&self, scopes: &str, pem: &str) -> String {
        let escaped: String = url_escape(pem);
        let form = [
            ("grant_type", "client_credentials"),
            ("resource", API_AUDIENCE),
            ("scope", scopes),
        ];
        let (status, body) = self
            .post_form_with(
                &self.token_endpoint,
                "scopegate-mtls",
                "scopegate-mtls-secret",
                &form,
                &[("X-Client-Cert", &escaped)],
            )
            .await;
        assert_eq!(
            status, 200,
            "certificate-bound token request failed: {body}"
        );
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// An opaque client_credentials access token for [`OPAQUE_AUDIENCE`], for introspection.
    pub async fn opaque_token(&self, scopes: &str) -> String {
        self.access_token(OPAQUE_AUDIENCE, scopes).await
    }

    /// A JWT like [`token`](Self::token) (same `aud`) that expires [`SHORT_TOKEN_TTL_SECS`]
    /// after it is issued.
    pub async fn short_token(&self, scopes: &str) -> String {
        self.access_token(SHORT_RESOURCE, scopes).await
    }

    /// The `access_token` of [`token_response`](Self::token_response).
    pub async fn access_token(&self, resource: &str, scopes: &str) -> String {
        let body = self.token_response(resource, scopes).await;
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("token response has no access_token: {body}"))
            .to_owned()
    }

    /// The whole token response (access_token, expires_in, scope, token_type) of a
    /// client_credentials request by [`CLIENT_ID`] for `resource`.
    ///
    /// # Panics
    /// Unless the provider answers 200; the message shows the request and the answer.
    pub async fn token_response(&self, resource: &str, scopes: &str) -> Value {
        let mut form = vec![("grant_type", "client_credentials"), ("resource", resource)];
        if !scopes.is_empty() {
            form.push(("scope", scopes));
        }
        let (status, body) = self
            .post_form(&self.token_endpoint, CLIENT_ID, CLIENT_SECRET, &form)
            .await;
        assert_eq!(
            status, 200,
            "token request to {} (resource {resource}, scope {scopes:?}) failed: {body}",
            self.token_endpoint
        );
        body
    }

    /// RFC 7662 introspection of `token` by [`INTROSPECTOR_ID`]: `{"active": ...}` and claims.
    /// (The provider refuses to introspect JWTs: `unsupported_token_type`, status 400.)
    pub async fn introspect(&self, token: &str) -> Value {
        let (status, body) = self
            .post_form(
                &self.introspection_endpoint,
                INTROSPECTOR_ID,
                INTROSPECTOR_SECRET,
                &[("token", token)],
            )
            .await;
        assert_eq!(
            status, 200,
            "introspection at {} failed: {body}",
            self.introspection_endpoint
        );
        body
    }

    /// RFC 7009 revocation of an opaque `token` by its owner [`CLIENT_ID`]; afterwards
    /// introspection says `active: false`.
    pub async fn revoke(&self, token: &str) {
        let (status, body) = self
            .post_form(
                &self.revocation_endpoint,
                CLIENT_ID,
                CLIENT_SECRET,
                &[("token", token)],
            )
            .await;
        assert_eq!(
            status, 200,
            "revocation at {} failed: {body}",
            self.revocation_endpoint
        );
    }

    async fn post_form(
        &self,
        url: &str,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        self.post_form_with(url, client_id, secret, form, &[]).await
    }

    async fn post_form_with(
        &self,
        url: &str,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(url)
            .basic_auth(client_id, Some(secret))
            .form(form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: reading the body: {e}"));
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "POST {url}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        (status, body)
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "GET {url}: {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("GET {url}: not JSON: {e}"))
}

/// `s` percent-encoded but for RFC 3986's unreserved characters, as nginx escapes a
/// forwarded client certificate.
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
