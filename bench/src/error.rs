//! Why a benchmark run stopped.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(
        "{0}\n\nusage: stepsync-bench [--connections N] [--notifications N] [--store dynoxide|moto] [--webhooks-per-day N] [--quick] [--skip-cold-start | --only-cold-start] [--out DIR]"
    )]
    Usage(String),
    #[error("setting up {what}: {why}")]
    Setup { what: &'static str, why: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Prices(#[from] crate::prices::PriceError),
    /// Something the bench relies on did not hold (a sync failed, a total never showed).
    #[error("{step}: {why}")]
    Measurement { step: &'static str, why: String },
}

impl BenchError {
    pub fn setup(what: &'static str, why: impl std::fmt::Display) -> Self {
        Self::Setup { what, why: why.to_string() }
    }

    pub fn measurement(step: &'static str, why: impl std::fmt::Display) -> Self {
        Self::Measurement { step, why: why.to_string() }
    }

    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
