//! The pieces the local stack, the tests and the benchmarks share: `template.yaml` read once
//! (`template`), the table it defines, the embedded DynamoDB (dynoxide) and moto in server
//! mode, the fake providers, all on loopback; and, with the `harness` feature, the tests' harness and the chaos run.

pub mod auth;
#[cfg(feature = "harness")]
pub mod chaos;
pub mod demo;
pub mod dynoxide;
pub mod fakes;
#[cfg(feature = "harness")]
pub mod harness;
pub mod moto;
pub mod stack;
pub mod stream;
pub mod table;
pub mod template;

/// The workspace root, where `template.yaml`, `.venv` and `local/` live.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("local/ sits in the workspace").to_path_buf()
}
