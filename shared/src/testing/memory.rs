//! `InMemoryStore`: every port's store in one map behind one lock.

use crate::domain::{
    AccountHold, Challenge, ChallengeId, Connection, ConnectionStatus, DayRecord, EncryptedTokens, LocalDate,
    OAuthState, Participant, Provider, Snapshot, SourceTotals, UserId, UserProfile,
};
use crate::ports::{
    AccountClaim, ChallengeStore, ConnectionStore, DayChange, DayCount, DayWrite, EphemeralStore, Fenced, FetchFence,
    JoinWrite, LeaveWrite, ReminderClaim, ReminderStore, ReminderSubject, SealWrite, StepStore, StoreError,
    StoredSubscriptions, SubscriptionCheck, SweepCursor, SyncRecord, UserDays,
};
use async_trait::async_trait;
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// A refresh lease: holder and expiry.
type Lease = Option<(String, Timestamp)>;

#[derive(Default)]
struct State {
    profiles: HashMap<UserId, UserProfile>,
    days: BTreeMap<(UserId, LocalDate), DayRecord>,
    challenges: HashMap<ChallengeId, Challenge>,
    participants: BTreeMap<(ChallengeId, UserId), Participant>,
    connections: HashMap<(UserId, Provider), (Connection, Lease)>,
    owners: HashMap<(Provider, String), AccountHold>,
    oauth: HashMap<String, OAuthState>,
    snapshots: HashMap<(ChallengeId, UserId), Snapshot>,
    dedupe: HashMap<String, Timestamp>,
    /// Fixed-window counters: (key, window end) → uses counted.
    windows: HashMap<(String, Timestamp), u32>,
    /// App-level subscriptions by source.
    subscriptions: HashMap<Provider, StoredSubscriptions>,
    /// Sweep cursors by (shard, cycle).
    sweeps: HashMap<(u16, u32), SweepCursor>,
    /// Each connection's last webhook fetch fence.
    fences: HashMap<(UserId, Provider), FetchFence>,
    /// Reminders sent: who claimed each, and when.
    reminders: HashMap<ReminderSubject, (String, Timestamp)>,
    writes: u64,
    /// The change stream: every committed day write, in commit order, not yet taken.
    stream: Vec<DayChange>,
    /// Sequence numbers handed out so far.
    sequence: u64,
    /// Participants without the counted-versions map (stored before it existed): counts are
    /// refused until a rebuild writes it.
    legacy: std::collections::HashSet<(ChallengeId, UserId)>,
    /// An operation's injected failure: how many more calls pass first, and the error.
    refusals: HashMap<Refusable, (u32, StoreError)>,
}

/// The operations a test can make fail once (as a throttled or unreachable DynamoDB would).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusable {
    SaveConnection,
    CommitDay,
    /// The count of a committed day into a participant (`DayCount`).
    CountDay,
    ClaimOnce,
    ClaimReminder,
}

