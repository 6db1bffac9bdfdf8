//! The exactness property, against a model of the rules written here, not the production code.
//!
//! Random interleavings of a provider changing and deleting days, pulls and webhook syncs of
//! the account's holder, phone uploads from two installations per person (some readings
//! arriving late), joins, leaves, the provider account changing hands, the clock crossing a
//! challenge's close, and reconcile runs. After each run:
//! - every open participant's numbers equal the model's (per source values in, the best single
//!   source's total and days out);
//! - every participant of the closed challenge equals the model's totals at the close, and the
//!   challenge checks against its own snapshots;
//! - no provider day fed two people;
//! - re-applying every input writes nothing (counted write requests).
//!
//! 1,000 cases on the in-memory store (the services exactly as deployed, over another store),
//! and fewer on dynoxide through the real DynamoDB adapter. Failing seeds are kept in
//! `integration/model.proptest-regressions` and replayed first.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use stepsync::clock::Clock;
use stepsync::crypto::AesGcmTokenCipher;
use stepsync::domain::{Challenge, ChallengeId, Connection, DailyValue, LocalDate, Provider, UserId};
use stepsync::ports::{Providers, Store};
use stepsync::services::{DeviceUpload, Ports, Reconcile, Services, Settings, SyncSettings, challenges::Challenges};
use stepsync::testing::{FixedClock, InMemoryStore, RecordingPublisher, ScriptedProvider};
use stepsync_local::harness::{Backend, TestEnv, unique};

const ACCOUNT: &str = "g-account";
const FIRST_DAY: &str = "2026-11-18";
const DAYS: u8 = 7;
const START: &str = "2026-11-19T06:00:00Z";
/// C0: Nov 18–20, no grace (final from Nov 21, 12:00 UTC); C1: Nov 19–24, a week of grace.
const WINDOWS: [(&str, &str, u32); 2] = [("2026-11-18", "2026-11-20", 0), ("2026-11-19", "2026-11-24", 7)];

#[derive(Debug, Clone)]
enum Op {
    /// The provider now has `steps` for the day (a walk, a correction).
    ProviderSet {
        day: u8,
        steps: u32,
    },
    /// The provider deleted the day.
    ProviderDelete {
        day: u8,
    },
    /// The account's holder pulls its window up to today.
    Pull,
    /// A webhook about one day: the holder syncs that day.
    Webhook {
        day: u8,
    },
    /// A phone upload; `late`: a reading taken an hour ago, arriving now.
    Upload {
        person: usize,
        install: u8,
        day: u8,
        steps: u32,
        late: bool,
    },
    Join {
        person: usize,
        challenge: usize,
    },
    Leave {
        person: usize,
        challenge: usize,
    },
    /// The holder turns the account off; the other person connects the same account.
    Transfer,
    /// Half a day passes.
    Tick,
    Reconcile,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => (0..DAYS, 0u32..20_000).prop_map(|(day, steps)| Op::ProviderSet { day, steps }),
        1 => (0..DAYS).prop_map(|day| Op::ProviderDelete { day }),
        2 => Just(Op::Pull),
        2 => (0..DAYS).prop_map(|day| Op::Webhook { day }),
        4 => (0..2usize, 0..2u8, 0..DAYS, 0u32..20_000, any::<bool>())
            .prop_map(|(person, install, day, steps, late)| Op::Upload { person, install, day, steps, late }),
        2 => (0..2usize, 0..2usize).prop_map(|(person, challenge)| Op::Join { person, challenge }),
        1 => (0..2usize, 0..2usize).prop_map(|(person, challenge)| Op::Leave { person, challenge }),
        1 => Just(Op::Transfer),
        2 => Just(Op::Tick),
        1 => Just(Op::Reconcile),
    ];
    prop::collection::vec(op, 1..40)
}

fn date(raw: &str) -> LocalDate {
    LocalDate::parse(raw).unwrap()
}

fn day(index: u8) -> LocalDate {
    date(FIRST_DAY).add_days(i32::from(index))
}

fn today(now: Timestamp) -> LocalDate {
    stepsync::domain::local_today(now, &TimeZone::UTC)
}

// ------------------------------------------------------------------------------- the model

