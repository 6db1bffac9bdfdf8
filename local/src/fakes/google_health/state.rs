//! What the fake Google knows: its one OAuth client, the people and their daily steps, codes,
//! grants and tokens, and the webhook signing keys; and the OAuth rules that change them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::civil::Date;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand::Rng;
use serde_json::{Value, json};

use super::super::common::{bearer_token, first, pkce_s256, random_token};
use super::super::server::Fake;
use super::faults::{Fault, FaultTarget};
use super::wire::{
    Refusal, TINK_ECDSA_PUBLIC_KEY, basic_credentials, invalid_grant, invalid_request, is_valid_code_verifier,
    oauth_error, tink_ecdsa_public_key, token_response, unauthenticated,
};

const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);
const DEFAULT_CODE_LIFETIME: Duration = Duration::from_secs(600);
const DEFAULT_PAGE_SIZE: usize = 5;

/// What the fake's routes share: this state, the call counters and the scripted faults.
pub(super) type Shared = Arc<Fake<GoogleState, Fault, FaultTarget>>;

pub(super) struct Person {
    pub(super) legacy_user_id: Option<String>,
    /// The account's IANA zone, as the settings endpoint answers it.
    pub(super) time_zone: Option<String>,
    pub(super) steps: BTreeMap<Date, u64>,
}

#[derive(Clone)]
pub(super) struct GrantTerms {
    pub(super) health_user_id: String,
    pub(super) scopes: Vec<String>,
    pub(super) offline: bool,
}

struct AuthCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    terms: GrantTerms,
    issued_at: Instant,
    redeemed: bool,
}

pub(super) struct Grant {
    pub(super) health_user_id: String,
    pub(super) client_id: String,
    pub(super) scopes: Vec<String>,
    pub(super) revoked: bool,
}

pub(super) struct AccessToken {
    pub(super) grant: usize,
    pub(super) expires_at: Instant,
}

pub(super) struct WebhookKey {
    pub(super) key_id: u32,
    pub(super) signing_key: SigningKey,
}

/// Everything the fake Google knows, behind the fake's one lock.
pub(super) struct GoogleState {
    pub(super) client_id: String,
    pub(super) client_secret: String,
    pub(super) access_token_lifetime: Duration,
    pub(super) code_lifetime: Duration,
    pub(super) page_size: usize,
    pub(super) people: BTreeMap<String, Person>,
    codes: HashMap<String, AuthCode>,
    pub(super) grants: Vec<Grant>,
    pub(super) refresh_tokens: HashMap<String, usize>,
    pub(super) access_tokens: HashMap<String, AccessToken>,
    /// Oldest first; the last one is the primary (signing) key.
    pub(super) keys: Vec<WebhookKey>,
    pub(super) publish_newest_key: bool,
}

fn new_signing_key() -> SigningKey {
    // p256 0.13 wants rand_core 0.6, so draw the scalar with rand 0.9 and retry the
    // (astronomically rare) zero or out-of-range value.
    loop {
        let bytes: [u8; 32] = rand::rng().random();
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            return key;
        }
    }
}

impl GoogleState {
    pub(super) fn new(client_id: String, client_secret: String) -> Self {
        let mut shared = Self {
            client_id,
            client_secret,
            access_token_lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME,
            code_lifetime: DEFAULT_CODE_LIFETIME,
            page_size: DEFAULT_PAGE_SIZE,
            people: BTreeMap::new(),
            codes: HashMap::new(),
            grants: Vec::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            keys: Vec::new(),
            publish_newest_key: true,
        };
        shared.add_key();
        shared
    }

    pub(super) fn add_key(&mut self) -> u32 {
        let key_id = loop {
            let id: u32 = rand::rng().random();
            if id != 0 && self.keys.iter().all(|k| k.key_id != id) {
                break id;
            }
        };
        self.keys.push(WebhookKey { key_id, signing_key: new_signing_key() });
        key_id
    }

    pub(super) fn primary_key(&self) -> &WebhookKey {
        // `keys` is never empty: `new` adds one and `drop_old_keys` keeps the primary.
        &self.keys[self.keys.len() - 1]
    }

    pub(super) fn sign(&self, body: &[u8]) -> String {
        let key = self.primary_key();
        let signature: Signature = key.signing_key.sign(body);
        let mut out = Vec::with_capacity(80);
        out.push(0x01); // Tink's TINK output prefix
        out.extend_from_slice(&key.key_id.to_be_bytes());
        out.extend_from_slice(signature.to_der().as_bytes());
        STANDARD.encode(out)
    }

    pub(super) fn keyset_json(&self) -> Value {
        let published = if self.publish_newest_key { &self.keys[..] } else { &self.keys[..self.keys.len() - 1] };
        let keys: Vec<Value> = published
            .iter()
            .map(|key| {
                json!({
                    "keyData": {
                        "typeUrl": TINK_ECDSA_PUBLIC_KEY,
                        "value": STANDARD.encode(tink_ecdsa_public_key(key.signing_key.verifying_key())),
                        "keyMaterialType": "ASYMMETRIC_PUBLIC",
                    },
                    "status": "ENABLED",
                    "keyId": key.key_id,
                    "outputPrefixType": "TINK",
                })
            })
            .collect();
        let primary = published.last().map_or(0, |k| k.key_id);
        json!({ "primaryKeyId": primary, "key": keys })
    }

    pub(super) fn person_mut(&mut self, health_user_id: &str) -> &mut Person {
        self.people.entry(health_user_id.to_owned()).or_insert_with(|| Person {
            legacy_user_id: None,
            time_zone: None,
            steps: BTreeMap::new(),
        })
    }

