//! The fake SNS's keys: an RSA key with a self-signed certificate per fake, SignatureVersion 1
//! and 2 signatures, and one other key per process to forge with.

use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use rand::Rng;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use sha1::Sha1;
use sha2::Sha256;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::EncodePem;
use x509_cert::der::pem::LineEnding;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

use super::super::server::FakeError;

const SNS_CERT_SUBJECT: &str = "CN=sns.fake.invalid";
const RSA_BITS: usize = 2048;

pub(super) fn new_rsa_key() -> Result<RsaPrivateKey, FakeError> {
    RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS).map_err(|e| FakeError::Key(e.to_string()))
}

/// A self-signed certificate for `key` (sha256WithRSAEncryption, like SNS's own), as PEM,
/// valid around `now`.
pub(super) fn self_signed_pem(key: &RsaPrivateKey, now: Timestamp) -> Result<String, FakeError> {
    let broken = |e: &dyn std::fmt::Display| FakeError::Certificate(e.to_string());
    let issuer = SigningKey::<Sha256>::new(key.clone());
    let public_key = SubjectPublicKeyInfoOwned::from_key(key.to_public_key()).map_err(|e| broken(&e))?;
    let serial = SerialNumber::from(rand::rng().random::<u32>() | 1);
    // Valid from a month before the fake's "now", as a real signing certificate is.
    let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(now.as_second()).unwrap_or(0));
    let month = Duration::from_secs(30 * 24 * 3600);
    let validity = Validity {
        not_before: x509_cert::time::Time::try_from(now - month).map_err(|e| broken(&e))?,
        not_after: x509_cert::time::Time::try_from(now + 12 * month).map_err(|e| broken(&e))?,
    };
    let subject = Name::from_str(SNS_CERT_SUBJECT).map_err(|e| broken(&e))?;
    let builder = CertificateBuilder::new(Profile::Root, serial, validity, subject, public_key, &issuer)
        .map_err(|e| broken(&e))?;
    let certificate = builder.build::<rsa::pkcs1v15::Signature>().map_err(|e| broken(&e))?;
    certificate.to_pem(LineEnding::LF).map_err(|e| broken(&e))
}

/// Which signature SNS puts on a topic's messages (`SignatureVersion`): RSA PKCS#1 v1.5 over
/// the canonical string with SHA-1 ("1", a topic's default) or with SHA-256 ("2", the topic
/// attribute `SignatureVersion` set to 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureVersion {
    #[default]
    V1,
    V2,
}

impl SignatureVersion {
    /// The `SignatureVersion` field's value.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureVersion::V1 => "1",
            SignatureVersion::V2 => "2",
        }
    }
}

/// Base64 of `key`'s RSA PKCS#1 v1.5 signature of `canonical`, hashed as `version` says.
pub(super) fn sign_with(key: &RsaPrivateKey, version: SignatureVersion, canonical: &str) -> String {
    let signature = match version {
        SignatureVersion::V1 => SigningKey::<Sha1>::new(key.clone()).sign(canonical.as_bytes()).to_bytes(),
        SignatureVersion::V2 => SigningKey::<Sha256>::new(key.clone()).sign(canonical.as_bytes()).to_bytes(),
    };
    STANDARD.encode(signature)
}

/// A key that is not any fake's: made once per process, as key generation is slow.
pub(super) fn forger() -> &'static RsaPrivateKey {
    static FORGER: OnceLock<RsaPrivateKey> = OnceLock::new();
    FORGER.get_or_init(|| new_rsa_key().unwrap_or_else(|e| panic!("fake SNS forger: {e}")))
}
