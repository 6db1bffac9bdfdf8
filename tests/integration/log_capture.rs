//! Captures every log line of the test binary, so tests can check that no token, code,
//! secret or signature was ever logged.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

static LINES: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

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

pub fn assert_absent(secrets: &[String]) {
    let text = String::from_utf8_lossy(&LINES.get_or_init(Default::default).lock().unwrap()).into_owned();
    assert!(!text.is_empty(), "logs were captured");
    for secret in secrets.iter().filter(|s| s.len() >= 6) {
        assert!(!text.contains(secret.as_str()), "a secret appeared in the logs: {}…", &secret[..4]);
    }
}
