//! Captures every log line of the test binary, so tests can check that no token, code,
//! secret or signature was ever logged.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

static LINES: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

/// The shortest secret the scan accepts. Below 8 characters a string (a word, a number, a
/// date's fragment) turns up in ordinary log text by chance and the scan would cry wolf; every
/// secret these tests issue is far longer (tokens and codes 40 and more, the fixed client and
/// webhook secrets 18 and 22). A shorter one fails the scan instead of being skipped, so no
/// secret goes unscanned.
const MIN_SECRET_LEN: usize = 8;

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LINES.get_or_init(Default::default).lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the JSON subscriber the functions use, writing into memory (debug for our crates).
pub fn install() {
    let filter = tracing_subscriber::EnvFilter::new("info,stepsync=debug,functions=debug,stepsync_local=debug");
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(|| Capture).try_init();
}

/// Every secret a test has seen so far: those it chose, and each one issued to it on the way
/// (codes, every access and refresh token, including those replaced since).
#[derive(Debug, Default, Clone)]
pub struct Secrets(Arc<Mutex<BTreeSet<String>>>);

impl Secrets {
    pub fn remember(&self, secret: impl Into<String>) {
        self.0.lock().unwrap().insert(secret.into());
    }

    /// Fails when any secret seen so far appears in the captured logs.
    pub fn assert_none_logged(&self) {
        let text = String::from_utf8_lossy(&LINES.get_or_init(Default::default).lock().unwrap()).into_owned();
        assert!(!text.is_empty(), "logs were captured");
        let secrets = self.0.lock().unwrap();
        for secret in secrets.iter() {
            let shown = secret.chars().take(4).collect::<String>();
            assert!(secret.len() >= MIN_SECRET_LEN, "a secret too short to scan for reliably: {shown}…");
            assert!(!text.contains(secret.as_str()), "a secret appeared in the logs: {shown}…");
        }
    }
}