impl State {
    /// The injected failure for `op`, used up by this call.
    fn refusal(&mut self, op: Refusable) -> Result<(), StoreError> {
        match self.refusals.get_mut(&op) {
            Some((0, _)) => Err(self.refusals.remove(&op).map(|(_, error)| error).expect("just seen")),
            Some((passing, _)) => {
                *passing -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

#[derive(Default)]
pub struct InMemoryStore {
    state: Mutex<State>,
}

impl InMemoryStore {
    /// The next call of `op` fails with `error` and writes nothing.
    pub fn refuse_next(&self, op: Refusable, error: StoreError) {
        self.refuse_after(op, 0, error);
    }

    /// `op` succeeds `passing` more times, then fails once with `error`.
    pub fn refuse_after(&self, op: Refusable, passing: u32, error: StoreError) {
        self.state.lock().unwrap().refusals.insert(op, (passing, error));
    }

    /// Refresh leases still held at `now` (a run that ended cleanly leaves none).
    pub fn leases_held(&self, now: Timestamp) -> usize {
        let state = self.state.lock().unwrap();
        state.connections.values().filter(|(_, lease)| lease.as_ref().is_some_and(|(_, until)| *until > now)).count()
    }

    /// Coalescing and cooldown claims still held at `now`.
    pub fn claims_held(&self, now: Timestamp) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state.dedupe.iter().filter(|(_, expires)| **expires > now).map(|(key, _)| key.clone()).collect()
    }

    /// Successful write requests so far (a transaction counts once).
    pub fn writes(&self) -> u64 {
        self.state.lock().unwrap().writes
    }

    /// Overwrites a participant's numbers, whatever its state: drift or tampering for a test
    /// to find and repair.
    pub fn tamper(&self, challenge: &ChallengeId, user: &UserId, sources: SourceTotals) {
        let mut state = self.state.lock().unwrap();
        if let Some(p) = state.participants.get_mut(&(challenge.clone(), user.clone())) {
            p.sources = sources;
        }
    }

    /// Makes a participant look as one stored before counting by version did: no counted
    /// versions, and counts refused (`count_day` needs the map).
    pub fn forget_counted(&self, challenge: &ChallengeId, user: &UserId) {
        let mut state = self.state.lock().unwrap();
        state.legacy.insert((challenge.clone(), user.clone()));
        if let Some(p) = state.participants.get_mut(&(challenge.clone(), user.clone())) {
            p.counted.clear();
        }
    }

    /// Takes the change stream's records so far (as DynamoDB Streams would deliver them).
    pub fn take_day_changes(&self) -> Vec<DayChange> {
        std::mem::take(&mut self.state.lock().unwrap().stream)
    }

    pub fn day(&self, user: &UserId, date: LocalDate) -> Option<DayRecord> {
        self.state.lock().unwrap().days.get(&(user.clone(), date)).cloned()
    }

    /// The reminder records kept: each subject and when its reminder was sent.
    pub fn reminders(&self) -> Vec<(ReminderSubject, Timestamp)> {
        let state = self.state.lock().unwrap();
        state.reminders.iter().map(|(subject, (_, at))| (subject.clone(), *at)).collect()
    }
}

fn check_rev(state: &State, user: &UserId, expected: u64) -> Result<(), StoreError> {
    let rev = state.profiles.get(user).map_or(0, |p| p.rev);
    if rev == expected { Ok(()) } else { Err(StoreError::Conflict) }
}

#[async_trait]
impl StepStore for InMemoryStore {
    async fn erase_user(&self, user: &UserId) -> Result<usize, StoreError> {
        let mut state = self.state.lock().unwrap();
        let held = |s: &State| s.days.len() + s.profiles.len() + s.connections.len() + s.reminders.len();
        let before = held(&state);
        state.days.retain(|(u, _), _| u != user);
        state.profiles.remove(user);
        state.connections.retain(|(u, _), _| u != user);
        state.reminders.retain(|subject, _| !matches!(subject, ReminderSubject::Person { user: u, .. } if u == user));
        let erased = before - held(&state);
        state.writes += erased as u64;
        Ok(erased)
    }

    async fn load_user_days(&self, user: &UserId, dates: &[LocalDate]) -> Result<UserDays, StoreError> {
        let state = self.state.lock().unwrap();
        Ok(UserDays {
            profile: state.profiles.get(user).cloned().unwrap_or_default(),
            days: dates.iter().filter_map(|d| state.days.get(&(user.clone(), *d)).map(|r| (*d, r.clone()))).collect(),
        })
    }

    async fn load_user_window(&self, user: &UserId, start: LocalDate, end: LocalDate) -> Result<UserDays, StoreError> {
        let state = self.state.lock().unwrap();
        Ok(UserDays {
            profile: state.profiles.get(user).cloned().unwrap_or_default(),
            days: state
                .days
                .range((user.clone(), start)..=(user.clone(), end))
                .map(|((_, d), r)| (*d, r.clone()))
                .collect(),
        })
    }

    async fn load_people_days(
        &self,
        users: &[UserId],
        dates: &[LocalDate],
    ) -> Result<BTreeMap<UserId, UserDays>, StoreError> {
        let state = self.state.lock().unwrap();
        Ok(users
            .iter()
            .map(|user| {
                let days =
                    dates.iter().filter_map(|d| state.days.get(&(user.clone(), *d)).map(|r| (*d, r.clone()))).collect();
                (user.clone(), UserDays { profile: state.profiles.get(user).cloned().unwrap_or_default(), days })
            })
            .collect())
    }

    async fn commit_day(&self, write: &DayWrite) -> Result<(), StoreError> {
        // As DynamoDB: the day alone, conditioned on its version.
        let mut state = self.state.lock().unwrap();
        state.refusal(Refusable::CommitDay)?;
        let user = &write.record.user;
        let key = (user.clone(), write.record.date);
        let version = state.days.get(&key).map_or(0, |d| d.version);
        if version != write.expected_version {
            return Err(StoreError::Conflict);
        }
        let old = state.days.insert(key, write.record.clone());
        state.sequence += 1;
        let id = format!("{:020}", state.sequence);
        state.stream.push(DayChange { id, old, new: write.record.clone(), written_at: write.now });
        state.writes += 1;
        Ok(())
    }

    async fn count_day(&self, count: &DayCount) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        state.refusal(Refusable::CountDay)?;
        let closes_at = state.challenges.get(&count.challenge).map(Challenge::closes_at);
        let key = (count.challenge.clone(), count.user.clone());
        if state.legacy.contains(&key) {
            return Err(StoreError::Conflict);
        }
        let Some(p) = state.participants.get_mut(&key) else { return Err(StoreError::Conflict) };
        let counted = p.counted.get(&count.date).copied();
        let at_from = match count.from_version {
            0 => counted.is_none(),
            from => counted == Some(from),
        };
        if p.sealed || !at_from || closes_at.is_none_or(|at| count.written_at >= at) {
            return Err(StoreError::Conflict);
        }
        for (source, total, days) in &count.deltas {
            p.sources.add(*source, *total, *days);
        }
        p.counted.insert(count.date, count.to_version);
        p.rev += 1;
        state.writes += 1;
        Ok(())
    }

    async fn commit_seal(&self, write: &SealWrite) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        check_rev(&state, &write.user, write.expected_rev)?;
        let key = (write.challenge.clone(), write.user.clone());
        if state.snapshots.contains_key(&key) {
            return Err(StoreError::Conflict);
        }
        let participant = state.participants.get_mut(&key).ok_or(StoreError::Conflict)?;
        participant.sources = write.snapshot.totals.clone();
        participant.sealed = true;
        state.snapshots.insert(key, write.snapshot.clone());
        state.profiles.insert(write.user.clone(), write.profile.clone());
        state.writes += 1;
        Ok(())
    }

    async fn set_time_zone(&self, user: &UserId, zone: &str, expected_rev: u64) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        check_rev(&state, user, expected_rev)?;
        let profile = state.profiles.entry(user.clone()).or_default();
        profile.time_zone = Some(zone.to_owned());
        profile.rev = expected_rev + 1;
        state.writes += 1;
        Ok(())
    }

