//! The pieces the local stack and the tests share: the table definition read from
//! `template.yaml`, the embedded DynamoDB (dynoxide) and moto in server mode, all on loopback.

pub mod auth;
pub mod demo;
pub mod dynoxide;
pub mod fakes;
#[cfg(feature = "harness")]
pub mod harness;
pub mod moto;
pub mod stack;
pub mod table;

/// The workspace root, where `template.yaml`, `.venv` and `local/` live.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("local/ sits in the workspace").to_path_buf()
}
