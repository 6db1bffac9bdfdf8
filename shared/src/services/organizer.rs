//! The organizer's view of a challenge (administrators): who is not syncing and why (sync
//! health), and the results as CSV (export). Everything is read from the challenge's
//! participant items and the items those people own (connections, profile, recent days), in
//! batches of known keys: the cost grows with the challenge, never with the table.

use super::ServiceError;
use super::challenges::{ChallengeError, rank, require_admin};
use super::status::{Seeing, Seen, recent_days};
use crate::diagnosis::{Action, no_source};
use crate::domain::{
    Challenge, ChallengeId, ChallengeState, Connection, ConnectionStatus, LocalDate, Participant, Provider, UserId,
    local_today,
};
use crate::ports::{ChallengeStore, ConnectionStore, StepStore, StoreError, UserDays};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// People whose items one read asks for: their connections (9 keys each) and their profile and
/// recent days (16 keys each), in `BatchGetItem`s of 100 keys.
const PEOPLE_PER_READ: usize = 100;
/// Reads of `PEOPLE_PER_READ` people in flight at once (each sends two requests at a time).
const READS_IN_FLIGHT: usize = 4;
/// The most rows one page of the export holds. A row is at most 256 bytes (a 10-digit rank,
/// a 128-character user id, a 20-digit total, every source's id), so a page stays under 2.6 MB,
/// far inside the 6 MB a Lambda may answer API Gateway with, even written out as JSON.
pub const MAX_EXPORT_ROWS: usize = 10_000;
/// The export's header row; its columns never change.
pub const CSV_HEADER: &str = "rank,user,total_steps,days_with_data,sources";
/// What `require_admin` tells someone else who asks.
pub const SYNC_HEALTH: &str = "read a challenge's sync health";
pub const EXPORT: &str = "export a challenge's results";

#[derive(Debug, thiserror::Error)]
pub enum OrganizerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("challenge not found")]
    NotFound,
    /// A cursor this list never gave (or one mangled on the way back).
    #[error("the cursor is not valid")]
    BadCursor,
}

impl From<OrganizerError> for ServiceError {
    fn from(e: OrganizerError) -> Self {
        match e {
            OrganizerError::NotFound => ServiceError::NotFound("challenge".into()),
            OrganizerError::BadCursor => ServiceError::Invalid {
                field: "cursor",
                message: "is not one this list gave; start again from the first page".into(),
            },
            OrganizerError::Store(e) => e.into(),
        }
    }
}

/// A participant whose steps do not sync by themselves, and what would fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NeedsAction {
    #[serde(rename = "user_id")]
    pub user: UserId,
    /// The source that represents them (`representative`); `None` when they have none.
    pub provider: Option<Provider>,
    /// The diagnosis code (`token_revoked`, `no_source`, ...).
    pub code: &'static str,
    /// What the person should do; `wait` asks nothing of them (a source that is down, a
    /// subscription we are renewing), and a reminder should skip it.
    pub action: Action,
    /// Since when the condition is known (`Diagnosis::since`; `no_source`: since joining).
    pub since: Timestamp,
    /// The diagnosis's sentence for the person (what a reminder tells them); the organizer's
    /// answer carries the code and action instead.
    #[serde(skip)]
    pub message: String,
}

/// How many participants have steps stored for a day, and their share of everyone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Share {
    pub participants: u32,
    /// `participants` over all participants, to 4 decimals; 0 for a challenge without any.
    pub share: f64,
}

impl Share {
    fn of(count: u32, all: u32) -> Self {
        let share = if all == 0 { 0.0 } else { (f64::from(count) / f64::from(all) * 10_000.0).round() / 10_000.0 };
        Self { participants: count, share }
    }
}

/// Participants with steps for their own yesterday and today.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DataShares {
    pub yesterday: Share,
    pub today: Share,
}

/// A challenge's sync health, and one page of the participants who need an action.
#[derive(Debug, Clone, Serialize)]
pub struct SyncHealth {
    pub challenge_id: ChallengeId,
    /// When the figures were computed.
    pub as_of: Timestamp,
    pub participants: u32,
    /// Participants by the diagnosis that represents them; codes with none are left out.
    pub by_code: BTreeMap<&'static str, u32>,
    /// Participants by that diagnosis' action; actions with none are left out.
    pub by_action: BTreeMap<Action, u32>,
    pub with_data: DataShares,
    /// Everyone whose action is not `none`, on every page.
    pub needing_action_total: u32,
    /// This page of them, who has needed it longest first (then by user id).
    pub needing_action: Vec<NeedsAction>,
    /// The cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// One participant's line of the results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    /// The leaderboard's competition rank.
    pub rank: u32,
    pub user: UserId,
    pub total: u64,
    /// Days with steps of the counted source (the leaderboard's `days`).
    pub days: u32,
    /// Every source with steps in the window, by id.
    pub sources: Vec<Provider>,
}