/// The rules, written down again: per person the Google value per day, and per installation
/// the newest reading per day.
#[derive(Debug, Default, Clone)]
struct Model {
    provider: BTreeMap<LocalDate, u32>,
    holder: usize,
    /// Each person's Google connection's first countable day (None: everything).
    counts_from: [Option<LocalDate>; 2],
    /// The last day the account may have counted for its last holder before a transfer.
    google: [BTreeMap<LocalDate, u32>; 2],
    installs: [BTreeMap<(u8, LocalDate), (Timestamp, u32)>; 2],
    members: BTreeSet<(usize, usize)>,
    /// The closed challenge's members' numbers when it closed.
    at_close: Option<BTreeMap<usize, (u64, u32)>>,
}

impl Model {
    /// A pull of `start..=end` by the holder at `now`: a day the provider has is set, a day it
    /// no longer has (up to today) is removed; nothing before the holder's first countable day.
    fn pull(&mut self, start: LocalDate, end: LocalDate, now: Timestamp) {
        let h = self.holder;
        let start = self.counts_from[h].map_or(start, |first| start.max(first));
        if start > end {
            return;
        }
        for d in start.through(end) {
            match self.provider.get(&d) {
                // Values later than local tomorrow are refused.
                Some(steps) if d <= today(now).add_days(1) => {
                    self.google[h].insert(d, *steps);
                }
                Some(_) => {}
                None if d <= today(now) => {
                    self.google[h].remove(&d);
                }
                None => {}
            }
        }
    }

    fn upload(&mut self, person: usize, install: u8, d: LocalDate, steps: u32, observed: Timestamp, now: Timestamp) {
        if d > today(now).add_days(1) {
            return;
        }
        let slot = self.installs[person].entry((install, d)).or_insert((observed, steps));
        let (t0, s0) = *slot;
        // The same count is no change; else the later reading (equal times: the larger) wins.
        if steps != s0 && (observed, steps) > (t0, s0) {
            *slot = (observed, steps);
        }
    }

    fn phone(&self, person: usize, d: LocalDate) -> Option<u32> {
        self.installs[person].iter().filter(|((_, day), _)| *day == d).map(|(_, (_, steps))| *steps).max()
    }

    /// The best single source over the challenge's window: (total, days with steps).
    fn totals(&self, person: usize, challenge: usize) -> (u64, u32) {
        let (start, end, _) = WINDOWS[challenge];
        let mut google = (0u64, 0u32);
        let mut phone = (0u64, 0u32);
        for d in date(start).through(date(end)) {
            if let Some(steps) = self.google[person].get(&d) {
                google = (google.0 + u64::from(*steps), google.1 + u32::from(*steps > 0));
            }
            if let Some(steps) = self.phone(person, d) {
                phone = (phone.0 + u64::from(steps), phone.1 + u32::from(steps > 0));
            }
        }
        google.max(phone)
    }
}

// ------------------------------------------------------------------------------- the system

