//! `challenges`: create (admin), list, details, join/leave and the paged leaderboard.
//!
//! - `POST /v1/challenges` (admin claim): creates a challenge; 201 with its settings.
//! - `GET /v1/challenges`: the challenges a person can still see and join (not final).
//! - `GET /v1/challenges/{id}`: one challenge, its instants, and whether the caller joined.
//! - `POST /v1/challenges/{id}/join` / `DELETE /v1/challenges/{id}/join`: the caller joins
//!   (counting the days already in the window) or leaves; a final challenge refuses both.
//! - `GET /v1/challenges/{id}/leaderboard?page_token=&limit=`: one page of competition ranks
//!   and the caller's own entry.
//! - `GET /v1/challenges/{id}/sync-health?cursor=&limit=` (admin claim): who is not syncing
//!   and why, counted, with one page of the participants who need an action.
//! - `GET /v1/challenges/{id}/export?cursor=&limit=` (admin claim): the results as CSV, a page
//!   of at most `MAX_EXPORT_ROWS` rows, the next page named in a `Link` header.
//! - `POST /v1/challenges/{id}/reminders` (admin claim): "send reminders now": each
//!   participant who must act is reminded (at most once per person, source and diagnosis per
//!   period) and the organizers get a digest, through the configured delivery target.
//!
//! Every route acts as the caller the JWT authorizer verified, never a user named in the path
//! or the body.

use crate::app::App;
use crate::http::{self, ApiError, Params, Route, caller, caller_with_role, empty, json, json_body, query};
use jiff::Timestamp;
use lambda_http::{Body, Request, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use stepsync::domain::{
    Challenge, ChallengeId, ChallengeState, LeaderboardEntry, LocalDate, ParseError, Participant, UserId,
};
use stepsync::services::ExportPage;
use stepsync::services::challenges::{CREATE, NewChallenge, require_admin};
use stepsync::services::organizer::{EXPORT, MAX_EXPORT_ROWS, SYNC_HEALTH};
use stepsync::services::reminding::REMIND;

const DEFAULT_GRACE_DAYS: u32 = 3;
const DEFAULT_TIME_ZONE: &str = "UTC";
const DEFAULT_PAGE_LIMIT: usize = 50;
const MAX_PAGE_LIMIT: usize = 200;
/// People needing an action on one page of the sync health (each page computes it all anew).
const DEFAULT_NEEDING_LIMIT: usize = 100;
const MAX_NEEDING_LIMIT: usize = 1000;
/// What a challenge id keeps unescaped in the export's next link (generated ids are base64url).
const PATH_SAFE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

#[derive(Debug, Clone, Copy)]
enum Op {
    Create,
    List,
    Details,
    Join,
    Leave,
    Leaderboard,
    SyncHealth,
    Export,
    Reminders,
}

const TABLE: [Route<Op>; 9] = [
    Route { method: "POST", path: "/v1/challenges", op: Op::Create },
    Route { method: "GET", path: "/v1/challenges", op: Op::List },
    Route { method: "GET", path: "/v1/challenges/{id}", op: Op::Details },
    Route { method: "POST", path: "/v1/challenges/{id}/join", op: Op::Join },
    Route { method: "DELETE", path: "/v1/challenges/{id}/join", op: Op::Leave },
    Route { method: "GET", path: "/v1/challenges/{id}/leaderboard", op: Op::Leaderboard },
    Route { method: "GET", path: "/v1/challenges/{id}/sync-health", op: Op::SyncHealth },
    Route { method: "GET", path: "/v1/challenges/{id}/export", op: Op::Export },
    Route { method: "POST", path: "/v1/challenges/{id}/reminders", op: Op::Reminders },
];

/// The routes this handler serves (method, HttpApi path); `template.yaml` must list the same.
pub const ROUTES: &[(&str, &str)] = &http::paths(&TABLE);

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let result = match http::route(&TABLE, &req) {
        Ok((Op::Create, _)) => create(app, &req).await,
        Ok((Op::List, _)) => list(app, &req).await,
        Ok((Op::Details, params)) => details(app, &req, &params).await,
        Ok((Op::Join, params)) => join(app, &req, &params).await,
        Ok((Op::Leave, params)) => leave(app, &req, &params).await,
        Ok((Op::Leaderboard, params)) => leaderboard(app, &req, &params).await,
        Ok((Op::SyncHealth, params)) => sync_health(app, &req, &params).await,
        Ok((Op::Export, params)) => export(app, &req, &params).await,
        Ok((Op::Reminders, params)) => reminders(app, &req, &params).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(ApiError::into_response)
}

/// The `{id}` segment; an id that cannot exist is as unknown as one that does not.
fn challenge_id(params: &Params) -> Result<ChallengeId, ApiError> {
    ChallengeId::parse(params.get("id").unwrap_or_default()).map_err(|_| ApiError::NotFound("challenge".into()))
}

#[derive(Serialize)]
struct Summary<'a> {
    id: &'a ChallengeId,
    name: &'a str,
    start_date: LocalDate,
    end_date: LocalDate,
    state: ChallengeState,
}