/// One page of a challenge's results, in leaderboard order.
#[derive(Debug, Clone)]
pub struct ExportPage {
    pub challenge: ChallengeId,
    /// The challenge is final: these numbers never change again.
    pub final_results: bool,
    pub as_of: Timestamp,
    pub rows: Vec<ExportRow>,
    /// The cursor of the next page; `None` on the last.
    pub next: Option<String>,
}

impl ExportPage {
    /// The page as a CSV file (RFC 4180: CRLF line ends), header row first. No field is ever
    /// quoted, because none can need it: ranks and numbers are digits, source ids are
    /// `a-z` and `_`, and a user id is `A-Z a-z 0-9 - _ . @ : | +` (`UserId::parse`), never a
    /// comma, a quote or a line break.
    pub fn csv(&self) -> String {
        let mut out = String::with_capacity(64 * (self.rows.len() + 1));
        out.push_str(CSV_HEADER);
        out.push_str("\r\n");
        for row in &self.rows {
            let sources: Vec<&str> = row.sources.iter().map(|p| p.as_str()).collect();
            out.push_str(&format!("{},{},{},{},{}\r\n", row.rank, row.user, row.total, row.days, sources.join(";")));
        }
        out
    }

    /// The name a browser saves it under: the challenge, and `final` or the day (UTC) of the
    /// figures. Only `A-Z a-z 0-9 - _ .` from the id, so it never needs quoting or escaping.
    pub fn file_name(&self) -> String {
        let id: String = self
            .challenge
            .as_str()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
            .collect();
        let when = match self.final_results {
            true => "final".to_owned(),
            false => format!("as-of-{}", local_today(self.as_of, &jiff::tz::TimeZone::UTC)),
        };
        format!("stepsync-{id}-{when}.csv")
    }
}

pub struct Organizer<'a> {
    pub steps: &'a dyn StepStore,
    pub challenges: &'a dyn ChallengeStore,
    pub connections: &'a dyn ConnectionStore,
}

/// One participant with what they own, as one read found it.
struct Person<'p> {
    participant: &'p Participant,
    connections: Vec<Connection>,
    days: UserDays,
}

/// What every participant adds up to.
#[derive(Default)]
struct Survey {
    participants: u32,
    by_code: BTreeMap<&'static str, u32>,
    by_action: BTreeMap<Action, u32>,
    yesterday: u32,
    today: u32,
    /// Sorted by `since`, then user.
    needing: Vec<NeedsAction>,
}

impl Survey {
    fn count(&mut self, participant: &Participant, seen: &[Seen], days: &UserDays, now: Timestamp) {
        let represents = representative(seen);
        let diagnosis = match represents {
            Some(seen) => seen.diagnosis.clone(),
            None => no_source(participant.joined_at),
        };
        self.participants += 1;
        *self.by_code.entry(diagnosis.code).or_default() += 1;
        *self.by_action.entry(diagnosis.action).or_default() += 1;
        // The person's days are in the zone a sync of that connection writes them in
        // (`Syncing::person_zone`): its own, else the person's, else UTC.
        let zone = match represents.map(|s| &s.connection).filter(|c| c.time_zone.is_some()) {
            Some(connection) => connection.tz(),
            None => days.profile.zone(),
        };
        let today = local_today(now, &zone);
        let has_steps = |date: LocalDate| days.days.get(&date).is_some_and(|d| d.total.get() > 0);
        self.yesterday += u32::from(has_steps(today.add_days(-1)));
        self.today += u32::from(has_steps(today));
        if diagnosis.action != Action::None {
            let known_from = represents.map_or(participant.joined_at, |s| s.connection.created_at);
            self.needing.push(NeedsAction {
                user: participant.user.clone(),
                provider: represents.map(|s| s.connection.provider),
                code: diagnosis.code,
                action: diagnosis.action,
                since: diagnosis.since.unwrap_or(known_from),
                message: diagnosis.message.clone(),
            });
        }
    }
}

