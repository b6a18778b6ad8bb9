//! A counted in-memory identity provider for the token side's unit tests: what single
//! flight, the cooldown and the introspection cache do is read from call counts, and a gate
//! holds a fetch in flight for as long as a test needs, so nothing here waits on time.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::fetch::{BoxFuture, Fetch, FetchError};

/// Answers every GET with `jwks` and every POST with `form_answer`, with `status`.
#[derive(Debug)]
pub(crate) struct FakeIdp {
    pub(crate) jwks: Mutex<Vec<u8>>,
    pub(crate) form_answer: Mutex<Vec<u8>>,
    pub(crate) status: AtomicU16,
    pub(crate) gets: AtomicUsize,
    pub(crate) posts: AtomicUsize,
    /// While set, a fetch waits for [`FakeIdp::gate`] permits before answering.
    pub(crate) hold: AtomicBool,
    pub(crate) gate: tokio::sync::Semaphore,
}

impl FakeIdp {
    pub(crate) fn new(jwks: serde_json::Value) -> FakeIdp {
        FakeIdp {
            jwks: Mutex::new(jwks.to_string().into_bytes()),
            form_answer: Mutex::new(br#"{"active":false}"#.to_vec()),
            status: AtomicU16::new(200),
            gets: AtomicUsize::new(0),
            posts: AtomicUsize::new(0),
            hold: AtomicBool::new(false),
            gate: tokio::sync::Semaphore::new(0),
        }
    }

    pub(crate) fn publish(&self, jwks: serde_json::Value) {
        *self.jwks.lock().unwrap() = jwks.to_string().into_bytes();
    }

    pub(crate) fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }

    pub(crate) fn posts(&self) -> usize {
        self.posts.load(Ordering::SeqCst)
    }

    async fn answer(&self, url: &str, body: &Mutex<Vec<u8>>) -> Result<Vec<u8>, FetchError> {
        if self.hold.load(Ordering::SeqCst) {
            self.gate.acquire().await.expect("gate open").forget();
        }
        match self.status.load(Ordering::SeqCst) {
            200 => Ok(body.lock().unwrap().clone()),
            status => Err(FetchError::Status {
                url: url.to_owned(),
                status,
            }),
        }
    }
}

impl Fetch for FakeIdp {
    fn get<'a>(&'a self, url: &'a str, _max: usize) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        Box::pin(self.answer(url, &self.jwks))
    }

    fn post_form<'a>(
        &'a self,
        url: &'a str,
        _credentials: (&'a str, &'a str),
        _form: &'a [(&'a str, &'a str)],
        _max: usize,
    ) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        self.posts.fetch_add(1, Ordering::SeqCst);
        Box::pin(self.answer(url, &self.form_answer))
    }
}
