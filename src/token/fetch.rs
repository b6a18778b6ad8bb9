//! HTTP to the identity provider: one client, a timeout on every request, no redirects, and
//! a cap on every response body so a hostile or broken endpoint cannot exhaust memory.

use std::time::Duration;

/// A failed fetch. Carries the URL (never a token or a secret).
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// Connection, TLS or timeout.
    #[error("{url}: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// A status other than 200.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// The body was over the cap.
    #[error("{url}: response over {max} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap.
        max: usize,
    },
    /// The body is not the JSON expected.
    #[error("{url}: {reason}")]
    Body {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// The shared HTTP client for discovery, JWKS and introspection.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
}

/// Largest discovery or JWKS document accepted.
pub(crate) const MAX_DOCUMENT: usize = 512 * 1024;
/// Largest introspection answer accepted.
pub(crate) const MAX_INTROSPECTION: usize = 64 * 1024;

impl Fetcher {
    pub(crate) fn new(timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect would let whoever answers the first URL pick where keys come from.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("scopegate/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client's settings are static and valid");
        Self { client }
    }

    /// GETs `url` and returns at most `max` bytes of a 200 answer.
    pub(crate) async fn get(&self, url: &str, max: usize) -> Result<Vec<u8>, FetchError> {
        let req = self.client.get(url).header("accept", "application/json");
        self.read(url, req, max).await
    }

    /// POSTs a form with HTTP Basic credentials (RFC 7662 2.1).
    pub(crate) async fn post_form(
        &self,
        url: &str,
        user: &str,
        password: &str,
        form: &[(&str, &str)],
        max: usize,
    ) -> Result<Vec<u8>, FetchError> {
        let req = self
            .client
            .post(url)
            .basic_auth(user, Some(password))
            .header("accept", "application/json")
            .form(form);
        self.read(url, req, max).await
    }

    async fn read(
        &self,
        url: &str,
        req: reqwest::RequestBuilder,
        max: usize,
    ) -> Result<Vec<u8>, FetchError> {
        let transport = |e: reqwest::Error| FetchError::Transport {
            url: url.to_owned(),
            reason: describe(&e),
        };
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status,
            });
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            max,
        };
        if resp.content_length().is_some_and(|l| l > max as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// reqwest's Display hides the cause ("error sending request"); the chain says what failed.
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