    pub(super) fn new_grant(&mut self, health_user_id: &str, scopes: Vec<String>) -> usize {
        let client_id = self.client_id.clone();
        self.grants.push(Grant { health_user_id: health_user_id.to_owned(), client_id, scopes, revoked: false });
        self.grants.len() - 1
    }

    pub(super) fn issue_access_token(&mut self, grant: usize) -> String {
        let token = random_token("ya29.fake-");
        let expires_at = Instant::now() + self.access_token_lifetime;
        self.access_tokens.insert(token.clone(), AccessToken { grant, expires_at });
        token
    }

    pub(super) fn issue_refresh_token(&mut self, grant: usize) -> String {
        let token = random_token("1//fake-");
        self.refresh_tokens.insert(token.clone(), grant);
        token
    }

    pub(super) fn grants_of<'a>(
        &'a mut self,
        health_user_id: &'a str,
    ) -> impl Iterator<Item = (usize, &'a mut Grant)> + 'a {
        self.grants.iter_mut().enumerate().filter(move |(_, g)| g.health_user_id == health_user_id)
    }

    /// A new authorization code for what the person approved; the token request must repeat
    /// `redirect_uri` exactly and prove `code_challenge`.
    pub(super) fn issue_code(
        &mut self,
        client_id: &str,
        redirect_uri: &str,
        code_challenge: &str,
        terms: GrantTerms,
    ) -> String {
        let code = random_token("4/0fake-");
        let record = AuthCode {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            code_challenge: code_challenge.to_owned(),
            terms,
            issued_at: Instant::now(),
            redeemed: false,
        };
        self.codes.insert(code.clone(), record);
        code
    }

    pub(super) fn client_from(&self, headers: &HeaderMap, fields: &[(String, String)]) -> Result<(), Refusal> {
        let (id, secret) = basic_credentials(headers).unwrap_or_else(|| {
            (
                first(fields, "client_id").unwrap_or_default().to_owned(),
                first(fields, "client_secret").map(str::to_owned),
            )
        });
        if id != self.client_id {
            return Err(oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "The OAuth client was not found."));
        }
        if secret.as_deref() != Some(self.client_secret.as_str()) {
            return Err(oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized"));
        }
        Ok(())
    }

    pub(super) fn exchange_code(&mut self, fields: &[(String, String)]) -> Result<Response, Refusal> {
        let Some(code) = first(fields, "code") else {
            return Err(invalid_request("Missing required parameter: code"));
        };
        let client_id = self.client_id.clone();
        let code_lifetime = self.code_lifetime;
        let Some(record) = self.codes.get_mut(code) else {
            return Err(invalid_grant("Malformed auth code."));
        };
        if record.redeemed {
            return Err(invalid_grant("The authorization code has already been redeemed."));
        }
        if record.issued_at.elapsed() >= code_lifetime {
            return Err(invalid_grant("The authorization code has expired."));
        }
        if record.client_id != client_id {
            return Err(invalid_grant("The authorization code was issued to another client."));
        }
        match first(fields, "redirect_uri") {
            None => {
                return Err(invalid_request("Missing required parameter: redirect_uri"));
            }
            Some(uri) if uri != record.redirect_uri => {
                return Err(invalid_grant("redirect_uri does not match the one in the authorization request."));
            }
            Some(_) => {}
        }
        let Some(verifier) = first(fields, "code_verifier") else {
            return Err(invalid_grant("Missing code verifier."));
        };
        if !is_valid_code_verifier(verifier) || pkce_s256(verifier) != record.code_challenge {
            return Err(invalid_grant("Invalid code verifier."));
        }
        // Redeemed only on success, so a client bug (say a wrong verifier) can be retried in a test.
        record.redeemed = true;
        let terms = record.terms.clone();
        let grant = self.new_grant(&terms.health_user_id, terms.scopes.clone());
        let access_token = self.issue_access_token(grant);
        // Google hands out a refresh token only for access_type=offline.
        let refresh_token = terms.offline.then(|| self.issue_refresh_token(grant));
        Ok(token_response(access_token, refresh_token, &terms.scopes, self.access_token_lifetime))
    }

    pub(super) fn refresh(&mut self, fields: &[(String, String)]) -> Result<Response, Refusal> {
        let Some(token) = first(fields, "refresh_token") else {
            return Err(invalid_request("Missing required parameter: refresh_token"));
        };
        let Some(&grant) = self.refresh_tokens.get(token) else {
            return Err(invalid_grant("Token has been expired or revoked."));
        };
        if self.grants[grant].revoked {
            return Err(invalid_grant("Token has been expired or revoked."));
        }
        if self.grants[grant].client_id != self.client_id {
            return Err(invalid_grant("The refresh token was issued to another client."));
        }
        let scopes = self.grants[grant].scopes.clone();
        let access_token = self.issue_access_token(grant);
        // No rotation: the answer carries no refresh_token, so the client keeps the old one.
        Ok(token_response(access_token, None, &scopes, self.access_token_lifetime))
    }

    /// The grant behind a Bearer token, or the 401 Google answers for a missing, unknown,
    /// expired or revoked one.
    pub(super) fn bearer_grant(&self, headers: &HeaderMap) -> Result<&Grant, Refusal> {
        let grant = bearer_token(headers)
            .and_then(|t| self.access_tokens.get(t))
            .filter(|t| t.expires_at > Instant::now())
            .map(|t| &self.grants[t.grant])
            .filter(|g| !g.revoked);
        grant.ok_or_else(unauthenticated)
    }
}
