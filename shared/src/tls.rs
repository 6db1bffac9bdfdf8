//! The TLS settings of every outbound HTTPS client of ours (the providers' clients and the
//! SSM call): rustls on aws-lc-rs, TLS 1.2 and 1.3, the platform's root certificates, the
//! same as reqwest's own default, except that the roots are read once per process, on the
//! first handshake, instead of once per client when it is built.
//!
//! reqwest's default reads and parses the system's certificate bundle in `Client::build`,
//! and a function builds up to four clients at cold start, before its first event, most of
//! them for calls that event may never make.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::sync::{Arc, LazyLock, OnceLock};

/// The shared settings, for `reqwest::ClientBuilder::tls_backend_preconfigured`; `None` only
/// if rustls refuses the provider's protocol versions, when the caller keeps reqwest's own.
pub fn client_config() -> Option<ClientConfig> {
    static CONFIG: LazyLock<Option<ClientConfig>> = LazyLock::new(|| {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(PlatformRootsOnFirstUse { provider: provider.clone(), verifier: OnceLock::new() });
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        // Our clients speak HTTP/1.1 only (reqwest without `http2`), as reqwest would announce.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Some(config)
    });
    CONFIG.clone()
}

/// `rustls_platform_verifier::Verifier` (WebPKI over the system's roots), built when the
/// first handshake needs it, then shared by every client for the life of the process.
#[derive(Debug)]
struct PlatformRootsOnFirstUse {
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<rustls_platform_verifier::Verifier, rustls::Error>>,
}

impl PlatformRootsOnFirstUse {
    fn verifier(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        self.verifier
            .get_or_init(|| rustls_platform_verifier::Verifier::new(self.provider.clone()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for PlatformRootsOnFirstUse {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls13_signature(message, cert, dss)
    }

    /// Without roots no handshake gets past `verify_server_cert`; the schemes are the
    /// provider's either way.
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        match self.verifier() {
            Ok(verifier) => verifier.supported_verify_schemes(),
            Err(_) => self.provider.signature_verification_algorithms.supported_schemes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_are_built_without_reading_the_roots() {
        let config = client_config().expect("aws-lc-rs offers TLS 1.2 and 1.3");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(config.crypto_provider().cipher_suites.iter().any(|s| s.version() == &rustls::version::TLS13));
    }

    #[test]
    fn the_roots_are_the_platforms_and_a_certificate_outside_them_is_refused() {
        let verifier = PlatformRootsOnFirstUse {
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            verifier: OnceLock::new(),
        };
        assert!(verifier.verifier.get().is_none(), "nothing is read before the first handshake");
        let not_a_certificate = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        let name = ServerName::try_from("example.com").unwrap();
        let answer = verifier.verify_server_cert(&not_a_certificate, &[], &name, &[], UnixTime::now());
        assert!(answer.is_err());
        assert!(verifier.verifier.get().is_some(), "the first handshake loads the roots, once");
    }
}