impl<'a> Summary<'a> {
    fn of(c: &'a Challenge, now: Timestamp) -> Self {
        Self { id: &c.id, name: &c.name, start_date: c.start, end_date: c.end, state: c.state(now) }
    }
}

#[derive(Serialize)]
struct Settings<'a> {
    #[serde(flatten)]
    summary: Summary<'a>,
    grace_days: u32,
    time_zone: &'a str,
}

impl<'a> Settings<'a> {
    fn of(c: &'a Challenge, now: Timestamp) -> Self {
        Self { summary: Summary::of(c, now), grace_days: c.grace_days, time_zone: &c.time_zone }
    }
}

#[derive(Serialize)]
struct Details<'a> {
    #[serde(flatten)]
    settings: Settings<'a>,
    ends_at: Timestamp,
    closes_at: Timestamp,
    joined: bool,
}

#[derive(Serialize)]
struct ParticipantView<'a> {
    challenge_id: &'a ChallengeId,
    user_id: &'a UserId,
    steps: u64,
    days: u32,
}

impl<'a> From<&'a Participant> for ParticipantView<'a> {
    fn from(p: &'a Participant) -> Self {
        Self { challenge_id: &p.challenge, user_id: &p.user, steps: p.totals().total, days: p.totals().days }
    }
}

#[derive(Serialize)]
struct EntryView<'a> {
    user_id: &'a UserId,
    rank: u32,
    steps: u64,
}

impl<'a> From<&'a LeaderboardEntry> for EntryView<'a> {
    fn from(e: &'a LeaderboardEntry) -> Self {
        Self { user_id: &e.user, rank: e.rank, steps: e.total }
    }
}

#[derive(Deserialize)]
struct NewChallengeBody {
    name: String,
    start_date: String,
    end_date: String,
    /// A whole number, `3` or `3.0` (`http::whole_number`); `null` is the default.
    grace_days: Option<serde_json::Value>,
    time_zone: Option<String>,
}

impl NewChallengeBody {
    fn parse(self) -> Result<NewChallenge, ApiError> {
        let grace_days = match self.grace_days {
            None => DEFAULT_GRACE_DAYS,
            Some(raw) => http::whole_number(&raw)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ApiError::BadRequest("grace_days must be a whole number of days".into()))?,
        };
        Ok(NewChallenge {
            start: body_date("start_date", &self.start_date)?,
            end: body_date("end_date", &self.end_date)?,
            name: self.name,
            time_zone: self.time_zone.unwrap_or_else(|| DEFAULT_TIME_ZONE.to_owned()),
            grace_days,
        })
    }
}

/// Names a refused value by the body field the person sent, not the domain's name for it.
fn invalid_body_field(e: ParseError) -> ApiError {
    let field = match e.field {
        "start" => "start_date",
        "end" => "end_date",
        other => other,
    };
    ApiError::Invalid { field, message: e.message }
}

fn body_date(field: &'static str, raw: &str) -> Result<LocalDate, ApiError> {
    LocalDate::parse(raw).map_err(|e| ApiError::Invalid { field, message: e.message })
}

async fn create(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let who = caller_with_role(req)?;
    // Refused before the body is read: a non-administrator learns nothing from the 400s.
    require_admin(who.admin, CREATE)?;
    let body: NewChallenge = json_body::<NewChallengeBody>(req)?.parse()?;
    let challenge = app.services.challenges().create(who.admin, body).await.map_err(|e| match e {
        stepsync::services::ServiceError::Invalid { field, message } => {
            invalid_body_field(ParseError { field, message })
        }
        other => other.into(),
    })?;
    tracing::info!(admin = %who.user, challenge = %challenge.id, "challenge created");
    Ok(json(201, &Settings::of(&challenge, app.services.ports.clock.now())))
}

async fn list(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    caller(req)?;
    let now = app.services.ports.clock.now();
    let challenges = app.services.challenges().list_open(now).await?;
    let open: Vec<Summary> = challenges.iter().map(|c| Summary::of(c, now)).collect();
    Ok(json(200, &serde_json::json!({ "challenges": open })))
}

