//! moto in server mode, from the project's virtualenv (`scripts/setup-venv.sh`), on
//! 127.0.0.1 and a port it picks. The process exits when this one does (it watches stdin).

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

#[derive(Debug, thiserror::Error)]
#[error("moto server: {0}")]
pub struct MotoError(String);

pub struct MotoServer {
    endpoint: String,
    _child: Child,
    // Held open: moto's launcher exits when its stdin closes, i.e. when we do.
    _stdin: ChildStdin,
}

impl MotoServer {
    /// Starts a moto server. `serialized` answers one request at a time (see docs/LOCAL_AWS.md).
    pub fn start(serialized: bool) -> Result<Self, MotoError> {
        let root = crate::workspace_root();
        let python = root.join(".venv/bin/python");
        if !python.exists() {
            return Err(MotoError(format!(
                "{} is missing: run scripts/setup-venv.sh (make test does)",
                python.display()
            )));
        }
        let mut command = Command::new(python);
        command.arg(root.join("local/moto_server.py"));
        if !serialized {
            command.arg("--threaded");
        }
        let mut child = command
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| MotoError(format!("starting python: {e}")))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map_err(|e| MotoError(e.to_string()))?;
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| MotoError(format!("unexpected first line {line:?}")))?;
        Ok(Self { endpoint: format!("http://127.0.0.1:{port}"), _child: child, _stdin: stdin })
    }

    /// One serialized moto server for the whole process (test binaries share it; each test
    /// uses its own table).
    pub fn shared() -> Result<&'static MotoServer, MotoError> {
        static SHARED: OnceLock<Result<MotoServer, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| MotoServer::start(true).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| MotoError(e.clone()))
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}