/// The services over one store, one clock, a scripted Google.
struct System {
    store: Arc<dyn Store>,
    clock: Arc<FixedClock>,
    google: Arc<ScriptedProvider>,
    services: Services,
    people: [UserId; 2],
    challenges: [ChallengeId; 2],
    account: String,
    /// Prefix of this run's installation ids (one table may serve many runs).
    devices: String,
    writes: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl System {
    async fn new(store: Arc<dyn Store>, clock: Arc<FixedClock>, writes: Box<dyn Fn() -> u64 + Send + Sync>) -> Self {
        clock.set(START.parse().unwrap());
        let google = Arc::new(ScriptedProvider::new(Provider::GoogleHealth, Ok(vec![])));
        let ports = Ports::over(store.clone(), Arc::new(RecordingPublisher::default()), clock.clone());
        let defaults = stepsync::testing::settings();
        let settings = Settings { sync: SyncSettings { worker_concurrency: 2, ..defaults.sync.clone() }, ..defaults };
        let cipher = Arc::new(AesGcmTokenCipher::new(&[3; 32]));
        let services = Services::new(ports, cipher, Providers::default().with_source(google.clone()), settings);
        let people = [UserId::parse(&unique("ann")).unwrap(), UserId::parse(&unique("ben")).unwrap()];
        let mut challenges = Vec::new();
        for (start, end, grace) in WINDOWS {
            let id = ChallengeId::parse(&unique("walk")).unwrap();
            store
                .create_challenge(&Challenge::new(id.clone(), "walk", date(start), date(end), "UTC", grace).unwrap())
                .await
                .unwrap();
            challenges.push(id);
        }
        let account = unique(ACCOUNT);
        let system = System {
            store,
            clock,
            google,
            services,
            people,
            challenges: [challenges[0].clone(), challenges[1].clone()],
            account,
            devices: unique("device"),
            writes,
        };
        system.connect(0).await;
        system
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn challenges(&self) -> Challenges<'_> {
        Challenges { steps: self.store.as_ref(), store: self.store.as_ref() }
    }

    /// What the connect callback stores: the claim, then the connection with its floor.
    async fn connect(&self, person: usize) {
        let user = &self.people[person];
        let claim = self.store.claim_provider_account(Provider::GoogleHealth, &self.account, user).await.unwrap();
        let existing = self.store.get_connection(user, Provider::GoogleHealth).await.unwrap();
        let connection = Connection {
            provider_user_id: Some(self.account.clone()),
            token_version: existing.as_ref().map_or(1, |c| c.token_version + 1),
            counts_from: claim.counts_from,
            ..Connection::new(user.clone(), Provider::GoogleHealth, self.now())
        };
        self.store.save_connection(&connection, existing.map(|c| c.token_version)).await.unwrap();
    }

    async fn sync(&self, person: usize, window: Option<(LocalDate, LocalDate)>) {
        let user = &self.people[person];
        let connection = self.store.get_connection(user, Provider::GoogleHealth).await.unwrap().unwrap();
        let (start, end) = window.unzip();
        self.services.syncing.sync_connection(&connection, start, end).await.unwrap();
    }

    fn install(&self, person: usize, install: u8) -> String {
        format!("{}-{person}-{install}", self.devices)
    }

    fn upload(&self, person: usize, install: u8, d: LocalDate, steps: u32, observed: Timestamp) -> DeviceUpload {
        DeviceUpload {
            platform: Provider::AppleHealth,
            install_id: self.install(person, install),
            observed_at: Some(observed),
            zone: "UTC".into(),
            tz: TimeZone::UTC,
            values: vec![DailyValue { date: d, steps: i64::from(steps), observed_at: None }],
            rejected: vec![],
        }
    }
}

/// Runs `ops` on the system and the model side by side, then checks them against each other.
async fn run(system: &System, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let mut uploads: Vec<(usize, u8, LocalDate, u32, Timestamp)> = Vec::new();
    // Each pull as the engine applied it: who, the days answered, the window, when it asked.
    let mut pulls: Vec<(usize, Vec<DailyValue>, LocalDate, LocalDate, Timestamp)> = Vec::new();
    let closes_at = Challenge::new(
        ChallengeId::parse("c").unwrap(),
        "c",
        date(WINDOWS[0].0),
        date(WINDOWS[0].1),
        "UTC",
        WINDOWS[0].2,
    )
    .unwrap()
    .closes_at();
    let last_day = day(DAYS - 1);
    for op in ops {
        // Every step happens at its own instant: no two observations share a time.
        system.clock.advance(Duration::from_secs(1));
        let now = system.now();
        let final_c0 = now >= closes_at;
        match op.clone() {
            Op::ProviderSet { day: d, steps } => {
                model.provider.insert(day(d), steps);
            }
            Op::ProviderDelete { day: d } => {
                model.provider.remove(&day(d));
            }
            Op::Pull => {
                set_answer(system, &model);
                system.sync(model.holder, Some((day(0), today(now)))).await;
                pulls.push(pulled(&model, day(0), today(now), now));
                model.pull(day(0), today(now), now);
            }
            Op::Webhook { day: d } => {
                set_answer(system, &model);
                system.sync(model.holder, Some((day(d), day(d)))).await;
                pulls.push(pulled(&model, day(d), day(d), now));
                model.pull(day(d), day(d), now);
            }
            Op::Upload { person, install, day: d, steps, late } => {
                let observed = if late { now - SignedDuration::from_hours(1) } else { now };
                let upload = system.upload(person, install, day(d), steps, observed);
                // An upload with no usable day is refused as a whole (400); that is fine here.
                let _ = system.services.uploads.upload(&system.people[person], upload).await;
                model.upload(person, install, day(d), steps, observed, now);
                // What was refused then (after local tomorrow) is not an input to re-apply.
                if day(d) <= today(now).add_days(1) {
                    uploads.push((person, install, day(d), steps, observed));
                }
            }
            Op::Join { person, challenge } => {
                let joined = system.challenges().join(&system.challenges[challenge], &system.people[person], now).await;
                let final_now = challenge == 0 && final_c0;
                prop_assert_eq!(joined.is_ok(), !final_now, "join {:?}", joined);
                if !final_now {
                    model.members.insert((person, challenge));
                }
            }
            Op::Leave { person, challenge } => {
                let left = system.challenges().leave(&system.challenges[challenge], &system.people[person], now).await;
                let member = model.members.contains(&(person, challenge));
                let final_now = challenge == 0 && final_c0;
                prop_assert_eq!(left.is_ok(), member && !final_now, "leave {:?}", left);
                if member && !final_now {
                    model.members.remove(&(person, challenge));
                }
            }
            Op::Transfer => {
                let (from, to) = (model.holder, 1 - model.holder);
                system.services.connecting.disconnect(&system.people[from], Provider::GoogleHealth).await.unwrap();
                system.connect(to).await;
                // The release: through tomorrow at UTC+14 (a value is accepted up to local
                // tomorrow); the new floor never earlier than the old one.
                let released = stepsync::domain::local_today(now, &TimeZone::fixed(jiff::tz::offset(14))).add_days(1);
                let floor = released.add_days(1);
                model.counts_from[to] = Some(model.counts_from[from].map_or(floor, |f| f.max(floor)));
                model.holder = to;
            }
            Op::Tick => {
                system.clock.advance(Duration::from_secs(12 * 3600));
                if system.now() >= closes_at && model.at_close.is_none() {
                    let members = model.members.iter().filter(|(_, c)| *c == 0).map(|(p, _)| (*p, model.totals(*p, 0)));
                    model.at_close = Some(members.collect());
                }
            }
            Op::Reconcile => {
                let reconcile = Reconcile { steps: system.store.as_ref(), store: system.store.as_ref() };
                let report = reconcile.run(now).await.unwrap();
                prop_assert_eq!((report.repaired, report.repaired_at_seal), (0, 0), "no drift: {:?}", report);
            }
        }
        if now >= closes_at && model.at_close.is_none() {
            // Crossed by the per-step second (not a tick): the close is now.
            let members = model.members.iter().filter(|(_, c)| *c == 0).map(|(p, _)| (*p, model.totals(*p, 0)));
            model.at_close = Some(members.collect());
        }
    }

    // Open participants equal the model; the closed challenge equals the model at its close
    // and checks against its snapshots.
    let reconcile = Reconcile { steps: system.store.as_ref(), store: system.store.as_ref() };
    let report = reconcile.run(system.now()).await.unwrap();
    prop_assert_eq!((report.repaired, report.repaired_at_seal), (0, 0), "no drift at the end: {:?}", report);
    for challenge in 0..2 {
        for person in 0..2 {
            let stored = system.store.participant(&system.challenges[challenge], &system.people[person]).await.unwrap();
            let member = model.members.contains(&(person, challenge));
            prop_assert_eq!(stored.is_some(), member, "membership of {} in C{}", person, challenge);
            let Some(stored) = stored else { continue };
            let got = (stored.totals().total, stored.totals().days);
            let expected = match (&model.at_close, challenge) {
                (Some(at_close), 0) => at_close[&person],
                _ => model.totals(person, challenge),
            };
            prop_assert_eq!(got, expected, "person {} in C{}", person, challenge);
        }
    }
    if model.at_close.is_some() {
        prop_assert_eq!(reconcile.check_closed(&system.challenges[0]).await.unwrap(), Vec::<UserId>::new());
    }

    // No provider day fed two people.
    let days = |p: usize| async move {
        let all = system.store.load_user_window(&system.people[p], day(0), last_day).await.unwrap().days;
        all.into_iter()
            .filter(|(_, d)| d.sources.contains_key(&Provider::GoogleHealth))
            .map(|(d, _)| d)
            .collect::<BTreeSet<_>>()
    };
    let (ann, ben) = (days(0).await, days(1).await);
    prop_assert!(ann.is_disjoint(&ben), "Google days of both: {:?}", ann.intersection(&ben).collect::<Vec<_>>());

    // Re-applying every input writes nothing.
    let before = (system.writes)();
    let engine = &system.services.engine;
    for (person, install, d, steps, observed) in &uploads {
        let value = DailyValue { date: *d, steps: i64::from(*steps), observed_at: Some(*observed) };
        let install = system.install(*person, *install);
        engine
            .apply_from_install(&system.people[*person], Provider::AppleHealth, &install, &TimeZone::UTC, &[value])
            .await
            .unwrap();
    }
    for (person, values, start, end, asked_at) in &pulls {
        let window = Some((*start, *end, *asked_at));
        engine
            .apply_window(&system.people[*person], Provider::GoogleHealth, &TimeZone::UTC, values, window)
            .await
            .unwrap();
    }
    prop_assert_eq!((system.writes)() - before, 0, "re-applying everything wrote");
    Ok(())
}

/// What the holder's pull of `start..=end` at `now` applied: the window clamped to their first
/// countable day, the provider's days in it, each observed when the pull started. The window's
/// end as the engine read it then: a day after that local today is not one the pull could find
/// gone, whenever the pull is re-applied.
fn pulled(
    model: &Model,
    start: LocalDate,
    end: LocalDate,
    now: Timestamp,
) -> (usize, Vec<DailyValue>, LocalDate, LocalDate, Timestamp) {
    let start = model.counts_from[model.holder].map_or(start, |first| start.max(first));
    let values = model
        .provider
        .iter()
        .filter(|(d, _)| start <= **d && **d <= end && **d <= today(now).add_days(1))
        .map(|(d, s)| DailyValue { date: *d, steps: i64::from(*s), observed_at: Some(now) })
        .collect();
    (model.holder, values, start, end.min(today(now)), now)
}

/// The provider's days as the scripted Google answers them (it keeps the asked window).
fn set_answer(system: &System, model: &Model) {
    let values = model.provider.iter().map(|(d, s)| DailyValue { date: *d, steps: i64::from(*s), observed_at: None });
    *system.google.answer.lock().unwrap() = Ok(values.collect());
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("integration/model.proptest-regressions"))),
        ..ProptestConfig::default()
    }
}