async fn details(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let id = challenge_id(params)?;
    let (challenge, joined) = app.services.challenges().details(&id, &user).await?;
    let details = Details {
        settings: Settings::of(&challenge, app.services.ports.clock.now()),
        ends_at: challenge.ends_at(),
        closes_at: challenge.closes_at(),
        joined,
    };
    Ok(json(200, &details))
}

async fn join(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let id = challenge_id(params)?;
    let participant = app.services.challenges().join(&id, &user, app.services.ports.clock.now()).await?;
    tracing::info!(user = %user, challenge = %id, "joined");
    Ok(json(200, &ParticipantView::from(&participant)))
}

async fn leave(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let id = challenge_id(params)?;
    app.services.challenges().leave(&id, &user, app.services.ports.clock.now()).await?;
    tracing::info!(user = %user, challenge = %id, "left");
    Ok(empty(204))
}

/// The `limit` parameter: `default` when absent or empty, else a whole number from 1 to `max`.
fn page_limit(raw: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else { return Ok(default) };
    raw.parse::<usize>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| ApiError::Invalid { field: "limit", message: format!("must be a whole number from 1 to {max}") })
}

async fn leaderboard(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let id = challenge_id(params)?;
    let limit = page_limit(query(req, "limit"), DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT)?;
    let cursor = query(req, "page_token").filter(|t| !t.is_empty());
    let board = app.services.standings().leaderboard(&id, &user, limit, cursor).await?;
    let entries: Vec<EntryView> = board.page.entries.iter().map(EntryView::from).collect();
    let me = board.me.as_ref().map(EntryView::from);
    Ok(json(200, &serde_json::json!({ "entries": entries, "me": me, "next_page_token": board.page.next })))
}

async fn sync_health(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let who = caller_with_role(req)?;
    // Refused before the id is read: a non-administrator learns nothing, not even whether
    // the challenge exists.
    require_admin(who.admin, SYNC_HEALTH)?;
    let id = challenge_id(params)?;
    let limit = page_limit(query(req, "limit"), DEFAULT_NEEDING_LIMIT, MAX_NEEDING_LIMIT)?;
    let cursor = query(req, "cursor").filter(|c| !c.is_empty());
    let now = app.services.ports.clock.now();
    let health = app.services.organizer().sync_health(who.admin, &id, now, limit, cursor).await?;
    tracing::info!(
        admin = %who.user,
        challenge = %id,
        participants = health.participants,
        needing_action = health.needing_action_total,
        "sync health read"
    );
    Ok(json(200, &health))
}

/// 200 with what was sent (`off: true` when no delivery target is configured: nothing sent).
async fn reminders(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let who = caller_with_role(req)?;
    require_admin(who.admin, REMIND)?;
    let id = challenge_id(params)?;
    let now = app.services.ports.clock.now();
    let done = app.services.reminding().remind(&id, now).await?;
    tracing::info!(admin = %who.user, challenge = %id, sent = done.people.sent, off = done.people.off, "reminders asked for");
    Ok(json(200, &done))
}

async fn export(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let who = caller_with_role(req)?;
    require_admin(who.admin, EXPORT)?;
    let id = challenge_id(params)?;
    let limit = page_limit(query(req, "limit"), MAX_EXPORT_ROWS, MAX_EXPORT_ROWS)?;
    let cursor = query(req, "cursor").filter(|c| !c.is_empty());
    let now = app.services.ports.clock.now();
    let page = app.services.organizer().export(who.admin, &id, now, limit, cursor).await?;
    tracing::info!(admin = %who.user, challenge = %id, rows = page.rows.len(), "results exported");
    Ok(csv_answer(&page, limit))
}

/// The page as a CSV download; the next page, if any, in a `Link` header (RFC 8288).
fn csv_answer(page: &ExportPage, limit: usize) -> Response<Body> {
    let mut answer = Response::builder()
        .status(200)
        .header("content-type", "text/csv; charset=utf-8")
        .header("content-disposition", format!("attachment; filename=\"{}\"", page.file_name()))
        .header("cache-control", http::NO_STORE.clone());
    if let Some(next) = &page.next {
        let id = utf8_percent_encode(page.challenge.as_str(), PATH_SAFE);
        answer =
            answer.header("link", format!("</v1/challenges/{id}/export?limit={limit}&cursor={next}>; rel=\"next\""));
    }
    answer.body(Body::Text(page.csv())).unwrap_or_default()
}
