//! `challenges`: create (admin), list, details, join/leave and the paged leaderboard.
//!
//! - `POST /v1/challenges` (admin claim): creates a challenge; 201 with its settings.
//! - `GET /v1/challenges`: the challenges a person can still see and join (not final).
//! - `GET /v1/challenges/{id}`: one challenge, its instants, and whether the caller joined.
//! - `POST /v1/challenges/{id}/join` / `DELETE /v1/challenges/{id}/join`: the caller joins
//!   (counting the days already in the window) or leaves; a final challenge refuses both.
//! - `GET /v1/challenges/{id}/leaderboard?page_token=&limit=`: one page of competition ranks
//!   and the caller's own entry.
//!
//! Every route acts as the caller the JWT authorizer verified, never a user named in the path
//! or the body.

use crate::app::App;
use crate::http::{ApiError, caller, caller_with_role, empty, json, json_body, query, segments};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use lambda_http::{Body, Request, Response};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use stepsync::challenges::{ChallengeError, Challenges, rank};
use stepsync::domain::{
    Challenge, ChallengeId, ChallengeState, LeaderboardEntry, LocalDate, MAX_GRACE_DAYS, ParseError, Participant,
    UserId, local_today,
};
use stepsync::ports::{ChallengeStore, StoreError};

const DEFAULT_GRACE_DAYS: u32 = 3;
const DEFAULT_TIME_ZONE: &str = "UTC";
const DEFAULT_PAGE_LIMIT: usize = 50;
const MAX_PAGE_LIMIT: usize = 200;

/// How far before today (UTC) the list looks for challenge ends. A challenge stays open for
/// up to `MAX_GRACE_DAYS` after its last day, and its zone may be a day off UTC.
const LIST_LOOKBACK_DAYS: i32 = MAX_GRACE_DAYS as i32 + 2;

/// The routes this handler serves (method, HttpApi path); `template.yaml` must list the same.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/challenges"),
    ("GET", "/v1/challenges"),
    ("GET", "/v1/challenges/{id}"),
    ("POST", "/v1/challenges/{id}/join"),
    ("DELETE", "/v1/challenges/{id}/join"),
    ("GET", "/v1/challenges/{id}/leaderboard"),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let segments = segments(&req);
    let path: Vec<&str> = segments.iter().map(String::as_str).collect();
    let result = match (req.method().as_str(), path.as_slice()) {
        ("POST", ["v1", "challenges"]) => create(app, &req).await,
        ("GET", ["v1", "challenges"]) => list(app, &req).await,
        ("GET", ["v1", "challenges", id]) => details(app, &req, id).await,
        ("POST", ["v1", "challenges", id, "join"]) => join(app, &req, id).await,
        ("DELETE", ["v1", "challenges", id, "join"]) => leave(app, &req, id).await,
        ("GET", ["v1", "challenges", id, "leaderboard"]) => leaderboard(app, &req, id).await,
        _ => Err(ApiError::NotFound("route".into())),
    };
    result.unwrap_or_else(ApiError::into_response)
}

impl From<ChallengeError> for ApiError {
    fn from(e: ChallengeError) -> Self {
        match e {
            ChallengeError::NotFound => ApiError::NotFound("challenge".into()),
            ChallengeError::Final => ApiError::Conflict(e.to_string()),
            ChallengeError::NotParticipant => ApiError::NotFound("your place in this challenge".into()),
            ChallengeError::BadCursor => ApiError::Invalid {
                field: "page_token",
                message: "is not valid; start again from the first page".into(),
            },
            ChallengeError::Store(e) => store_error(e),
        }
    }
}

/// Throttling and lost races may pass on a retry, so the client hears 503; the rest is ours.
fn store_error(e: StoreError) -> ApiError {
    if e.is_retryable() {
        tracing::warn!(error = %e, "store busy");
        ApiError::Unavailable("the service is busy; try again in a moment".into())
    } else {
        ApiError::internal(e)
    }
}

fn service(app: &App) -> Challenges<'_> {
    Challenges { steps: app.store.as_ref(), store: app.store.as_ref() }
}

/// The `{id}` segment; an id that cannot exist is as unknown as one that does not.
fn challenge_id(raw: &str) -> Result<ChallengeId, ApiError> {
    ChallengeId::parse(raw).map_err(|_| ApiError::NotFound("challenge".into()))
}