    async fn set_primary_source(
        &self,
        user: &UserId,
        primary: Option<Provider>,
        expected_rev: u64,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        check_rev(&state, user, expected_rev)?;
        let profile = state.profiles.entry(user.clone()).or_default();
        profile.primary = primary;
        profile.rev = expected_rev + 1;
        state.writes += 1;
        Ok(())
    }
}

#[async_trait]
impl ChallengeStore for InMemoryStore {
    async fn erase_participant(&self, challenge: &ChallengeId, user: &UserId) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        let key = (challenge.clone(), user.clone());
        state.participants.remove(&key);
        state.snapshots.remove(&key);
        state.writes += 1;
        Ok(())
    }

    async fn create_challenge(&self, challenge: &Challenge) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        if state.challenges.contains_key(&challenge.id) {
            return Err(StoreError::AlreadyExists("challenge"));
        }
        state.challenges.insert(challenge.id.clone(), challenge.clone());
        state.writes += 1;
        Ok(())
    }

    async fn get_challenge(&self, id: &ChallengeId) -> Result<Option<Challenge>, StoreError> {
        Ok(self.state.lock().unwrap().challenges.get(id).cloned())
    }

    async fn list_challenges(&self, ending_from: LocalDate) -> Result<Vec<Challenge>, StoreError> {
        let state = self.state.lock().unwrap();
        let mut all: Vec<Challenge> = state.challenges.values().filter(|c| c.end >= ending_from).cloned().collect();
        all.sort_by(|a, b| (a.end, &a.id).cmp(&(b.end, &b.id)));
        Ok(all)
    }

    async fn commit_join(&self, write: &JoinWrite) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        let p = &write.participant;
        let key = (p.challenge.clone(), p.user.clone());
        if state.participants.contains_key(&key) {
            return Err(StoreError::AlreadyExists("participant"));
        }
        check_rev(&state, &p.user, write.expected_rev)?;
        state.participants.insert(key, p.clone());
        state.profiles.insert(p.user.clone(), write.profile.clone());
        state.writes += 1;
        Ok(())
    }

    async fn commit_leave(&self, write: &LeaveWrite) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        check_rev(&state, &write.user, write.expected_rev)?;
        state.participants.remove(&(write.challenge.clone(), write.user.clone()));
        state.profiles.insert(write.user.clone(), write.profile.clone());
        state.writes += 1;
        Ok(())
    }

    async fn commit_totals(&self, rebuilt: &Participant) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        let p = state
            .participants
            .get_mut(&(rebuilt.challenge.clone(), rebuilt.user.clone()))
            .ok_or(StoreError::NotFound("participant"))?;
        if p.rev != rebuilt.rev || p.sealed {
            return Err(StoreError::Conflict);
        }
        state.legacy.remove(&(rebuilt.challenge.clone(), rebuilt.user.clone()));
        let p = state.participants.get_mut(&(rebuilt.challenge.clone(), rebuilt.user.clone())).expect("just seen");
        p.sources = rebuilt.sources.clone();
        p.counted = rebuilt.counted.clone();
        p.rev += 1;
        state.writes += 1;
        Ok(())
    }

    async fn participant(&self, challenge: &ChallengeId, user: &UserId) -> Result<Option<Participant>, StoreError> {
        Ok(self.state.lock().unwrap().participants.get(&(challenge.clone(), user.clone())).cloned())
    }

    async fn snapshot(&self, challenge: &ChallengeId, user: &UserId) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.state.lock().unwrap().snapshots.get(&(challenge.clone(), user.clone())).cloned())
    }

    async fn participants(&self, challenge: &ChallengeId) -> Result<Vec<Participant>, StoreError> {
        let state = self.state.lock().unwrap();
        Ok(state.participants.values().filter(|p| &p.challenge == challenge).cloned().collect())
    }
}

