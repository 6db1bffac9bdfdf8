//! Polar Flow's consent page: the authorize request it checks, the sandbox account picker,
//! approve and deny (AccessLink has one scope, so there is nothing to untick), and the decision
//! that sends the browser back with a code or an error.

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use reqwest::Url;

use super::super::common::{account_picker, decision_forms, escape_html, first, found, hidden_inputs, http_url, page};
use super::state::{PolarState, Shared};
use super::wire::{AUTHORIZE_PATH, CONSENT_PATH, SCOPE_READ_ALL};

pub(super) fn routes() -> Router<Shared> {
    Router::new().route(AUTHORIZE_PATH, get(authorize_page)).route(CONSENT_PATH, post(consent))
}

pub(super) struct AuthorizeRequest {
    client_id: String,
    /// Optional at Polar: without it the client's registered redirect URL is used, which the
    /// fake does not know, so the fake asks for it.
    redirect_uri: Url,
    redirect_uri_raw: String,
    scope: Option<String>,
    state: Option<String>,
    login_hint: Option<u64>,
}

pub(super) enum Decision {
    Approve { user_id: u64 },
    Deny,
}

#[derive(Debug)]
pub(super) struct ConsentError(pub(super) String);

impl AuthorizeRequest {
    pub(super) fn parse(params: &[(String, String)], accepted_client_id: &str) -> Result<Self, ConsentError> {
        let client_id = first(params, "client_id").unwrap_or_default();
        if client_id != accepted_client_id {
            return Err(ConsentError("Invalid client_id.".to_owned()));
        }
        if first(params, "response_type") != Some("code") {
            return Err(ConsentError("response_type must be code.".to_owned()));
        }
        let redirect_uri_raw = first(params, "redirect_uri").unwrap_or_default();
        let redirect_uri = http_url(redirect_uri_raw)
            .ok_or_else(|| ConsentError("redirect_uri is missing or not an http(s) URL.".to_owned()))?;
        let scope = first(params, "scope").filter(|s| !s.is_empty());
        if scope.is_some_and(|s| s != SCOPE_READ_ALL) {
            return Err(ConsentError(format!("Unknown scope {scope:?}.")));
        }
        let login_hint = match first(params, "login_hint").filter(|h| !h.is_empty()) {
            None => None,
            Some(hint) => Some(hint.parse().map_err(|_| ConsentError("login_hint is not a user id.".to_owned()))?),
        };
        Ok(Self {
            client_id: client_id.to_owned(),
            redirect_uri,
            redirect_uri_raw: redirect_uri_raw.to_owned(),
            scope: scope.map(str::to_owned),
            state: first(params, "state").map(str::to_owned),
            login_hint,
        })
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![
            ("response_type", "code".to_owned()),
            ("client_id", self.client_id.clone()),
            ("redirect_uri", self.redirect_uri_raw.clone()),
        ];
        if let Some(scope) = &self.scope {
            params.push(("scope", scope.clone()));
        }
        if let Some(state) = &self.state {
            params.push(("state", state.clone()));
        }
        params
    }

    fn hidden_fields(&self, user_id: Option<u64>) -> String {
        let mut params = self.params();
        if let Some(user_id) = user_id {
            params.push(("login_hint", user_id.to_string()));
        }
        hidden_inputs(params.iter().map(|(k, v)| (*k, v.as_str())))
    }

    fn href_as(&self, user_id: u64) -> String {
        let mut params = self.params();
        params.push(("login_hint", user_id.to_string()));
        let query = Url::parse_with_params("http://fake.invalid/", &params)
            .ok()
            .and_then(|u| u.query().map(str::to_owned))
            .unwrap_or_default();
        format!("{AUTHORIZE_PATH}?{query}")
    }
}

/// The consent decision, shared by the HTML form and the test helpers: the redirect Location,
/// `redirect_uri?code=..&state=..` or `redirect_uri?error=access_denied&state=..`.
pub(super) fn decide(
    state: &mut PolarState,
    request: &AuthorizeRequest,
    decision: Decision,
) -> Result<String, ConsentError> {
    let mut location = request.redirect_uri.clone();
    {
        let mut query = location.query_pairs_mut();
        match decision {
            Decision::Deny => {
                query.append_pair("error", "access_denied");
            }
            Decision::Approve { user_id } => {
                if !state.people.contains_key(&user_id) {
                    return Err(ConsentError(format!("No Polar account {user_id} on this fake: add_person first.")));
                }
                let code = state.issue_code(user_id, Some(request.redirect_uri_raw.clone()));
                query.append_pair("code", &code);
            }
        }
        if let Some(state) = &request.state {
            query.append_pair("state", state);
        }
    }
    Ok(location.to_string())
}

fn error_page(error: &ConsentError) -> Response {
    let body = format!("<h1>Authorization error</h1>\n<p id=\"error\">{}</p>", escape_html(&error.0));
    (StatusCode::BAD_REQUEST, Html(page("Error (fake Polar)", &body))).into_response()
}

fn consent_page(request: &AuthorizeRequest, user_id: u64) -> String {
    let body = format!(
        r#"<h1>Polar Flow (fake)</h1>
<p id="account">Logged in as <b>{user_id}</b></p>
<p><b>{client}</b> would like to read your Polar data ({SCOPE_READ_ALL}).</p>
{forms}"#,
        client = escape_html(&request.client_id),
        forms =
            decision_forms(CONSENT_PATH, &request.hidden_fields(Some(user_id)), &request.hidden_fields(None), "Deny"),
    );
    page("Authorize (fake Polar)", &body)
}

async fn authorize_page(
    State(fake): State<Shared>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let shared = fake.lock();
    let Ok(Query(params)) = query else {
        return error_page(&ConsentError("The query string is malformed.".to_owned()));
    };
    let request = match AuthorizeRequest::parse(&params, &shared.client_id) {
        Ok(request) => request,
        Err(e) => return error_page(&e),
    };
    match request.login_hint {
        None => {
            let ids: Vec<String> = shared.people.keys().map(u64::to_string).collect();
            let accounts = shared.people.keys().zip(&ids).map(|(id, text)| (text.as_str(), request.href_as(*id)));
            Html(account_picker("Log in (fake Polar)", "Log in to Polar Flow", "data-user-id", accounts))
                .into_response()
        }
        Some(user) if !shared.people.contains_key(&user) => {
            error_page(&ConsentError(format!("No Polar account {user} on this fake.")))
        }
        Some(user) => Html(consent_page(&request, user)).into_response(),
    }
}

async fn consent(State(fake): State<Shared>, form: Result<Form<Vec<(String, String)>>, FormRejection>) -> Response {
    let mut shared = fake.lock();
    let Ok(Form(fields)) = form else {
        return error_page(&ConsentError("The consent form is malformed.".to_owned()));
    };
    let request = match AuthorizeRequest::parse(&fields, &shared.client_id) {
        Ok(request) => request,
        Err(e) => return error_page(&e),
    };
    let decision = match (first(&fields, "decision"), request.login_hint) {
        (Some("deny"), _) => Decision::Deny,
        (Some("approve"), Some(user_id)) => Decision::Approve { user_id },
        (Some("approve"), None) => return error_page(&ConsentError("No account was chosen.".to_owned())),
        _ => return error_page(&ConsentError("decision must be approve or deny.".to_owned())),
    };
    match decide(&mut shared, &request, decision) {
        Ok(location) => found(&location)
            .unwrap_or_else(|| error_page(&ConsentError("The redirect URL is not a valid header value.".to_owned()))),
        Err(e) => error_page(&e),
    }
}
