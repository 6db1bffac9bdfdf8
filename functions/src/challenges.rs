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
use crate::http::{self, ApiError, Params, Route, caller, caller_with_role, empty, json, json_body, query};
use jiff::Timestamp;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use stepsync::domain::{
    Challenge, ChallengeId, ChallengeState, LeaderboardEntry, LocalDate, ParseError, Participant, UserId,
};
use stepsync::services::challenges::{CREATE, NewChallenge, require_admin};

const DEFAULT_GRACE_DAYS: u32 = 3;
const DEFAULT_TIME_ZONE: &str = "UTC";
const DEFAULT_PAGE_LIMIT: usize = 50;
const MAX_PAGE_LIMIT: usize = 200;

#[derive(Debug, Clone, Copy)]
enum Op {
    Create,
    List,
    Details,
    Join,
    Leave,
    Leaderboard,
}

const TABLE: [Route<Op>; 6] = [
    Route { method: "POST", path: "/v1/challenges", op: Op::Create },
    Route { method: "GET", path: "/v1/challenges", op: Op::List },
    Route { method: "GET", path: "/v1/challenges/{id}", op: Op::Details },
    Route { method: "POST", path: "/v1/challenges/{id}/join", op: Op::Join },
    Route { method: "DELETE", path: "/v1/challenges/{id}/join", op: Op::Leave },
    Route { method: "GET", path: "/v1/challenges/{id}/leaderboard", op: Op::Leaderboard },
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

fn page_limit(raw: Option<&str>) -> Result<usize, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else { return Ok(DEFAULT_PAGE_LIMIT) };
    raw.parse::<usize>().ok().filter(|n| (1..=MAX_PAGE_LIMIT).contains(n)).ok_or_else(|| ApiError::Invalid {
        field: "limit",
        message: format!("must be a whole number from 1 to {MAX_PAGE_LIMIT}"),
    })
}

async fn leaderboard(app: &App, req: &Request, params: &Params) -> Result<Response<Body>, ApiError> {
    let user = caller(req)?;
    let id = challenge_id(params)?;
    let limit = page_limit(query(req, "limit"))?;
    let cursor = query(req, "page_token").filter(|t| !t.is_empty());
    let board = app.services.standings().leaderboard(&id, &user, limit, cursor).await?;
    let entries: Vec<EntryView> = board.page.entries.iter().map(EntryView::from).collect();
    let me = board.me.as_ref().map(EntryView::from);
    Ok(json(200, &serde_json::json!({ "entries": entries, "me": me, "next_page_token": board.page.next })))
}
