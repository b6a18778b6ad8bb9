//! What the token side asks of the network, as a trait ([`Fetch`]): GET a discovery or JWKS
//! document, POST an introspection form. [`HttpFetcher`] is the production one: one client,
//! a timeout on every request, no redirects, and a cap on every response body so a hostile
//! or broken endpoint cannot exhaust memory. Tests give the key cache and the introspector a
//! counted in-memory fake, so single flight, the cooldown and caching are checked by call
//! counts, not by timing.

use std::future::Future;
use std::pin::Pin;
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

/// A boxed future, so that [`Fetch`] can be a trait object: one allocation per network
/// round trip, never on the warm path.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The identity provider's HTTP endpoints, as the key cache and the introspector use them.
pub trait Fetch: Send + Sync + std::fmt::Debug + 'static {
    /// GETs `url` and returns at most `max` bytes of a 200 answer.
    fn get<'a>(&'a self, url: &'a str, max: usize) -> BoxFuture<'a, Result<Vec<u8>, FetchError>>;

    /// POSTs `form` with HTTP Basic credentials (RFC 7662 2.1) and returns at most `max`
    /// bytes of a 200 answer.
    fn post_form<'a>(
        &'a self,
        url: &'a str,
        credentials: (&'a str, &'a str),
        form: &'a [(&'a str, &'a str)],
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<u8>, FetchError>>;
}

/// The production [`Fetch`]: one reqwest client for discovery, JWKS and introspection.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
}

/// Largest discovery or JWKS document accepted.
pub(crate) const MAX_DOCUMENT: usize = 512 * 1024;
/// Largest introspection answer accepted.
pub(crate) const MAX_INTROSPECTION: usize = 64 * 1024;

impl HttpFetcher {
    /// A client whose every request (connect included) times out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
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

impl Fetch for HttpFetcher {
    fn get<'a>(&'a self, url: &'a str, max: usize) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        let req = self.client.get(url).header("accept", "application/json");
        Box::pin(self.read(url, req, max))
    }

    fn post_form<'a>(
        &'a self,
        url: &'a str,
        (user, password): (&'a str, &'a str),
        form: &'a [(&'a str, &'a str)],
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        let req = self
            .client
            .post(url)
            .basic_auth(user, Some(password))
            .header("accept", "application/json")
            .form(form);
        Box::pin(self.read(url, req, max))
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
