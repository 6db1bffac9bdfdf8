//! The account a code exchange named, for a source whose token answer is the only place that
//! tells it (Withings' `userid`, Polar's `x_user_id`): `identity`, asked right after the
//! exchange by the same client, finds it here by the access token's hash.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Connections a process completes between two clears; more is a sign of something odd, and a
/// clear only costs a callback its identity (the person tries again).
const MAX_REMEMBERED: usize = 256;

/// SHA-256 of an access token → the account its exchange named. Tokens are never kept.
#[derive(Default)]
pub(super) struct ExchangedAccounts(Mutex<HashMap<[u8; 32], String>>);

impl ExchangedAccounts {
    pub fn remember(&self, access_token: &str, account: String) {
        let mut accounts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if accounts.len() >= MAX_REMEMBERED {
            accounts.clear();
        }
        accounts.insert(Sha256::digest(access_token.as_bytes()).into(), account);
    }

    pub fn account_for(&self, access_token: &SecretString) -> Option<String> {
        let key: [u8; 32] = Sha256::digest(access_token.expose_secret().as_bytes()).into();
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&key).cloned()
    }
}
