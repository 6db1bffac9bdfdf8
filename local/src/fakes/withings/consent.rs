//! Withings' consent page: the authorize request it checks, the sandbox account picker, the scope
//! checkboxes with approve and deny, and the decision that sends the browser back with a code
//! or an error.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use reqwest::Url;

use super::super::common::{account_picker, decision_forms, escape_html, first, found, hidden_inputs, http_url, page};
use super::state::{Person, Shared, WithingsState};
use super::wire::{ALL_SCOPES, AUTHORIZE_PATH, CONSENT_PATH};

/// The consent routes: the page and the form it posts.
pub(super) fn routes() -> Router<Shared> {
    Router::new().route(AUTHORIZE_PATH, get(authorize_page)).route(CONSENT_PATH, post(consent))
}

pub(super) struct AuthorizeRequest {
    client_id: String,
    redirect_uri: Url,
    redirect_uri_raw: String,
    /// As requested (comma-separated in `scope`).
    pub(super) scopes: Vec<String>,
    state: Option<String>,
    login_hint: Option<String>,
}

pub(super) enum Decision {
    Approve { user_id: String, granted: Vec<String> },
    Deny,
}

#[derive(Debug)]
pub(super) struct ConsentError(pub(super) String);

impl AuthorizeRequest {
    pub(super) fn parse(params: &[(String, String)], accepted_client_id: &str) -> Result<Self, ConsentError> {
        let client_id = first(params, "client_id").unwrap_or_default();
        if client_id.is_empty() {
            return Err(ConsentError("Missing client_id.".to_owned()));
        }
        if client_id != accepted_client_id {
            return Err(ConsentError("Invalid client_id. Check that your client_id is correct and valid.".to_owned()));
        }
        match first(params, "response_type") {
            Some("code") => {}
            None => return Err(ConsentError("Missing response_type.".to_owned())),
            Some(other) => return Err(ConsentError(format!("Unsupported response_type {other:?}."))),
        }
        let redirect_uri_raw = first(params, "redirect_uri").unwrap_or_default();
        if redirect_uri_raw.is_empty() {
            return Err(ConsentError("Missing redirect_uri parameter.".to_owned()));
        }
        let redirect_uri =
            http_url(redirect_uri_raw).ok_or_else(|| ConsentError("redirect_uri is not an http(s) URL.".to_owned()))?;
        let mut scopes: Vec<String> = Vec::new();
        for scope in first(params, "scope").unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !ALL_SCOPES.contains(&scope) {
                return Err(ConsentError(format!("Unknown scope {scope:?}.")));
            }
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        if scopes.is_empty() {
            return Err(ConsentError("Missing scope parameter.".to_owned()));
        }
        Ok(Self {
            client_id: client_id.to_owned(),
            redirect_uri,
            redirect_uri_raw: redirect_uri_raw.to_owned(),
            scopes,
            state: first(params, "state").map(str::to_owned),
            login_hint: first(params, "login_hint").filter(|h| !h.is_empty()).map(str::to_owned),
        })
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![
            ("response_type", "code".to_owned()),
            ("client_id", self.client_id.clone()),
            ("redirect_uri", self.redirect_uri_raw.clone()),
        ];
        params.push(("scope", self.scopes.join(",")));
        if let Some(state) = &self.state {
            params.push(("state", state.clone()));
        }
        params
    }

    /// The request again, as hidden form fields (the consent POST re-validates all of it).
    fn hidden_fields(&self, user_id: Option<&str>) -> String {
        let mut params = self.params();
        if let Some(user_id) = user_id {
            params.push(("login_hint", user_id.to_owned()));
        }
        hidden_inputs(params.iter().map(|(k, v)| (*k, v.as_str())))
    }

    /// This same request signed in as `user_id`: the account picker's links.
    fn href_as(&self, user_id: &str) -> String {
        let mut params = self.params();
        params.push(("login_hint", user_id.to_owned()));
        let query: String = Url::parse_with_params("http://fake.invalid/", &params)
            .ok()
            .and_then(|u| u.query().map(str::to_owned))
            .unwrap_or_default();
        format!("{AUTHORIZE_PATH}?{query}")
    }
}

/// The consent decision, shared by the HTML form and the test helpers: the redirect Location,
/// `redirect_uri?code=..&state=..` or `redirect_uri?error=access_denied&state=..`.
pub(super) fn decide(
    state: &mut WithingsState,
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
            Decision::Approve { user_id, granted } => {
                if !state.people.contains_key(&user_id) {
                    return Err(ConsentError(format!(
                        "No Withings account {user_id:?} on this fake: add_person first."
                    )));
                }
                // The person can only untick what was asked for, never add to it.
                let scopes: Vec<String> = request.scopes.iter().filter(|s| granted.contains(s)).cloned().collect();
                let code = state.issue_code(&user_id, scopes, &request.redirect_uri_raw);
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
    (StatusCode::BAD_REQUEST, Html(page("Error (fake Withings)", &body))).into_response()
}

fn picker_page(request: &AuthorizeRequest, people: &BTreeMap<String, Person>) -> String {
    let accounts = people.keys().map(|id| (id.as_str(), request.href_as(id)));
    account_picker("Log in (fake Withings)", "Log in to Withings", "data-user-id", accounts)
}

fn consent_page(request: &AuthorizeRequest, user_id: &str) -> String {
    let hidden = request.hidden_fields(Some(user_id));
    // Every scope Withings has is shown; those requested are ticked and can be unticked.
    let checkboxes: Vec<String> = ALL_SCOPES
        .iter()
        .enumerate()
        .map(|(i, scope)| {
            let requested = request.scopes.iter().any(|s| s == scope);
            format!(
                r#"<label><input type="checkbox" id="scope-{i}" name="granted_scope" value="{scope}"{}> {scope}</label><br>"#,
                if requested { " checked" } else { " disabled" }
            )
        })
        .collect();
    let approve = format!("{hidden}\n<fieldset id=\"scopes\">\n{}\n</fieldset>", checkboxes.join("\n"));
    let body = format!(
        r#"<h1>Withings (fake)</h1>
<p id="account">Logged in as <b>{user}</b></p>
<p><b>{client}</b> would like to access your Withings data:</p>
{forms}"#,
        user = escape_html(user_id),
        client = escape_html(&request.client_id),
        forms = decision_forms(CONSENT_PATH, &approve, &request.hidden_fields(None), "Deny"),
    );
    page("Authorize (fake Withings)", &body)
}

async fn authorize_page(
    State(fake): State<Shared>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    fake.count("authorize");
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
            error_page(&ConsentError(format!("No Withings account {user:?} on this fake.")))
        }
        Some(user) => Html(consent_page(&request, user)).into_response(),
    }
}

async fn consent(State(fake): State<Shared>, form: Result<Form<Vec<(String, String)>>, FormRejection>) -> Response {
    fake.count("consent");
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
            Some(user_id) => {
                let granted = fields.iter().filter(|(k, _)| k == "granted_scope").map(|(_, v)| v.clone()).collect();
                Decision::Approve { user_id, granted }
            }
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
