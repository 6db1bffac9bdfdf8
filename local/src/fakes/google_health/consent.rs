//! Google's consent page: the authorize request it checks, the account picker, the approve
//! and deny forms, and the decision that sends the browser back with a code or an error.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use reqwest::Url;

use super::super::common::{account_picker, decision_forms, escape_html, first, found, hidden_inputs, http_url, page};
use super::state::{GoogleState, GrantTerms, Person, Shared};
use super::wire::{AUTH_PATH, CONSENT_PATH};

/// The consent routes: the page and the form it posts.
pub(super) fn routes() -> Router<Shared> {
    Router::new().route(AUTH_PATH, get(authorize_page)).route(CONSENT_PATH, post(consent))
}

pub(super) struct AuthorizeRequest {
    client_id: String,
    redirect_uri: Url,
    /// As sent: the token request must repeat it exactly.
    redirect_uri_raw: String,
    pub(super) scopes: Vec<String>,
    access_type: Option<String>,
    prompt: Option<String>,
    offline: bool,
    state: Option<String>,
    code_challenge: String,
    login_hint: Option<String>,
}

pub(super) enum Decision {
    Approve { health_user_id: String, granted: Vec<String> },
    Deny,
}

#[derive(Debug)]
pub(super) struct ConsentError {
    error: &'static str,
    description: String,
}

impl ConsentError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self { error, description: description.into() }
    }
}