#[async_trait]
impl ConnectionStore for InMemoryStore {
    async fn get_connection(&self, user: &UserId, provider: Provider) -> Result<Option<Connection>, StoreError> {
        Ok(self.state.lock().unwrap().connections.get(&(user.clone(), provider)).map(|(c, _)| c.clone()))
    }

    async fn list_connections(&self, user: &UserId) -> Result<Vec<Connection>, StoreError> {
        let state = self.state.lock().unwrap();
        let mut all: Vec<Connection> =
            state.connections.values().filter(|(c, _)| &c.user == user).map(|(c, _)| c.clone()).collect();
        all.sort_by_key(|c| c.provider);
        Ok(all)
    }

    async fn connections_of(&self, users: &[UserId]) -> Result<Vec<Connection>, StoreError> {
        let state = self.state.lock().unwrap();
        let wanted: std::collections::HashSet<&UserId> = users.iter().collect();
        let mut all: Vec<Connection> =
            state.connections.values().filter(|(c, _)| wanted.contains(&c.user)).map(|(c, _)| c.clone()).collect();
        all.sort_by(|a, b| (&a.user, a.provider).cmp(&(&b.user, b.provider)));
        Ok(all)
    }

    async fn due_connections(
        &self,
        shard: u16,
        now: Timestamp,
        after: Option<&Connection>,
        limit: usize,
    ) -> Result<Vec<Connection>, StoreError> {
        let state = self.state.lock().unwrap();
        // As GSI1 orders them: due time, then the table key.
        let order = |c: &Connection| (c.next_sync_at, c.user.clone(), c.provider);
        let from = after.map(order);
        let mut due: Vec<Connection> = state
            .connections
            .values()
            .map(|(c, _)| c)
            .filter(|c| c.status == ConnectionStatus::Active && crate::domain::shard_of(&c.user, c.provider) == shard)
            .filter(|c| c.next_sync_at.is_some_and(|at| at <= now))
            .filter(|c| from.as_ref().is_none_or(|from| order(c) > *from))
            .cloned()
            .collect();
        due.sort_by_key(order);
        due.truncate(limit);
        Ok(due)
    }

