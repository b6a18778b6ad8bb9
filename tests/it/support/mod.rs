//! Test support: real servers the integration tests talk to, and the process plumbing they share.
//!
//! - [`idp`]: a real OpenID Connect provider (`tests/idp/server.mjs`, the npm `oidc-provider`)
//!   that issues client_credentials access tokens, serves discovery and JWKS, introspects and
//!   revokes.
//! - [`emulator`]: an AWS endpoint (DynamoDB + S3) for the store tests: the one named by
//!   `SCOPEGATE_TEST_AWS_ENDPOINT`, or a moto server started for the test.
//!
//! Every guard owns its child process: it waits for readiness up to a deadline (never a fixed
//! sleep) and on drop sends SIGTERM, then SIGKILL after a grace period, and reaps the child.
//! Run `scripts/setup` (or `scripts/test`) once to install what they start.

// Not every test uses every helper.
#![allow(dead_code)]

pub mod emulator;
pub mod idp;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a started server may take to become ready before the test fails.
pub const START_DEADLINE: Duration = Duration::from_secs(60);

/// How long a child gets after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// Cases per property test: 2000 by default, `SCOPEGATE_PROPTEST_CASES` for the long run
/// (`SCOPEGATE_PROPTEST_CASES=100000 cargo test --release --test it differential:: routes::`).
pub fn proptest_cases() -> u32 {
    std::env::var("SCOPEGATE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A port on 127.0.0.1 that was free a moment ago (the OS picked it for a listener we dropped).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("local_addr of a bound listener")
        .port()
}

/// An HTTP client for test servers on loopback: no proxy, short timeouts.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build reqwest client")
}

/// The last bytes a child wrote to one of its pipes, kept for failure messages.
#[derive(Clone, Default)]
pub struct OutputTail(Arc<Mutex<Vec<u8>>>);

impl OutputTail {
    /// At most this much output is kept (the newest).
    const LIMIT: usize = 64 * 1024;

    fn push(&self, bytes: &[u8]) {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        buf.extend_from_slice(bytes);
        if buf.len() > Self::LIMIT {
            let cut = buf.len() - Self::LIMIT;
            buf.drain(..cut);
        }
    }

    /// What was kept, lossily decoded.
    pub fn text(&self) -> String {
        let buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Drains `pipe` into this tail on a background thread until the pipe closes.
    fn drain_from(&self, mut pipe: impl Read + Send + 'static) {
        let tail = self.clone();
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => tail.push(&chunk[..n]),
                }
            }
        });
    }
}

/// Called with each line the child writes to stdout, without the line ending.
pub type LineCallback = Box<dyn FnMut(&str) + Send>;

/// A child process that is stopped (SIGTERM, then SIGKILL) and reaped when dropped.
pub struct ChildGuard {
    child: Child,
    command: String,
    stderr: OutputTail,
    stdout: OutputTail,
}

impl ChildGuard {
    /// Spawns `command` with stdin piped (so a child that watches it sees EOF when the test
    /// process dies), stderr captured and stdout either captured or, with `on_stdout_line`,
    /// handed line by line to that callback on a background thread (then captured too).
    ///
    /// # Panics
    /// If the program cannot be started; the message names the command.
    pub fn spawn(mut command: Command, on_stdout_line: Option<LineCallback>) -> ChildGuard {
        let display = describe(&command);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{display}`: {e}"));
        let stderr = OutputTail::default();
        stderr.drain_from(child.stderr.take().expect("piped stderr"));
        let stdout = OutputTail::default();
        let pipe = child.stdout.take().expect("piped stdout");
        match on_stdout_line {
            None => stdout.drain_from(pipe),
            Some(mut callback) => {
                let tail = stdout.clone();
                thread::spawn(move || {
                    let mut reader = BufReader::new(pipe);
                    let mut line = String::new();
                    while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                        tail.push(line.as_bytes());
                        callback(line.trim_end());
                        line.clear();
                    }
                });
            }
        }
        ChildGuard {
            child,
            command: display,
            stderr,
            stdout,
        }
    }

    /// The command line, for messages.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the child has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// A report for a failure message: command, exit status, stdout and stderr tails.
    pub fn report(&mut self) -> String {
        let mut out = format!("command: {}\n", self.command);
        match self.try_wait() {
            Some(status) => writeln!(out, "status: {status}").unwrap(),
            None => writeln!(out, "status: still running (pid {})", self.id()).unwrap(),
        }
        // Only on the way to a panic message: give the pipe threads a moment to catch the last
        // words of a child that just died. No test waits on it.
        thread::sleep(Duration::from_millis(50));
        write!(
            out,
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout.text(),
            self.stderr.text()
        )
        .unwrap();
        out
    }

    /// Stops the child: SIGTERM, then SIGKILL after `grace`, and reaps it.
    pub fn stop(&mut self, grace: Duration) {
        if self.try_wait().is_some() {
            return;
        }
        // No libc: the `kill` utility sends the signal.
        let _ = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.try_wait().is_some() {
                return;
            }
            // The poll interval of a wait for exit after SIGTERM, with a deadline.
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop(STOP_GRACE);
    }
}

/// `program arg arg` with the environment variables that were set on it, for messages.
fn describe(command: &Command) -> String {
    let mut out = String::new();
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            write!(
                out,
                "{}={} ",
                key.to_string_lossy(),
                value.to_string_lossy()
            )
            .unwrap();
        }
    }
    out.push_str(&command.get_program().to_string_lossy());
    for arg in command.get_args() {
        out.push(' ');
        out.push_str(&arg.to_string_lossy());
    }
    out
}

/// `path` if it exists, else a panic that tells how to install it.
#[track_caller]
pub fn require_installed(path: PathBuf, what: &str, fix: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} is not installed: {} is missing.\nRun `{fix}` in the repository root \
         (`scripts/test` runs `scripts/setup`, then `cargo test`).",
        path.display()
    );
    path
}