impl std::fmt::Display for ConsentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl AuthorizeRequest {
    pub(super) fn parse(params: &[(String, String)], accepted_client_id: &str) -> Result<Self, ConsentError> {
        let client_id = first(params, "client_id").unwrap_or_default();
        if client_id.is_empty() {
            return Err(ConsentError::new("invalid_request", "Missing required parameter: client_id"));
        }
        if client_id != accepted_client_id {
            return Err(ConsentError::new("invalid_client", "The OAuth client was not found."));
        }
        let redirect_uri_raw = first(params, "redirect_uri").unwrap_or_default();
        let redirect_uri = http_url(redirect_uri_raw)
            .ok_or_else(|| ConsentError::new("invalid_request", "redirect_uri is missing or not an http(s) URL."))?;
        match first(params, "response_type") {
            Some("code") => {}
            None => return Err(ConsentError::new("invalid_request", "Missing required parameter: response_type")),
            Some(other) => {
                return Err(ConsentError::new(
                    "unsupported_response_type",
                    format!("Unsupported response_type {other:?}."),
                ));
            }
        }
        let mut scopes: Vec<String> = Vec::new();
        for scope in first(params, "scope").unwrap_or_default().split_whitespace() {
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        if scopes.is_empty() {
            return Err(ConsentError::new("invalid_request", "Missing required parameter: scope"));
        }
        let code_challenge = first(params, "code_challenge").unwrap_or_default();
        if code_challenge.is_empty() {
            return Err(ConsentError::new("invalid_request", "Missing required parameter: code_challenge (PKCE)."));
        }
        if first(params, "code_challenge_method") != Some("S256") {
            return Err(ConsentError::new("invalid_request", "code_challenge_method must be S256."));
        }
        let access_type = first(params, "access_type").map(str::to_owned);
        Ok(Self {
            client_id: client_id.to_owned(),
            redirect_uri,
            redirect_uri_raw: redirect_uri_raw.to_owned(),
            scopes,
            offline: access_type.as_deref() == Some("offline"),
            access_type,
            prompt: first(params, "prompt").map(str::to_owned),
            state: first(params, "state").map(str::to_owned),
            code_challenge: code_challenge.to_owned(),
            login_hint: first(params, "login_hint").filter(|h| !h.is_empty()).map(str::to_owned),
        })
    }

    /// The request again, as hidden form fields (the consent POST re-validates all of it).
    fn hidden_fields(&self) -> String {
        let mut fields = vec![
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", self.redirect_uri_raw.as_str()),
            ("response_type", "code"),
            ("code_challenge", self.code_challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let scope = self.scopes.join(" ");
        fields.push(("scope", &scope));
        for (name, value) in [
            ("access_type", &self.access_type),
            ("prompt", &self.prompt),
            ("state", &self.state),
            ("login_hint", &self.login_hint),
        ] {
            if let Some(value) = value {
                fields.push((name, value));
            }
        }
        hidden_inputs(fields)
    }

    /// This same request signed in as `health_user_id`: the person picker's links.
    fn href_as(&self, health_user_id: &str) -> String {
        let mut url = Url::parse("http://fake.invalid/").unwrap_or_else(|_| self.redirect_uri.clone());
        url.set_path(AUTH_PATH);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("client_id", &self.client_id);
            query.append_pair("redirect_uri", &self.redirect_uri_raw);
            query.append_pair("response_type", "code");
            query.append_pair("scope", &self.scopes.join(" "));
            query.append_pair("code_challenge", &self.code_challenge);
            query.append_pair("code_challenge_method", "S256");
            for (name, value) in [("access_type", &self.access_type), ("prompt", &self.prompt), ("state", &self.state)]
            {
                if let Some(value) = value {
                    query.append_pair(name, value);
                }
            }
            query.append_pair("login_hint", health_user_id);
        }
        format!("{}?{}", url.path(), url.query().unwrap_or_default())
    }
}

/// The consent decision, shared by the HTML form and the test helpers: the redirect Location.
pub(super) fn decide(
    state: &mut GoogleState,
    request: &AuthorizeRequest,
    decision: Decision,
) -> Result<String, ConsentError> {
    let mut location = request.redirect_uri.clone();
    match decision {
        Decision::Deny => {
            let mut query = location.query_pairs_mut();
            query.append_pair("error", "access_denied");
            if let Some(state) = &request.state {
                query.append_pair("state", state);
            }
        }
        Decision::Approve { health_user_id, granted } => {
            if !state.people.contains_key(&health_user_id) {
                return Err(ConsentError::new(
                    "invalid_request",
                    format!("No account {health_user_id:?} on this fake: add_person first."),
                ));
            }
            // The user can only untick what was asked for, never add to it.
            let scopes: Vec<String> = request.scopes.iter().filter(|s| granted.contains(s)).cloned().collect();
            let terms = GrantTerms { health_user_id, scopes: scopes.clone(), offline: request.offline };
            let code = state.issue_code(&request.client_id, &request.redirect_uri_raw, &request.code_challenge, terms);
            let mut query = location.query_pairs_mut();
            if let Some(state) = &request.state {
                query.append_pair("state", state);
            }
            query.append_pair("code", &code);
            query.append_pair("scope", &scopes.join(" "));
        }
    }
    // Google names itself in every authorization response (RFC 9207).
    location.query_pairs_mut().append_pair("iss", stepsync::providers::google_health::ISSUER);
    Ok(location.to_string())
}

fn error_page(error: &ConsentError) -> Response {
    let body = format!(
        "<h1>Error 400: {}</h1>\n<p id=\"error\">{}</p>\n<p id=\"error-description\">{}</p>",
        escape_html(error.error),
        escape_html(error.error),
        escape_html(&error.description)
    );
    (StatusCode::BAD_REQUEST, Html(page("Error 400 (fake Google)", &body))).into_response()
}

fn picker_page(request: &AuthorizeRequest, people: &BTreeMap<String, Person>) -> String {
    let accounts = people.keys().map(|id| (id.as_str(), request.href_as(id)));
    account_picker("Choose an account (fake Google)", "Choose an account", "data-health-user-id", accounts)
}

fn consent_page(request: &AuthorizeRequest, health_user_id: &str) -> String {
    let hidden = request.hidden_fields();
    let checkboxes: Vec<String> = request
        .scopes
        .iter()
        .enumerate()
        .map(|(i, scope)| {
            format!(
                r#"<label><input type="checkbox" id="scope-{i}" name="granted_scope" value="{s}" checked> {s}</label><br>"#,
                s = escape_html(scope)
            )
        })
        .collect();
    let approve = format!("{hidden}\n<fieldset id=\"scopes\">\n{}\n</fieldset>", checkboxes.join("\n"));
    let body = format!(
        r#"<h1>Sign in with Google (fake)</h1>
<p id="account">Signed in as <b>{user}</b></p>
<p><b>{client}</b> wants access to your Google Account:</p>
{forms}"#,
        user = escape_html(health_user_id),
        client = escape_html(&request.client_id),
        forms = decision_forms(CONSENT_PATH, &approve, &hidden, "Cancel"),
    );
    page("Sign in - Google Accounts (fake)", &body)
}

async fn authorize_page(
    State(fake): State<Shared>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    fake.count("authorize");
    let shared = fake.lock();
    let Ok(Query(params)) = query else {
        return error_page(&ConsentError::new("invalid_request", "The query string is malformed."));
    };
    let request = match AuthorizeRequest::parse(&params, &shared.client_id) {
        Ok(request) => request,
        Err(e) => return error_page(&e),
    };
    match &request.login_hint {
        None => Html(picker_page(&request, &shared.people)).into_response(),
        Some(user) if !shared.people.contains_key(user) => {
            error_page(&ConsentError::new("invalid_request", format!("No account {user:?} on this fake.")))
        }
        Some(user) => Html(consent_page(&request, user)).into_response(),
    }
}

async fn consent(State(fake): State<Shared>, form: Result<Form<Vec<(String, String)>>, FormRejection>) -> Response {
    fake.count("consent");
    let mut shared = fake.lock();
    let Ok(Form(fields)) = form else {
        return error_page(&ConsentError::new("invalid_request", "The consent form is malformed."));
    };
    let request = match AuthorizeRequest::parse(&fields, &shared.client_id) {
        Ok(request) => request,
        Err(e) => return error_page(&e),
    };
    let decision = match first(&fields, "decision") {
        Some("deny") => Decision::Deny,
        Some("approve") => {
            let Some(health_user_id) = request.login_hint.clone() else {
                return error_page(&ConsentError::new("invalid_request", "No account was chosen."));
            };
            let granted = fields.iter().filter(|(k, _)| k == "granted_scope").map(|(_, v)| v.clone()).collect();
            Decision::Approve { health_user_id, granted }
        }
        _ => return error_page(&ConsentError::new("invalid_request", "decision must be approve or deny.")),
    };
    match decide(&mut shared, &request, decision) {
        Ok(location) => found(&location).unwrap_or_else(|| {
            error_page(&ConsentError::new("invalid_request", "The redirect URL is not a valid header value."))
        }),
        Err(e) => error_page(&e),
    }
}
