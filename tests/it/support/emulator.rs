//! [`AwsEmulator`]: an AWS endpoint serving DynamoDB and S3 for the store tests.
//!
//! With `SCOPEGATE_TEST_AWS_ENDPOINT` set (for example `http://127.0.0.1:4566`, a LocalStack
//! started by `scripts/localstack start` or by hand), every test uses that endpoint. Without
//! it, each guard starts its own moto server (`.venv-emu/bin/moto_server`, installed by
//! `scripts/setup`) on a free port and stops it on drop.
//!
//! Both emulators take credentials `test`/`test` and region `us-east-1`; S3 needs path-style
//! addressing. Tests share an external endpoint, so each one names its tables and buckets with
//! [`unique_name`].

use std::process::Command;
use std::time::Duration;

use super::{free_port, http_client, repo_root, require_installed, ChildGuard, START_DEADLINE};

/// The environment variable naming an already running endpoint.
pub const ENDPOINT_ENV: &str = "SCOPEGATE_TEST_AWS_ENDPOINT";
/// Region the emulators accept.
pub const REGION: &str = "us-east-1";
/// Access key id and secret the emulators accept.
pub const ACCESS_KEY: &str = "test";
/// See [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "test";

/// `moto_server`'s main, plus a thread that exits when stdin closes: the guard pipes stdin, so
/// a test process that dies without dropping the guard (killed, aborted) takes moto with it.
const MOTO_MAIN: &str = "\
import os, sys, threading
def exit_with_parent():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=exit_with_parent, daemon=True).start()
from moto.server import main
main(sys.argv[1:])
";

/// An AWS (DynamoDB + S3) endpoint: reused from [`ENDPOINT_ENV`] or a moto server of its own.
pub struct AwsEmulator {
    endpoint: String,
    /// The moto server this guard started; `None` for an external endpoint.
    child: Option<ChildGuard>,
}

impl AwsEmulator {
    /// The endpoint from [`ENDPOINT_ENV`] if set, else a new moto server, ready to serve.
    ///
    /// # Panics
    /// If `.venv-emu` is missing (run `scripts/setup`), or moto is not ready within
    /// [`START_DEADLINE`]; the message shows the command and moto's stderr.
    pub async fn start() -> AwsEmulator {
        match std::env::var(ENDPOINT_ENV) {
            Ok(endpoint) if !endpoint.trim().is_empty() => AwsEmulator {
                endpoint: endpoint.trim().trim_end_matches('/').to_owned(),
                child: None,
            },
            _ => Self::start_moto().await,
        }
    }

    /// A new moto server on a free port, whatever [`ENDPOINT_ENV`] says.
    pub async fn start_moto() -> AwsEmulator {
        let venv = repo_root().join(".venv-emu");
        require_installed(
            venv.join("bin/moto_server"),
            "the AWS emulator (moto)",
            "scripts/setup",
        );
        let python = venv.join("bin/python");
        let http = http_client();
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        loop {
            let port = free_port();
            let mut command = Command::new(&python);
            command
                .args(["-c", MOTO_MAIN, "-H", "127.0.0.1", "-p", &port.to_string()])
                .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
                .env("AWS_DEFAULT_REGION", REGION)
                .env("PYTHONUNBUFFERED", "1");
            let mut child = ChildGuard::spawn(command, None);
            let endpoint = format!("http://127.0.0.1:{port}");
            let ready_url = format!("{endpoint}/moto-api/");
            loop {
                if child.try_wait().is_some() {
                    let report = child.report();
                    // Another process took the port between free_port() and moto's bind.
                    if report.contains("Address already in use")
                        && tokio::time::Instant::now() < deadline
                    {
                        break;
                    }
                    panic!("moto exited before it was ready\n{report}");
                }
                let ready = matches!(
                    http.get(&ready_url).timeout(Duration::from_secs(2)).send().await,
                    Ok(response) if response.status().is_success()
                );
                if ready {
                    return AwsEmulator {
                        endpoint,
                        child: Some(child),
                    };
                }
                if tokio::time::Instant::now() >= deadline {
                    panic!(
                        "moto was not ready at {ready_url} within {START_DEADLINE:?}\n{}",
                        child.report()
                    );
                }
                // The poll interval of a readiness loop with a deadline: moto has no
                // readiness signal but answering.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// The endpoint URL (`http://host:port`, no trailing slash), for the SDK's `endpoint_url`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether this guard started the emulator (moto) rather than reusing [`ENDPOINT_ENV`].
    pub fn is_owned(&self) -> bool {
        self.child.is_some()
    }
}

/// `prefix-` followed by 12 random lowercase letters and digits: a name no other test uses,
/// valid as a DynamoDB table name and as an S3 bucket name (3-63 characters of `a-z0-9-`,
/// starting with a letter or digit).
///
/// # Panics
/// If `prefix` is empty, longer than 50 bytes or has characters other than `a-z0-9-`, or
/// starts with `-`.
pub fn unique_name(prefix: &str) -> String {
    const SUFFIX_LEN: usize = 12;
    assert!(
        !prefix.is_empty()
            && prefix.len() <= 63 - 1 - SUFFIX_LEN
            && !prefix.starts_with('-')
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "unique_name prefix {prefix:?}: want 1-50 of a-z 0-9 -, not starting with -"
    );
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut random = [0u8; SUFFIX_LEN];
    aws_lc_rs::rand::fill(&mut random).expect("system random");
    let mut name = String::with_capacity(prefix.len() + 1 + SUFFIX_LEN);
    name.push_str(prefix.trim_end_matches('-'));
    name.push('-');
    // `% 36` is slightly biased over 0..=255; that does not matter for uniqueness (~62 bits).
    name.extend(
        random
            .iter()
            .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char),
    );
    name
}
