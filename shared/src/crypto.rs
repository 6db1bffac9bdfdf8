//! `TokenCipher` with AES-256-GCM. The person, the provider and the connection's token version
//! are the associated data, so a ciphertext moved to another person's item, or an older one put
//! back in place of the current, does not decrypt. Each ciphertext names the key that sealed it
//! (an id derived from the key), so the key can be rotated without a flag day: new tokens are
//! sealed with the current key, and older ones open with the previous keys until their next
//! refresh seals them again.

use crate::domain::{EncryptedTokens, Provider, TokenSet, UserId};
use crate::ports::{CipherError, TokenCipher};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// `v2:{key id}:{base64 of nonce and sealed tokens}`.
const V2: &str = "v2:";
/// The first format: no key id, no token version in the associated data. Still opened (with
/// any known key), never written.
const V1: &str = "v1:";
const NONCE_LEN: usize = 12;

/// The cipher of a function deployed without the token key (the webhook, challenges, the
/// sweep): it opens and seals nothing, so a wiring mistake fails loudly instead of reading tokens.
pub struct NoTokenKey;

impl TokenCipher for NoTokenKey {
    fn encrypt(&self, _: &UserId, _: Provider, _: u64, _: &TokenSet) -> Result<EncryptedTokens, CipherError> {
        Err(CipherError::NoKey)
    }

    fn decrypt(&self, _: &UserId, _: Provider, _: u64, _: &EncryptedTokens) -> Result<TokenSet, CipherError> {
        Err(CipherError::NoKey)
    }
}

/// One data key and its id.
struct Key {
    id: String,
    cipher: Aes256Gcm,
}

impl Key {
    fn new(key: &[u8; 32]) -> Self {
        Self { id: key_id(key), cipher: Aes256Gcm::new(key.into()) }
    }
}

/// A key's public name: 8 hex digits of a hash of it (never the key; nothing to look up).
pub fn key_id(key: &[u8; 32]) -> String {
    let digest = Sha256::new().chain_update(b"stepsync token key id|").chain_update(key).finalize();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

pub struct AesGcmTokenCipher {
    current: Key,
    previous: Vec<Key>,
}

impl AesGcmTokenCipher {
    /// From the 32-byte data key (from SSM in AWS, from configuration locally).
    pub fn new(key: &[u8; 32]) -> Self {
        Self { current: Key::new(key), previous: Vec::new() }
    }

    /// Also opens tokens sealed with `previous` keys (a rotation in progress).
    pub fn with_previous<'a>(mut self, previous: impl IntoIterator<Item = &'a [u8; 32]>) -> Self {
        self.previous.extend(previous.into_iter().map(Key::new));
        self
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    fn associated_data(user: &UserId, provider: Provider, version: u64) -> Vec<u8> {
        format!("stepsync-tokens|v2|{}|{}|{version}", user.as_str(), provider.as_str()).into_bytes()
    }

    fn associated_data_v1(user: &UserId, provider: Provider) -> Vec<u8> {
        format!("stepsync-tokens|{}|{}", user.as_str(), provider.as_str()).into_bytes()
    }
}

/// Nonce and sealed bytes of a base64 body.
fn split(body: &str) -> Result<(Vec<u8>, Vec<u8>), CipherError> {
    let mut raw = STANDARD.decode(body).map_err(|_| CipherError::Decrypt)?;
    if raw.len() <= NONCE_LEN {
        return Err(CipherError::Decrypt);
    }
    let sealed = raw.split_off(NONCE_LEN);
    Ok((raw, sealed))
}

fn open(key: &Key, nonce: &[u8], sealed: &[u8], aad: &[u8]) -> Result<TokenSet, CipherError> {
    let plaintext =
        key.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad }).map_err(|_| CipherError::Decrypt)?;
    serde_json::from_slice(&plaintext).map_err(|_| CipherError::Decrypt)
}

