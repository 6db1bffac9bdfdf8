//! Misfit's consent page: the authorize request it checks, the account picker, the allow and
//! deny forms, and the decision that sends the browser back with a code or an error.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use reqwest::Url;

use super::super::common::{account_picker, decision_forms, escape_html, first, found, hidden_inputs, http_url, page};
use super::state::{MisfitState, Person, Shared};
use super::wire::{AUTHORIZE_PATH, CONSENT_PATH};

/// The consent routes: the page and the form it posts.
pub(super) fn routes() -> Router<Shared> {
    Router::new().route(AUTHORIZE_PATH, get(authorize_page)).route(CONSENT_PATH, post(consent))
}

pub(super) struct AuthorizeRequest {
    client_id: String,
    redirect_uri: Url,
    redirect_uri_raw: String,
    /// Comma-separated as sent; Misfit's scopes do not gate the fake's endpoints.
    scope: String,
    state: Option<String>,
    login_hint: Option<String>,
}

pub(super) enum Decision {
    Approve { user_id: String },
    Deny,
}

#[derive(Debug)]
pub(super) struct ConsentError(pub(super) String);

impl AuthorizeRequest {
    pub(super) fn parse(params: &[(String, String)], accepted_client_id: &str) -> Result<Self, ConsentError> {
        let client_id = first(params, "client_id").unwrap_or_default();
        if client_id.is_empty() {
            return Err(ConsentError("Missing parameter: client_id".to_owned()));
        }
        if client_id != accepted_client_id {
            return Err(ConsentError(format!("Unknown client_id {client_id:?}.")));
        }
        match first(params, "response_type") {
            Some("code") => {}
            None => return Err(ConsentError("Missing parameter: response_type".to_owned())),
            Some(other) => return Err(ConsentError(format!("Unsupported response_type {other:?}."))),
        }
        let redirect_uri_raw = first(params, "redirect_uri").unwrap_or_default();
        let redirect_uri = http_url(redirect_uri_raw)
            .ok_or_else(|| ConsentError("redirect_uri is missing or not an http(s) URL.".to_owned()))?;
        Ok(Self {
            client_id: client_id.to_owned(),
            redirect_uri,
            redirect_uri_raw: redirect_uri_raw.to_owned(),
            scope: first(params, "scope").unwrap_or_default().to_owned(),
            state: first(params, "state").map(str::to_owned),
            login_hint: first(params, "login_hint").filter(|h| !h.is_empty()).map(str::to_owned),
        })
    }

    fn params(&self) -> Vec<(&'static str, &str)> {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", self.redirect_uri_raw.as_str()),
            ("scope", self.scope.as_str()),
        ];
        if let Some(state) = &self.state {
            params.push(("state", state));
        }
        params
    }

    /// The request again, as hidden form fields (the consent POST re-validates all of it).
    fn hidden_fields(&self, user_id: Option<&str>) -> String {
        let mut params = self.params();
        if let Some(user_id) = user_id {
            params.push(("login_hint", user_id));
        }
        hidden_inputs(params)
    }

    /// This same request signed in as `user_id`: the person picker's links.
    fn href_as(&self, user_id: &str) -> String {
        let mut params = self.params();
        params.push(("login_hint", user_id));
        let query: String = Url::parse_with_params("http://fake.invalid/", &params)
            .ok()
            .and_then(|u| u.query().map(str::to_owned))
            .unwrap_or_default();
        format!("{AUTHORIZE_PATH}?{query}")
    }
}

/// The consent decision, shared by the HTML form and the test helpers: the redirect Location.
pub(super) fn decide(
    state: &mut MisfitState,
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
                    return Err(ConsentError(format!("No Misfit user {user_id:?} on this fake: add_person first.")));
                }
                let code = state.issue_code(user_id, &request.client_id, &request.redirect_uri_raw);
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
    (StatusCode::BAD_REQUEST, Html(page("Error (fake Misfit)", &body))).into_response()
}

fn picker_page(request: &AuthorizeRequest, people: &BTreeMap<String, Person>) -> String {
    let accounts = people.keys().map(|id| (id.as_str(), request.href_as(id)));
    account_picker("Log in (fake Misfit)", "Log in to Misfit", "data-user-id", accounts)
}

fn consent_page(request: &AuthorizeRequest, user_id: &str) -> String {
    let approve = request.hidden_fields(Some(user_id));
    let deny = request.hidden_fields(None);
    let body = format!(
        r#"<h1>Misfit (fake)</h1>
<p id="account">Logged in as <b>{user}</b></p>
<p><b>{client}</b> would like to access: <span id="scope">{scope}</span></p>
{forms}"#,
        user = escape_html(user_id),
        client = escape_html(&request.client_id),
        scope = escape_html(&request.scope),
        forms = decision_forms(CONSENT_PATH, &approve, &deny, "Deny"),
    );
    page("Authorize (fake Misfit)", &body)
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
    match &request.login_hint {
        None => Html(picker_page(&request, &shared.people)).into_response(),
        Some(user) if !shared.people.contains_key(user) => {
            error_page(&ConsentError(format!("No Misfit user {user:?} on this fake.")))
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
    let decision = match first(&fields, "decision") {
        Some("deny") => Decision::Deny,
        Some("approve") => match request.login_hint.clone() {
            Some(user_id) => Decision::Approve { user_id },
            None => return error_page(&ConsentError("No account was chosen.".to_owned())),
        },
        _ => return error_page(&ConsentError("decision must be approve or deny.".to_owned())),
    };
    match decide(&mut shared, &request, decision) {
        Ok(location) => found(&location)
            .unwrap_or_else(|| error_page(&ConsentError("The redirect URL is not a valid header value.".to_owned()))),
        Err(e) => error_page(&e),
    }
}
