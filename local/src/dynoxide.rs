//! dynoxide, the SQLite-backed DynamoDB emulator, embedded in this process and served on an
//! ephemeral loopback port: in memory for tests, on a file for `make dev`.

use std::path::Path;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
#[error("embedded DynamoDB: {0}")]
pub struct EmbeddedError(String);

pub struct EmbeddedDynamo {
    endpoint: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), String>>>,
}

impl EmbeddedDynamo {
    /// A fresh in-memory database (each test its own).
    pub async fn in_memory() -> Result<Self, EmbeddedError> {
        let db = dynoxide::Database::memory().map_err(|e| EmbeddedError(e.to_string()))?;
        Self::serve(db, 0).await
    }

    /// A database on `path`, kept across restarts, served on `port` (0: any free port).
    pub async fn on_file(path: &Path, port: u16) -> Result<Self, EmbeddedError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| EmbeddedError(format!("{}: {e}", dir.display())))?;
        }
        let path = path.to_str().ok_or_else(|| EmbeddedError("the database path is not UTF-8".into()))?;
        let db = dynoxide::Database::new(path).map_err(|e| EmbeddedError(e.to_string()))?;
        Self::serve(db, port).await
    }

    async fn serve(db: dynoxide::Database, port: u16) -> Result<Self, EmbeddedError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| EmbeddedError(format!("binding 127.0.0.1:{port}: {e}")))?;
        let addr = listener.local_addr().map_err(|e| EmbeddedError(e.to_string()))?;
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(dynoxide::server::serve_with_shutdown(listener, db, async move {
            let _ = rx.await;
        }));
        Ok(Self { endpoint: format!("http://{addr}"), shutdown: Some(tx), server: Some(server) })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Stops serving and waits for open requests to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for EmbeddedDynamo {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