impl TokenCipher for AesGcmTokenCipher {
    fn encrypt(
        &self,
        user: &UserId,
        provider: Provider,
        version: u64,
        tokens: &TokenSet,
    ) -> Result<EncryptedTokens, CipherError> {
        let plaintext = serde_json::to_vec(tokens).map_err(|_| CipherError::Encrypt)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = Self::associated_data(user, provider, version);
        let sealed = self
            .current
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plaintext, aad: &aad })
            .map_err(|_| CipherError::Encrypt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(EncryptedTokens(format!("{V2}{}:{}", self.current.id, STANDARD.encode(out))))
    }

    fn decrypt(
        &self,
        user: &UserId,
        provider: Provider,
        version: u64,
        tokens: &EncryptedTokens,
    ) -> Result<TokenSet, CipherError> {
        if let Some(rest) = tokens.0.strip_prefix(V2) {
            let (id, body) = rest.split_once(':').ok_or(CipherError::Decrypt)?;
            let key = self.keys().find(|k| k.id == id).ok_or(CipherError::Decrypt)?;
            let (nonce, sealed) = split(body)?;
            return open(key, &nonce, &sealed, &Self::associated_data(user, provider, version));
        }
        let body = tokens.0.strip_prefix(V1).ok_or(CipherError::Decrypt)?;
        let (nonce, sealed) = split(body)?;
        let aad = Self::associated_data_v1(user, provider);
        self.keys().find_map(|key| open(key, &nonce, &sealed, &aad).ok()).ok_or(CipherError::Decrypt)
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
    fn tokens_round_trip_only_for_the_same_person_provider_and_token_version() {
        let cipher = AesGcmTokenCipher::new(&[7u8; 32]);
        let alice = UserId::parse("alice").unwrap();
        let bob = UserId::parse("bob").unwrap();
        let sealed = cipher.encrypt(&alice, Provider::GoogleHealth, 3, &tokens()).unwrap();
        assert!(!sealed.0.contains("plaintext"));
        let opened = cipher.decrypt(&alice, Provider::GoogleHealth, 3, &sealed).unwrap();
        assert_eq!(opened.access_token.expose_secret(), "ya29.access-token-plaintext");
        assert!(cipher.decrypt(&bob, Provider::GoogleHealth, 3, &sealed).is_err());
        assert!(cipher.decrypt(&alice, Provider::Misfit, 3, &sealed).is_err());
        assert!(cipher.decrypt(&alice, Provider::GoogleHealth, 4, &sealed).is_err(), "an older token put back");
        assert!(AesGcmTokenCipher::new(&[8u8; 32]).decrypt(&alice, Provider::GoogleHealth, 3, &sealed).is_err());
        assert!(format!("{opened:?}").contains("REDACTED"));
    }

    #[test]
    fn a_ciphertext_names_its_key_and_a_rotated_key_still_opens_what_it_sealed() {
        let alice = UserId::parse("alice").unwrap();
        let (old, new) = ([7u8; 32], [9u8; 32]);
        let before = AesGcmTokenCipher::new(&old).encrypt(&alice, Provider::GoogleHealth, 1, &tokens()).unwrap();
        assert!(before.0.starts_with(&format!("v2:{}:", key_id(&old))), "{}", before.0);
        assert_ne!(key_id(&old), key_id(&new));

        let rotated = AesGcmTokenCipher::new(&new).with_previous([&old]);
        let opened = rotated.decrypt(&alice, Provider::GoogleHealth, 1, &before).unwrap();
        assert_eq!(opened.access_token.expose_secret(), "ya29.access-token-plaintext");
        let after = rotated.encrypt(&alice, Provider::GoogleHealth, 2, &opened).unwrap();
        assert!(after.0.starts_with(&format!("v2:{}:", key_id(&new))), "sealed again with the current key");
        assert!(
            AesGcmTokenCipher::new(&new).decrypt(&alice, Provider::GoogleHealth, 1, &before).is_err(),
            "without the previous key, the old tokens are unreadable"
        );
    }

    #[test]
    fn the_first_format_still_opens_with_any_known_key() {
        // v1: nonce and sealed bytes under the person and provider alone, as stored before.
        let alice = UserId::parse("alice").unwrap();
        let key = [7u8; 32];
        let nonce = [1u8; NONCE_LEN];
        let aad = AesGcmTokenCipher::associated_data_v1(&alice, Provider::GoogleHealth);
        let plaintext = serde_json::to_vec(&tokens()).unwrap();
        let sealed = Aes256Gcm::new((&key).into())
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plaintext, aad: &aad })
            .unwrap();
        let v1 = EncryptedTokens(format!("v1:{}", STANDARD.encode([nonce.to_vec(), sealed].concat())));

        let rotated = AesGcmTokenCipher::new(&[9u8; 32]).with_previous([&key]);
        assert!(rotated.decrypt(&alice, Provider::GoogleHealth, 5, &v1).is_ok());
        assert!(AesGcmTokenCipher::new(&[9u8; 32]).decrypt(&alice, Provider::GoogleHealth, 5, &v1).is_err());
    }

    #[test]
    fn a_function_without_the_key_seals_and_opens_nothing() {
        let user = UserId::parse("alice").unwrap();
        let sealed = AesGcmTokenCipher::new(&[7u8; 32]).encrypt(&user, Provider::GoogleHealth, 1, &tokens()).unwrap();
        assert!(matches!(NoTokenKey.encrypt(&user, Provider::GoogleHealth, 1, &tokens()), Err(CipherError::NoKey)));
        assert!(matches!(NoTokenKey.decrypt(&user, Provider::GoogleHealth, 1, &sealed), Err(CipherError::NoKey)));
    }
}