/// The writes `env`'s table has counted so far.
fn writes_of(env: &TestEnv) -> Box<dyn Fn() -> u64 + Send + Sync> {
    let counter = env.counter.clone();
    Box::new(move || {
        let counted = counter.snapshot();
        ["PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"]
            .iter()
            .map(|op| counted.get(*op).copied().unwrap_or(0))
            .sum()
    })
}

#[test]
fn the_rules_hold_against_the_model_on_the_in_memory_store() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    proptest!(config(1000), |(ops in ops())| {
        runtime.block_on(async {
            let store = Arc::new(InMemoryStore::default());
            let counted = store.clone();
            let system = System::new(store, Arc::new(FixedClock::at(START)), Box::new(move || counted.writes())).await;
            run(&system, &ops).await
        })?;
    });
}

#[test]
fn the_rules_hold_against_the_model_through_dynamodb() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    proptest!(config(48), |(ops in ops())| {
        runtime.block_on(async {
            // A table of its own per case: the reconcile looks at every challenge in it.
            let env = TestEnv::new(Backend::Dynoxide).await;
            let system = System::new(env.store.clone(), Arc::new(FixedClock::at(START)), writes_of(&env)).await;
            run(&system, &ops).await
        })?;
    });
}

/// A sequence a random run shrank to: a webhook about tomorrow's day (0 steps), the day deleted,
/// a webhook about it again while it is still tomorrow (nothing to find gone: it is not a day
/// yet), half a day, and the replay, on a clock past that day, must not read the second pull's
/// window as covering it. Replayed on both stores every run.
#[test]
fn a_pull_about_tomorrow_replays_as_it_was_read() {
    let ops = [
        Op::ProviderSet { day: 2, steps: 0 },
        Op::Webhook { day: 2 },
        Op::Tick,
        Op::ProviderDelete { day: 2 },
        Op::Webhook { day: 2 },
        Op::Tick,
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let store = Arc::new(InMemoryStore::default());
        let counted = store.clone();
        let system = System::new(store, Arc::new(FixedClock::at(START)), Box::new(move || counted.writes())).await;
        run(&system, &ops).await.expect("in memory");
        let env = TestEnv::new(Backend::Dynoxide).await;
        let system = System::new(env.store.clone(), Arc::new(FixedClock::at(START)), writes_of(&env)).await;
        run(&system, &ops).await.expect("through DynamoDB");
    });
}