    async fn slot_connections(
        &self,
        slot: crate::domain::DueSlot,
        after: Option<&(UserId, Provider)>,
        limit: usize,
    ) -> Result<Vec<Connection>, StoreError> {
        let state = self.state.lock().unwrap();
        // As GSI1 orders a slot: by `{user}#{provider}`.
        let order = |user: &UserId, provider: Provider| format!("{user}#{provider}");
        let from = after.map(|(u, p)| order(u, *p));
        let mut found: Vec<Connection> = state
            .connections
            .values()
            .map(|(c, _)| c)
            .filter(|c| c.status == ConnectionStatus::Active && c.next_sync_at.is_none() && c.slot == Some(slot))
            .filter(|c| from.as_ref().is_none_or(|from| order(&c.user, c.provider) > *from))
            .cloned()
            .collect();
        found.sort_by_key(|c| order(&c.user, c.provider));
        found.truncate(limit);
        Ok(found)
    }

    async fn sweep_cursor(&self, shard: u16, cycle: u32) -> Result<Option<SweepCursor>, StoreError> {
        Ok(self.state.lock().unwrap().sweeps.get(&(shard, cycle)).cloned())
    }

    async fn save_sweep_cursor(&self, shard: u16, cycle: u32, cursor: &SweepCursor) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        state.sweeps.insert((shard, cycle), cursor.clone());
        state.writes += 1;
        Ok(())
    }

    async fn fence_fetch(&self, user: &UserId, provider: Provider, fence: &FetchFence) -> Result<Fenced, StoreError> {
        let mut state = self.state.lock().unwrap();
        let key = (user.clone(), provider);
        let Some((connection, _)) = state.connections.get(&key) else { return Ok(Fenced::NoConnection) };
        let connection = connection.clone();
        // As the DynamoDB adapter's condition (times compared at its millisecond precision).
        let ms = |at: Timestamp| at.as_millisecond();
        let covered = state.fences.get(&key).is_some_and(|last| {
            ms(last.now) >= ms(fence.noticed_at)
                && last.start <= fence.start
                && last.end >= fence.end
                && last.notice_id != fence.notice_id
        });
        state.writes += 1;
        if covered {
            return Ok(Fenced::Covered);
        }
        state.fences.insert(key, fence.clone());
        Ok(Fenced::Fetch(Box::new(connection)))
    }

    async fn create_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        let key = (connection.user.clone(), connection.provider);
        if state.connections.contains_key(&key) {
            return Err(StoreError::AlreadyExists("connection"));
        }
        state.connections.insert(key, (connection.clone(), None));
        state.writes += 1;
        Ok(())
    }

    async fn store_tokens(
        &self,
        user: &UserId,
        provider: Provider,
        tokens: &EncryptedTokens,
        expected_version: u64,
    ) -> Result<u64, StoreError> {
        let mut state = self.state.lock().unwrap();
        let (conn, lease) =
            state.connections.get_mut(&(user.clone(), provider)).ok_or(StoreError::NotFound("connection"))?;
        if conn.status == ConnectionStatus::Disconnected {
            return Err(StoreError::Disconnected);
        }
        if conn.token_version != expected_version {
            return Err(StoreError::Conflict);
        }
        conn.tokens = Some(tokens.clone());
        conn.token_version += 1;
        let version = conn.token_version;
        // The same write frees the refresh lease.
        *lease = None;
        state.writes += 1;
        Ok(version)
    }

    async fn acquire_lease(
        &self,
        user: &UserId,
        provider: Provider,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut state = self.state.lock().unwrap();
        let (_, lease) =
            state.connections.get_mut(&(user.clone(), provider)).ok_or(StoreError::NotFound("connection"))?;
        let free = lease.as_ref().is_none_or(|(h, expires)| *expires <= now || h == holder);
        if free {
            *lease = Some((holder.to_owned(), now.checked_add(ttl).unwrap_or(Timestamp::MAX)));
        }
        Ok(free)
    }

    async fn release_lease(&self, user: &UserId, provider: Provider, holder: &str) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        if let Some((_, lease)) = state.connections.get_mut(&(user.clone(), provider))
            && lease.as_ref().is_some_and(|(h, _)| h == holder)
        {
            *lease = None;
        }
        Ok(())
    }

    async fn record_sync(&self, user: &UserId, provider: Provider, record: &SyncRecord) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        let (conn, _) =
            state.connections.get_mut(&(user.clone(), provider)).ok_or(StoreError::NotFound("connection"))?;
        if conn.status == ConnectionStatus::Disconnected {
            return Err(StoreError::Disconnected);
        }
        if record.token_version.is_some_and(|v| v != conn.token_version) {
            return Err(StoreError::Conflict);
        }
        conn.last_attempt_at = record.attempted_at.or(conn.last_attempt_at);
        conn.last_success_at = record.succeeded_at.or(conn.last_success_at);
        // As the DynamoDB adapter: a date given is stored (callers pass only a newer one).
        conn.last_data_date = record.last_data_date.or(conn.last_data_date);
        conn.last_device_sync_at = record.last_device_sync_at.or(conn.last_device_sync_at);
        conn.last_new_data_at = record.last_new_data_at.or(conn.last_new_data_at);
        if let Some(error) = &record.last_error {
            conn.last_error = error.clone();
        }
        conn.status = record.status.unwrap_or(conn.status);
        conn.next_sync_at = record.next_sync_at.or(conn.next_sync_at);
        if let (None, Some(slot)) = (record.next_sync_at, record.slot)
            && record.status.is_none_or(|s| s == ConnectionStatus::Active)
        {
            conn.slot = Some(slot);
            conn.next_sync_at = None;
        }
        state.writes += 1;
        Ok(())
    }

    async fn claim_provider_account(
        &self,
        provider: Provider,
        account: &str,
        user: &UserId,
    ) -> Result<AccountClaim, StoreError> {
        let mut state = self.state.lock().unwrap();
        let key = (provider, account.to_owned());
        let previous = state.owners.get(&key);
        let hold = AccountHold::claimed(previous, user).ok_or(StoreError::AccountOwnedByAnother)?;
        let claim = AccountClaim { counts_from: hold.counts_from };
        if previous != Some(&hold) {
            state.owners.insert(key, hold);
            state.writes += 1;
        }
        Ok(claim)
    }

    async fn release_provider_account(
        &self,
        provider: Provider,
        account: &str,
        user: &UserId,
        counted_through: LocalDate,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        let key = (provider, account.to_owned());
        if let Some(released) = state.owners.get(&key).and_then(|h| h.released(user, counted_through)) {
            state.owners.insert(key, released);
            state.writes += 1;
        }
        Ok(())
    }

    async fn provider_account_owner(&self, provider: Provider, account: &str) -> Result<Option<UserId>, StoreError> {
        let state = self.state.lock().unwrap();
        Ok(state.owners.get(&(provider, account.to_owned())).and_then(|h| h.holder().cloned()))
    }

    async fn save_connection(&self, connection: &Connection, expected_version: Option<u64>) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        state.refusal(Refusable::SaveConnection)?;
        let key = (connection.user.clone(), connection.provider);
        match (state.connections.get(&key), expected_version) {
            (None, None) => {}
            (Some(_), None) => return Err(StoreError::AlreadyExists("connection")),
            (Some((current, _)), Some(v)) if current.token_version == v => {}
            _ => return Err(StoreError::Conflict),
        }
        state.connections.insert(key, (connection.clone(), None));
        state.writes += 1;
        Ok(())
    }

    async fn subscriptions(&self, provider: Provider) -> Result<Option<StoredSubscriptions>, StoreError> {
        Ok(self.state.lock().unwrap().subscriptions.get(&provider).cloned())
    }

    async fn save_subscriptions(&self, provider: Provider, stored: &StoredSubscriptions) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        state.writes += 1;
        state.subscriptions.insert(provider, stored.clone());
        Ok(())
    }

    async fn record_subscription_check(
        &self,
        user: &UserId,
        provider: Provider,
        check: &SubscriptionCheck,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        let (conn, _) =
            state.connections.get_mut(&(user.clone(), provider)).ok_or(StoreError::NotFound("connection"))?;
        conn.subscription_checked_at = Some(check.checked_at);
        conn.subscription_lapsed_at = check.lapsed_since;
        state.writes += 1;
        Ok(())
    }

    async fn disconnect(&self, user: &UserId, provider: Provider) -> Result<Option<Connection>, StoreError> {
        let mut state = self.state.lock().unwrap();
        let Some((conn, lease)) = state.connections.get_mut(&(user.clone(), provider)) else {
            return Ok(None);
        };
        let before = conn.clone();
        conn.status = ConnectionStatus::Disconnected;
        conn.tokens = None;
        conn.token_version += 1;
        conn.next_sync_at = None;
        conn.installs.clear();
        *lease = None;
        state.writes += 1;
        Ok(Some(before))
    }
}

