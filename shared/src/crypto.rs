//! `TokenCipher` with AES-256-GCM: the person and provider are the associated data, so a
//! ciphertext moved to another person's item does not decrypt.

use crate::domain::{EncryptedTokens, Provider, TokenSet, UserId};
use crate::ports::{CipherError, TokenCipher};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

/// Marks the format, so a later key or algorithm can be told apart.
const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

/// The cipher of a function deployed without the token key (the webhook, challenges, the
/// sweep): it opens and seals nothing, so a wiring mistake fails loudly instead of reading tokens.
pub struct NoTokenKey;

impl TokenCipher for NoTokenKey {
    fn encrypt(&self, _: &UserId, _: Provider, _: &TokenSet) -> Result<EncryptedTokens, CipherError> {
        Err(CipherError::NoKey)
    }

    fn decrypt(&self, _: &UserId, _: Provider, _: &EncryptedTokens) -> Result<TokenSet, CipherError> {
        Err(CipherError::NoKey)
    }
}

pub struct AesGcmTokenCipher {
    cipher: Aes256Gcm,
}

impl AesGcmTokenCipher {
    /// From the 32-byte data key (from KMS in AWS, from configuration locally).
    pub fn new(key: &[u8; 32]) -> Self {
        Self { cipher: Aes256Gcm::new(key.into()) }
    }

    fn associated_data(user: &UserId, provider: Provider) -> Vec<u8> {
        format!("stepsync-tokens|{}|{}", user.as_str(), provider.as_str()).into_bytes()
    }
}

impl TokenCipher for AesGcmTokenCipher {
    fn encrypt(&self, user: &UserId, provider: Provider, tokens: &TokenSet) -> Result<EncryptedTokens, CipherError> {
        let plaintext = serde_json::to_vec(tokens).map_err(|_| CipherError::Encrypt)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = Self::associated_data(user, provider);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plaintext, aad: &aad })
            .map_err(|_| CipherError::Encrypt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(EncryptedTokens(format!("{PREFIX}{}", STANDARD.encode(out))))
    }

    fn decrypt(&self, user: &UserId, provider: Provider, tokens: &EncryptedTokens) -> Result<TokenSet, CipherError> {
        let body = tokens.0.strip_prefix(PREFIX).ok_or(CipherError::Decrypt)?;
        let raw = STANDARD.decode(body).map_err(|_| CipherError::Decrypt)?;
        if raw.len() <= NONCE_LEN {
            return Err(CipherError::Decrypt);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let aad = Self::associated_data(user, provider);
        let plaintext = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
            .map_err(|_| CipherError::Decrypt)?;
        serde_json::from_slice(&plaintext).map_err(|_| CipherError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::{ExposeSecret, SecretString};

    fn tokens() -> TokenSet {
        TokenSet {
            access_token: SecretString::from("ya29.access-token-plaintext"),
            refresh_token: Some(SecretString::from("1//refresh-token-plaintext")),
            expires_at: "2026-11-25T13:00:00Z".parse().unwrap(),
            scope: None,
        }
    }

    #[test]
    fn tokens_round_trip_only_for_the_same_person_and_provider() {
        let cipher = AesGcmTokenCipher::new(&[7u8; 32]);
        let alice = UserId::parse("alice").unwrap();
        let bob = UserId::parse("bob").unwrap();
        let sealed = cipher.encrypt(&alice, Provider::GoogleHealth, &tokens()).unwrap();
        assert!(!sealed.0.contains("plaintext"));
        let opened = cipher.decrypt(&alice, Provider::GoogleHealth, &sealed).unwrap();
        assert_eq!(opened.access_token.expose_secret(), "ya29.access-token-plaintext");
        assert!(cipher.decrypt(&bob, Provider::GoogleHealth, &sealed).is_err());
        assert!(cipher.decrypt(&alice, Provider::Misfit, &sealed).is_err());
        assert!(AesGcmTokenCipher::new(&[8u8; 32]).decrypt(&alice, Provider::GoogleHealth, &sealed).is_err());
        assert!(format!("{opened:?}").contains("REDACTED"));
    }

    #[test]
    fn a_function_without_the_key_seals_and_opens_nothing() {
        let user = UserId::parse("alice").unwrap();
        let sealed = AesGcmTokenCipher::new(&[7u8; 32]).encrypt(&user, Provider::GoogleHealth, &tokens()).unwrap();
        assert!(matches!(NoTokenKey.encrypt(&user, Provider::GoogleHealth, &tokens()), Err(CipherError::NoKey)));
        assert!(matches!(NoTokenKey.decrypt(&user, Provider::GoogleHealth, &sealed), Err(CipherError::NoKey)));
    }
}