/// How much an action asks of the person: what stands for someone with several sources.
fn weight(action: Action) -> u8 {
    match action {
        Action::Reconnect | Action::GrantPermission | Action::Connect => 3,
        Action::SyncDevice => 2,
        Action::Wait => 1,
        Action::None => 0,
    }
}

/// The connection that stands for a person with several: among those not turned off (all of
/// them when every one is: a source the person turned off does not speak for them while
/// another is on), the one whose diagnosis asks the most of them (reconnect or permission,
/// then syncing a device, then waiting, then healthy), then the one that has needed it
/// longest, then the first source in the fixed order. `None` for someone with no connection.
fn representative(seen: &[Seen]) -> Option<&Seen> {
    let any_on = seen.iter().any(|s| s.connection.status != ConnectionStatus::Disconnected);
    seen.iter().filter(|s| !any_on || s.connection.status != ConnectionStatus::Disconnected).max_by(|a, b| {
        weight(a.diagnosis.action)
            .cmp(&weight(b.diagnosis.action))
            .then_with(|| b.diagnosis.since.cmp(&a.diagnosis.since))
            .then_with(|| b.connection.provider.cmp(&a.connection.provider))
    })
}

fn encode_cursor(entry: &NeedsAction) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", entry.since.as_nanosecond(), entry.user))
}

fn decode_cursor(raw: &str) -> Result<(Timestamp, UserId), OrganizerError> {
    let text =
        URL_SAFE_NO_PAD.decode(raw).ok().and_then(|b| String::from_utf8(b).ok()).ok_or(OrganizerError::BadCursor)?;
    let (since, user) = text.split_once(':').ok_or(OrganizerError::BadCursor)?;
    let since = since.parse::<i128>().ok().and_then(|ns| Timestamp::from_nanosecond(ns).ok());
    Ok((since.ok_or(OrganizerError::BadCursor)?, UserId::parse(user).map_err(|_| OrganizerError::BadCursor)?))
}

/// Up to `limit` of `needing` after the entry `after` names, and the next page's cursor. The
/// cursor names a place in the order, not an index: a page boundary stays put when people
/// before it are fixed meanwhile.
fn page(
    needing: &[NeedsAction],
    limit: usize,
    after: Option<&(Timestamp, UserId)>,
) -> (Vec<NeedsAction>, Option<String>) {
    let start = after.map_or(0, |(since, user)| needing.partition_point(|e| (e.since, &e.user) <= (*since, user)));
    let rest = &needing[start..];
    let shown = rest.len().min(limit.max(1));
    let entries = rest[..shown].to_vec();
    let next = (rest.len() > shown).then(|| entries.last().map(encode_cursor)).flatten();
    (entries, next)
}

