//! Local stand-in for the HttpApi JWT authorizer: HS256 tokens signed with a key the local
//! stack makes. Never part of a Lambda build.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// Signs and checks the local stack's tokens.
pub struct LocalAuth {
    key: Vec<u8>,
}

impl LocalAuth {
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// A token for `user`, valid for `ttl_secs` from `now` (epoch seconds).
    pub fn issue(&self, user: &str, admin: bool, now: i64, ttl_secs: i64) -> String {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string());
        let claims = json!({"sub": user, "admin": admin.to_string(), "iss": "stepsync-local", "iat": now, "exp": now + ttl_secs});
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let mut mac = self.mac();
        mac.update(format!("{header}.{payload}").as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{header}.{payload}.{signature}")
    }

    /// The claims of a valid, unexpired token, as strings (what API Gateway hands a Lambda).
    pub fn verify(&self, token: &str, now: i64) -> Option<serde_json::Map<String, Value>> {
        let mut parts = token.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let mut mac = self.mac();
        mac.update(format!("{header}.{payload}").as_bytes());
        mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).ok()?).ok()?;
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        if claims.get("exp").and_then(Value::as_i64).is_none_or(|exp| exp <= now) {
            return None;
        }
        let strings = claims
            .as_object()?
            .iter()
            .map(|(k, v)| {
                (k.clone(), v.as_str().map_or_else(|| Value::String(v.to_string()), |s| Value::String(s.to_owned())))
            })
            .collect();
        Some(strings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_until_they_expire_and_forgeries_never() {
        let auth = LocalAuth::new(b"local-key".to_vec());
        let token = auth.issue("alice", true, 1000, 60);
        let claims = auth.verify(&token, 1030).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["admin"], "true");
        assert!(auth.verify(&token, 1060).is_none(), "expired");
        assert!(LocalAuth::new(b"other".to_vec()).verify(&token, 1030).is_none(), "another key");
        let mut forged = token.clone();
        forged.insert(forged.find('.').unwrap() + 2, 'x');
        assert!(auth.verify(&forged, 1030).is_none());
    }
}
