//! What the fake Misfit knows: its one OAuth client, the people and their daily steps, codes
//! and tokens, and whether the cloud is dead; and the rules of its code exchange and tokens.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use jiff::civil::Date;

use super::super::common::{bearer_token, first, random_token};
use super::super::server::Fake;
use super::faults::{Dead, Fault};
use super::wire::{INVALID_TOKEN, Refusal, TokenJson};

const DEFAULT_CODE_LIFETIME: Duration = Duration::from_secs(600);

/// What the fake's routes share: this state, the call counters and the scripted faults (one
/// queue for every endpoint, as faults hit requests in arrival order).
pub(super) type Shared = Arc<Fake<MisfitState, Fault>>;

pub(super) struct Person {
    pub(super) name: String,
    pub(super) steps: BTreeMap<Date, u64>,
}

struct AuthCode {
    user_id: String,
    client_id: String,
    /// As sent in the authorize request: the exchange must repeat it exactly.
    redirect_uri: String,
    issued_at: Instant,
    redeemed: bool,
}

/// Everything the fake Misfit knows, behind the fake's one lock.
pub(super) struct MisfitState {
    pub(super) client_id: String,
    pub(super) client_secret: String,
    pub(super) code_lifetime: Duration,
    pub(super) people: BTreeMap<String, Person>,
    codes: HashMap<String, AuthCode>,
    /// Access token → user id. Misfit's tokens do not expire and there is no refresh.
    pub(super) tokens: HashMap<String, String>,
    pub(super) dead: Option<Dead>,
}

impl MisfitState {
    pub(super) fn new(client_id: &str, client_secret: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            code_lifetime: DEFAULT_CODE_LIFETIME,
            people: BTreeMap::new(),
            codes: HashMap::new(),
            tokens: HashMap::new(),
            dead: None,
        }
    }

    pub(super) fn person_mut(&mut self, user_id: &str) -> &mut Person {
        self.people
            .entry(user_id.to_owned())
            .or_insert_with(|| Person { name: format!("Fake Misfit {user_id}"), steps: BTreeMap::new() })
    }

    pub(super) fn issue_token(&mut self, user_id: &str) -> String {
        let token = random_token("fake-misfit-");
        self.tokens.insert(token.clone(), user_id.to_owned());
        token
    }

    /// A new authorization code for `user_id`; the exchange must repeat `redirect_uri` exactly.
    pub(super) fn issue_code(&mut self, user_id: String, client_id: &str, redirect_uri: &str) -> String {
        let code = random_token("fake-code-");
        let record = AuthCode {
            user_id,
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            issued_at: Instant::now(),
            redeemed: false,
        };
        self.codes.insert(code.clone(), record);
        code
    }

    pub(super) fn exchange(&mut self, fields: &[(String, String)]) -> Result<TokenJson, Refusal> {
        match first(fields, "grant_type") {
            Some("authorization_code") => {}
            None => return Err(Refusal::bad_request("Missing parameter: grant_type")),
            Some(_) => return Err(Refusal::bad_request("Unsupported grant_type")),
        }
        if first(fields, "client_id") != Some(self.client_id.as_str())
            || first(fields, "client_secret") != Some(self.client_secret.as_str())
        {
            return Err(Refusal::bad_request("Invalid client_id or client_secret"));
        }
        let Some(code) = first(fields, "code").filter(|c| !c.is_empty()) else {
            return Err(Refusal::bad_request("Missing parameter: code"));
        };
        let Some(redirect_uri) = first(fields, "redirect_uri") else {
            return Err(Refusal::bad_request("Missing parameter: redirect_uri"));
        };
        let (client_id, code_lifetime) = (self.client_id.clone(), self.code_lifetime);
        let Some(record) = self.codes.get_mut(code) else {
            return Err(Refusal::bad_request("Invalid authorization code"));
        };
        if record.redeemed {
            return Err(Refusal::bad_request("Authorization code has already been used"));
        }
        if record.issued_at.elapsed() >= code_lifetime {
            return Err(Refusal::bad_request("Authorization code has expired"));
        }
        if record.client_id != client_id {
            return Err(Refusal::bad_request("Authorization code was issued to another client"));
        }
        if record.redirect_uri != redirect_uri {
            return Err(Refusal::bad_request("redirect_uri does not match the authorization request"));
        }
        // Redeemed only on success, so a client bug (say a wrong redirect_uri) can be retried in a test.
        record.redeemed = true;
        let user_id = record.user_id.clone();
        Ok(TokenJson { access_token: self.issue_token(&user_id), token_type: "bearer" })
    }

    /// The user behind the Bearer token, when `path_user` (`me` or an id) is theirs.
    pub(super) fn bearer_user(&self, headers: &HeaderMap, path_user: &str) -> Result<String, Refusal> {
        let user_id = bearer_token(headers)
            .and_then(|t| self.tokens.get(t))
            .ok_or(Refusal { status: StatusCode::UNAUTHORIZED, message: INVALID_TOKEN.to_owned() })?;
        if path_user != "me" && path_user != user_id {
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                message: "The access token does not belong to this user".to_owned(),
            });
        }
        Ok(user_id.clone())
    }
}