impl Organizer<'_> {
    async fn challenge(&self, id: &ChallengeId) -> Result<Challenge, OrganizerError> {
        self.challenges.get_challenge(id).await?.ok_or(OrganizerError::NotFound)
    }

    /// The challenge's sync health at `now`, with the page of `limit` participants needing an
    /// action after `cursor` (administrators only). `NotFound` for an unknown challenge,
    /// `Invalid` (field `cursor`) for a cursor this list never gave.
    pub async fn sync_health(
        &self,
        admin: bool,
        id: &ChallengeId,
        now: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SyncHealth, ServiceError> {
        require_admin(admin, SYNC_HEALTH)?;
        let challenge = self.challenge(id).await?;
        let after = cursor.map(decode_cursor).transpose()?;
        let survey = self.survey(&challenge, now).await?;
        let (needing_action, next_cursor) = page(&survey.needing, limit, after.as_ref());
        Ok(SyncHealth {
            challenge_id: challenge.id,
            as_of: now,
            participants: survey.participants,
            by_code: survey.by_code,
            by_action: survey.by_action,
            with_data: DataShares {
                yesterday: Share::of(survey.yesterday, survey.participants),
                today: Share::of(survey.today, survey.participants),
            },
            needing_action_total: survey.needing.len() as u32,
            needing_action,
            next_cursor,
        })
    }

    /// Every participant of the challenge whose steps do not sync by themselves at `now`, who
    /// has needed it longest first: the whole list `sync_health` pages through (`wait`
    /// included; a reminder should skip those). `NotFound` for an unknown challenge.
    pub async fn needing_action(&self, id: &ChallengeId, now: Timestamp) -> Result<Vec<NeedsAction>, ServiceError> {
        let challenge = self.challenge(id).await?;
        self.needing_action_in(&challenge, now).await
    }

    /// `needing_action` for a challenge already read.
    pub async fn needing_action_in(
        &self,
        challenge: &Challenge,
        now: Timestamp,
    ) -> Result<Vec<NeedsAction>, ServiceError> {
        Ok(self.survey(challenge, now).await?.needing)
    }

    /// Sees every participant as their own status answer would, `PEOPLE_PER_READ` people to a
    /// read and `READS_IN_FLIGHT` reads at a time, and adds them up.
    async fn survey(&self, challenge: &Challenge, now: Timestamp) -> Result<Survey, ServiceError> {
        let participants = self.challenges.participants(&challenge.id).await?;
        let (start, end) = recent_days(now);
        let dates: Vec<LocalDate> = start.through(end).collect();
        let mut seeing = Seeing::new(self.connections, now);
        let mut survey = Survey::default();
        // A new read starts as each one ends. (Pushed by hand: a stream combinator's closure
        // over the borrowed chunks makes the handler's future fail to prove it is `Send`.)
        let mut chunks = participants.chunks(PEOPLE_PER_READ);
        let mut reads = FuturesUnordered::new();
        for chunk in chunks.by_ref().take(READS_IN_FLIGHT) {
            reads.push(self.read(chunk, &dates));
        }
        while let Some(people) = reads.next().await {
            if let Some(chunk) = chunks.next() {
                reads.push(self.read(chunk, &dates));
            }
            for person in people? {
                let mut seen = Vec::with_capacity(person.connections.len());
                for connection in person.connections {
                    seen.push(seeing.see(connection, &person.days.days).await?);
                }
                survey.count(person.participant, &seen, &person.days, now);
            }
        }
        survey.needing.sort_by(|a, b| (a.since, &a.user).cmp(&(b.since, &b.user)));
        Ok(survey)
    }

    /// The connections, profile and `dates` of each participant of `chunk`, in two batched
    /// reads sent together.
    async fn read<'p>(&self, chunk: &'p [Participant], dates: &[LocalDate]) -> Result<Vec<Person<'p>>, StoreError> {
        let users: Vec<UserId> = chunk.iter().map(|p| p.user.clone()).collect();
        let (connections, mut days) =
            futures::try_join!(self.connections.connections_of(&users), self.steps.load_people_days(&users, dates))?;
        let mut owned: HashMap<UserId, Vec<Connection>> = HashMap::new();
        for connection in connections {
            owned.entry(connection.user.clone()).or_default().push(connection);
        }
        Ok(chunk
            .iter()
            .map(|participant| Person {
                participant,
                connections: owned.remove(&participant.user).unwrap_or_default(),
                days: days.remove(&participant.user).unwrap_or_default(),
            })
            .collect())
    }

    /// One page of the challenge's results (administrators only): `limit` rows (at most
    /// `MAX_EXPORT_ROWS`) after `cursor`, ranked exactly as the leaderboard ranks them (the same
    /// `rank`, ties the same way), final once the challenge is (its participants then carry the
    /// numbers sealed at the close). `NotFound` for an unknown challenge, `Invalid` (field
    /// `cursor`) for a cursor this export never gave.
    pub async fn export(
        &self,
        admin: bool,
        id: &ChallengeId,
        now: Timestamp,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<ExportPage, ServiceError> {
        require_admin(admin, EXPORT)?;
        let challenge = self.challenge(id).await?;
        let participants = self.challenges.participants(id).await?;
        let mut sources: HashMap<UserId, Vec<Provider>> = participants
            .iter()
            .map(|p| {
                let mut ids: Vec<Provider> = p.sources.0.keys().copied().collect();
                ids.sort_by_key(|p| p.as_str());
                (p.user.clone(), ids)
            })
            .collect();
        let page = rank(participants, limit.clamp(1, MAX_EXPORT_ROWS), cursor).map_err(|e| match e {
            ChallengeError::BadCursor => ServiceError::from(OrganizerError::BadCursor),
            other => other.into(),
        })?;
        let rows = page
            .entries
            .into_iter()
            .map(|e| ExportRow {
                sources: sources.remove(&e.user).unwrap_or_default(),
                rank: e.rank,
                user: e.user,
                total: e.total,
                days: e.days,
            })
            .collect();
        Ok(ExportPage {
            challenge: challenge.id.clone(),
            final_results: challenge.state(now) == ChallengeState::Final,
            as_of: now,
            rows,
            next: page.next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(rank: u32, user: &str, total: u64, days: u32, sources: &[Provider]) -> ExportRow {
        ExportRow { rank, user: UserId::parse(user).unwrap(), total, days, sources: sources.to_vec() }
    }

    fn export(rows: Vec<ExportRow>, final_results: bool) -> ExportPage {
        ExportPage {
            challenge: ChallengeId::parse("Qm9yZWFsLVdhbGsx").unwrap(),
            final_results,
            as_of: "2026-11-25T18:00:00Z".parse().unwrap(),
            rows,
            next: None,
        }
    }

    #[test]
    fn the_csv_has_its_header_then_one_line_per_row() {
        let page = export(
            vec![
                row(1, "ann@example.com", 12_000, 3, &[Provider::GoogleHealth, Provider::Oura]),
                row(1, "bo|2", 12_000, 2, &[Provider::AppleHealth]),
                row(3, "+cy:x", 0, 0, &[]),
            ],
            false,
        );
        assert_eq!(
            page.csv(),
            "rank,user,total_steps,days_with_data,sources\r\n\
             1,ann@example.com,12000,3,google_health;oura\r\n\
             1,bo|2,12000,2,apple_health\r\n\
             3,+cy:x,0,0,\r\n"
        );
        assert_eq!(page.file_name(), "stepsync-Qm9yZWFsLVdhbGsx-as-of-2026-11-25.csv");
        let odd = ExportPage { challenge: ChallengeId::parse("a:b|c").unwrap(), ..export(vec![], true) };
        assert_eq!(odd.file_name(), "stepsync-a_b_c-final.csv");
        assert_eq!(odd.csv(), "rank,user,total_steps,days_with_data,sources\r\n");
    }

    /// Nothing a row holds can need quoting: no user id takes a comma, a quote or a line
    /// break, and no source id does either.
    #[test]
    fn no_field_can_need_quoting() {
        for bad in ["a,b", "a\"b", "a\nb", "a\rb", "a;b", "a b"] {
            assert!(UserId::parse(bad).is_err(), "{bad:?} is a user id");
        }
        for provider in Provider::ALL {
            assert!(provider.as_str().chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{provider}");
        }
    }

    /// The longest row there can be, times a full page, fits API Gateway's 6 MB answer with
    /// room to spare, even escaped as JSON text (each CR LF written as four characters).
    #[test]
    fn a_full_page_of_the_longest_rows_fits_the_answer() {
        let longest = row(u32::MAX, &"u".repeat(128), u64::MAX, u32::MAX, &Provider::ALL);
        let line = export(vec![longest], false).csv().len() - CSV_HEADER.len() - 2;
        assert!(line <= 256, "{line} bytes");
        assert!((line + 2) * MAX_EXPORT_ROWS < 3 * 1024 * 1024, "{} bytes", (line + 2) * MAX_EXPORT_ROWS);
    }

    fn needing(user: &str, since: &str) -> NeedsAction {
        NeedsAction {
            user: UserId::parse(user).unwrap(),
            provider: None,
            code: "no_source",
            action: Action::Connect,
            since: since.parse().unwrap(),
            message: String::new(),
        }
    }

    #[test]
    fn pages_go_on_after_the_cursor_and_a_bad_one_is_refused() {
        let all = vec![
            needing("c", "2026-11-01T00:00:00Z"),
            needing("a", "2026-11-02T00:00:00Z"),
            needing("b:1", "2026-11-02T00:00:00Z"),
            needing("d", "2026-11-03T00:00:00.5Z"),
        ];
        let (first, next) = page(&all, 3, None);
        assert_eq!(first, all[..3]);
        let after = decode_cursor(next.as_deref().unwrap()).unwrap();
        assert_eq!(after, ("2026-11-02T00:00:00Z".parse().unwrap(), UserId::parse("b:1").unwrap()));
        let (second, last) = page(&all, 3, Some(&after));
        assert_eq!((second, last), (all[3..].to_vec(), None));
        assert_eq!(page(&all, 0, None).0.len(), 1, "a page holds at least one");
        for bad in ["!!", "bm9wZQ", &URL_SAFE_NO_PAD.encode("12:a#b"), &URL_SAFE_NO_PAD.encode("x:a")] {
            assert!(matches!(decode_cursor(bad), Err(OrganizerError::BadCursor)), "{bad}");
        }
    }
}