#[async_trait]
impl EphemeralStore for InMemoryStore {
    async fn put_oauth_state(&self, oauth: &OAuthState) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        if state.oauth.contains_key(&oauth.id) {
            return Err(StoreError::AlreadyExists("oauth state"));
        }
        state.oauth.insert(oauth.id.clone(), oauth.clone());
        Ok(())
    }

    async fn take_oauth_state(&self, id: &str) -> Result<Option<OAuthState>, StoreError> {
        Ok(self.state.lock().unwrap().oauth.remove(id))
    }

    async fn claim_once(&self, key: &str, now: Timestamp, ttl: Duration) -> Result<bool, StoreError> {
        let mut state = self.state.lock().unwrap();
        state.refusal(Refusable::ClaimOnce)?;
        let free = state.dedupe.get(key).is_none_or(|expires| *expires <= now);
        if free {
            state.dedupe.insert(key.to_owned(), now.checked_add(ttl).unwrap_or(Timestamp::MAX));
        }
        Ok(free)
    }

    async fn claim_expiry(&self, key: &str) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.state.lock().unwrap().dedupe.get(key).copied())
    }

    async fn release_claim(&self, key: &str) -> Result<(), StoreError> {
        self.state.lock().unwrap().dedupe.remove(key);
        Ok(())
    }

    async fn window_count(&self, key: &str, window_end: Timestamp) -> Result<u32, StoreError> {
        Ok(self.state.lock().unwrap().windows.get(&(key.to_owned(), window_end)).copied().unwrap_or(0))
    }

    async fn count_in_window(&self, key: &str, window_end: Timestamp) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        state.writes += 1;
        *state.windows.entry((key.to_owned(), window_end)).or_default() += 1;
        Ok(())
    }

    async fn take_in_window(&self, key: &str, window_end: Timestamp, limit: u32) -> Result<bool, StoreError> {
        let mut state = self.state.lock().unwrap();
        let count = state.windows.entry((key.to_owned(), window_end)).or_default();
        if *count >= limit {
            return Ok(false);
        }
        *count += 1;
        state.writes += 1;
        Ok(true)
    }
}

#[async_trait]
impl ReminderStore for InMemoryStore {
    async fn claim_reminder(
        &self,
        subject: &ReminderSubject,
        holder: &str,
        now: Timestamp,
        period: Duration,
    ) -> Result<ReminderClaim, StoreError> {
        let mut state = self.state.lock().unwrap();
        state.refusal(Refusable::ClaimReminder)?;
        let cutoff = now.checked_sub(period).unwrap_or(Timestamp::MIN);
        if let Some((_, sent_at)) = state.reminders.get(subject)
            && *sent_at > cutoff
        {
            return Ok(ReminderClaim::SentAt(*sent_at));
        }
        state.reminders.insert(subject.clone(), (holder.to_owned(), now));
        state.writes += 1;
        Ok(ReminderClaim::Claimed)
    }

    async fn release_reminder(&self, subject: &ReminderSubject, holder: &str) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap();
        if state.reminders.get(subject).is_some_and(|(h, _)| h == holder) {
            state.reminders.remove(subject);
            state.writes += 1;
        }
        Ok(())
    }
}