async fn load(app: &App, id: &ChallengeId) -> Result<Challenge, ApiError> {
    app.store.get_challenge(id).await.map_err(store_error)?.ok_or_else(|| ApiError::NotFound("challenge".into()))
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
        Self { challenge_id: &p.challenge, user_id: &p.user, steps: p.totals.total, days: p.totals.days }
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
struct NewChallenge {
    name: String,
    start_date: String,
    end_date: String,
    grace_days: Option<u32>,
    time_zone: Option<String>,
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

fn new_challenge_id() -> Result<ChallengeId, ApiError> {
    let mut raw = [0u8; 12];
    rand::rng().fill_bytes(&mut raw);
    ChallengeId::parse(&URL_SAFE_NO_PAD.encode(raw)).map_err(ApiError::internal)
}

async fn create(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let who = caller_with_role(req)?;
    if !who.admin {
        return Err(ApiError::Forbidden("only administrators create challenges".into()));
    }
    let body: NewChallenge = json_body(req)?;
    let start = body_date("start_date", &body.start_date)?;
    let end = body_date("end_date", &body.end_date)?;
    let challenge = Challenge::new(
        new_challenge_id()?,
        &body.name,
        start,
        end,
        body.time_zone.as_deref().unwrap_or(DEFAULT_TIME_ZONE),
        body.grace_days.unwrap_or(DEFAULT_GRACE_DAYS),
    )
    .map_err(invalid_body_field)?;
    // A fresh random id never collides in practice; a collision is refused, never overwritten.
    app.store.create_challenge(&challenge).await.map_err(store_error)?;
    tracing::info!(admin = %who.user, challenge = %challenge.id, "challenge created");
    Ok(json(201, &Settings::of(&challenge, app.engine.clock.now())))
}

async fn list(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    caller(req)?;
    let now = app.engine.clock.now();
    let ending_from = local_today(now, &TimeZone::UTC).add_days(-LIST_LOOKBACK_DAYS);
    let challenges = app.store.list_challenges(ending_from).await.map_err(store_error)?;
    let open: Vec<Summary> =
        challenges.iter().filter(|c| c.state(now) != ChallengeState::Final).map(|c| Summary::of(c, now)).collect();
    Ok(json(200, &serde_json::json!({ "challenges": open })))
}

async fn details(app: &App, req: &Request, raw: &str) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let id = challenge_id(raw)?;
    let challenge = load(app, &id).await?;
    let joined = app.store.participant(&id, &user).await.map_err(store_error)?.is_some();
    let details = Details {
        settings: Settings::of(&challenge, app.engine.clock.now()),
        ends_at: challenge.ends_at(),
        closes_at: challenge.closes_at(),
        joined,
    };
    Ok(json(200, &details))
}

async fn join(app: &App, req: &Request, raw: &str) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let id = challenge_id(raw)?;
    let now = app.engine.clock.now();
    let participant = service(app).join(&id, &user, now).await?;
    tracing::info!(user = %user, challenge = %id, "joined");
    Ok(json(200, &ParticipantView::from(&participant)))
}

async fn leave(app: &App, req: &Request, raw: &str) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let id = challenge_id(raw)?;
    service(app).leave(&id, &user, app.engine.clock.now()).await?;
    tracing::info!(user = %user, challenge = %id, "left");
    Ok(empty(204))
}

fn page_limit(raw: Option<&str>) -> Result<usize, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else { return Ok(DEFAULT_PAGE_LIMIT) };
    raw.parse::<usize>().ok().filter(|n| (1..=MAX_PAGE_LIMIT).contains(n)).ok_or_else(|| ApiError::Invalid {
        field: "limit",
        message: format!("must be a whole number from 1 to {MAX_PAGE_LIMIT}"),
    })
}

async fn leaderboard(app: &App, req: &Request, raw: &str) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let id = challenge_id(raw)?;
    let limit = page_limit(query(req, "limit"))?;
    let cursor = query(req, "page_token").filter(|t| !t.is_empty());
    load(app, &id).await?;
    // One read serves both the page and the caller's own entry, so they always agree.
    let participants = app.store.participants(&id).await.map_err(store_error)?;
    let page = rank(participants.clone(), limit, cursor)?;
    let everyone = rank(participants, usize::MAX, None)?;
    let me = everyone.entries.iter().find(|e| e.user == user).map(EntryView::from);
    let entries: Vec<EntryView> = page.entries.iter().map(EntryView::from).collect();
    Ok(json(200, &serde_json::json!({ "entries": entries, "me": me, "next_page_token": page.next })))
}
