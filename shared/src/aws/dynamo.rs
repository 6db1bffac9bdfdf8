//! `DynamoStore`: every store port over one DynamoDB table. Each write that must not race is
//! one conditional request; a changed day and the totals it moves are one transaction.

use super::items::*;
use crate::domain::{
    Challenge, ChallengeId, Connection, ConnectionStatus, DayRecord, EncryptedTokens, LocalDate, OAuthState,
    Participant, ParticipantTotals, Provider, UserId, UserProfile,
};
use crate::ports::{
    ChallengeStore, ConnectionStore, DayWrite, EphemeralStore, JoinWrite, LeaveWrite, StepStore, StoreError,
    SyncRecord, UserDays,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, ReturnValue, TransactWriteItem, Update,
};
use jiff::Timestamp;
use std::collections::HashMap;
use std::time::Duration;

/// The one global secondary index (scheduler shards, the challenge directory).
const GSI1: &str = "GSI1";
/// BatchGetItem takes at most this many keys per request.
const BATCH_GET_LIMIT: usize = 100;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn get(&self, pk: String, sk: impl Into<String>) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out.item)
    }

    async fn get_profile(&self, user: &UserId) -> Result<UserProfile, StoreError> {
        match self.get(user_pk(user), PROFILE_SK).await? {
            Some(item) => from_item::<ProfileItem>(item)?.into_profile(),
            None => Ok(UserProfile::default()),
        }
    }

    /// Puts an item that must not exist yet; `AlreadyExists(what)` when it does.
    async fn put_new(&self, item: Item, what: &'static str) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result.map_err(store_error) {
            Err(StoreError::Conflict) => Err(StoreError::AlreadyExists(what)),
            other => other.map(|_| ()),
        }
    }

    /// Consistent BatchGetItem of `keys`, following `UnprocessedKeys`.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(BATCH_GET_LIMIT) {
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            for attempt in 0..10u32 {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request.clone())
                    .send()
                    .await
                    .map_err(store_error)?;
                found.extend(out.responses.unwrap_or_default().remove(&self.table).unwrap_or_default());
                match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    Some(rest) if !rest.keys().is_empty() => {
                        request = rest;
                        tokio::time::sleep(Duration::from_millis(10 << attempt.min(6))).await;
                    }
                    _ => break,
                }
            }
        }
        Ok(found)
    }

    /// Every item a key condition matches, on the table (consistent) or on GSI1, following
    /// pages, up to `limit` items.
    async fn query(
        &self,
        index: Option<&str>,
        condition: &str,
        values: &[(&str, AttributeValue)],
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        while items.len() < limit {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(condition)
                .set_exclusive_start_key(start)
                .limit(i32::try_from(limit - items.len()).unwrap_or(i32::MAX));
            request = match index {
                Some(index) => request.index_name(index),
                None => request.consistent_read(true),
            };
            for (name, value) in values {
                request = request.expression_attribute_values(*name, value.clone());
            }
            let out = request.send().await.map_err(store_error)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(items)
    }

    /// Every item of partition `pk` whose sort key is from `from` to `to`.
    async fn query_all(&self, pk: String, from: String, to: String) -> Result<Vec<Item>, StoreError> {
        let values = [(":pk", s(pk)), (":from", s(from)), (":to", s(to))];
        self.query(None, "pk = :pk AND sk BETWEEN :from AND :to", &values, usize::MAX).await
    }

    /// Every item of partition `pk` whose sort key starts with `{prefix}#` (`$` follows `#`).
    async fn query_prefix(&self, pk: String, prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.query_all(pk, format!("{prefix}#"), format!("{prefix}$")).await
    }

    /// The profile update every day write carries: check `rev`, move it on.
    fn profile_rev_update(&self, user: &UserId, expected_rev: u64) -> Result<TransactWriteItem, StoreError> {
        let (condition, values) = rev_condition(expected_rev);
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), PROFILE_SK)))
            .update_expression("SET rev = :next_rev")
            .condition_expression(condition)
            .expression_attribute_values(":next_rev", n(expected_rev + 1));
        for (k, v) in values {
            update = update.expression_attribute_values(k, v);
        }
        Ok(TransactWriteItem::builder().update(update.build().map_err(build_error)?).build())
    }

    fn profile_put(
        &self,
        user: &UserId,
        profile: &UserProfile,
        expected_rev: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let (condition, values) = rev_condition(expected_rev);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&ProfileItem::from_profile(user, profile))?))
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values.into_iter().collect()))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TransactFailure> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(|_| ())
            .map_err(transact_failure)
    }

    async fn participant_closes_at(&self, challenge: &ChallengeId) -> Result<Timestamp, StoreError> {
        let item = self.get(challenge_pk(challenge), META_SK).await?.ok_or(StoreError::NotFound("challenge"))?;
        Ok(from_item::<ChallengeItem>(item)?.into_challenge().closes_at())
    }
}

/// A conditional write's outcome as "did we win": a failed condition is a plain `false`.
fn won<T>(result: Result<T, StoreError>) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The condition that the profile is still at `expected_rev` (0: no profile yet).
fn rev_condition(expected_rev: u64) -> (&'static str, Vec<(String, AttributeValue)>) {
    if expected_rev == 0 {
        ("attribute_not_exists(rev) OR rev = :zero", vec![(":zero".to_owned(), n(0))])
    } else {
        ("rev = :rev", vec![(":rev".to_owned(), n(expected_rev))])
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Corrupt(format!("request could not be built: {e}"))
}

/// Maps an SDK error to the store's: a failed condition is a conflict, throttling and
/// transport trouble are retryable, anything else is a refusal worth a loud log.
fn store_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().unwrap_or("").to_owned();
    match code.as_str() {
        "ConditionalCheckFailedException" => StoreError::Conflict,
        "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "InternalServerError"
        | "ServiceUnavailable"
        | "TransactionInProgressException" => StoreError::Unavailable(code),
        "" => StoreError::Unavailable(format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&err))),
        _ => {
            let message = err.message().unwrap_or("").to_owned();
            tracing::error!(code, message, "DynamoDB refused a request");
            StoreError::Unavailable(format!("{code}: {message}"))
        }
    }
}

/// Why a transaction did not commit: which items' conditions failed, or another error.
enum TransactFailure {
    /// Indexes of the items whose condition failed, or that conflicted with another write.
    Cancelled(Vec<usize>),
    Other(StoreError),
}

fn transact_failure(
    err: SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_smithy_runtime_api::http::Response,
    >,
) -> TransactFailure {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    if let Some(E::TransactionCanceledException(cancelled)) = err.as_service_error() {
        let failed: Vec<usize> = cancelled
            .cancellation_reasons()
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.code(), Some("ConditionalCheckFailed" | "TransactionConflict")))
            .map(|(i, _)| i)
            .collect();
        if !failed.is_empty() {
            return TransactFailure::Cancelled(failed);
        }
        // Some emulators put the reasons only in the message.
        let message = cancelled.message().unwrap_or("");
        if message.contains("ConditionalCheckFailed") || message.contains("TransactionConflict") {
            return TransactFailure::Cancelled(Vec::new());
        }
        return TransactFailure::Other(StoreError::Unavailable(format!("transaction cancelled: {message}")));
    }
    TransactFailure::Other(store_error(err))
}

impl From<TransactFailure> for StoreError {
    fn from(f: TransactFailure) -> Self {
        match f {
            TransactFailure::Cancelled(_) => StoreError::Conflict,
            TransactFailure::Other(e) => e,
        }
    }
}

#[async_trait]
impl StepStore for DynamoStore {
    async fn load_user_days(&self, user: &UserId, dates: &[LocalDate]) -> Result<UserDays, StoreError> {
        let pk = user_pk(user);
        let mut keys = vec![key(pk.clone(), PROFILE_SK)];
        let mut unique: Vec<LocalDate> = dates.to_vec();
        unique.sort();
        unique.dedup();
        keys.extend(unique.iter().map(|d| key(pk.clone(), day_sk(*d))));
        let mut result = UserDays::default();
        for item in self.batch_get(keys).await? {
            let sk = item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            if sk == PROFILE_SK {
                result.profile = from_item::<ProfileItem>(item)?.into_profile()?;
            } else {
                let day = from_item::<DayItem>(item)?.into_record()?;
                result.days.insert(day.date, day);
            }
        }
        Ok(result)
    }

    async fn load_user_window(&self, user: &UserId, start: LocalDate, end: LocalDate) -> Result<UserDays, StoreError> {
        // The profile first: a day write after this read moves `rev`, so a write conditioned
        // on the `rev` read here can never miss a day the query below did not see.
        let profile = self.get_profile(user).await?;
        let days = self
            .query_all(user_pk(user), day_sk(start), day_sk(end))
            .await?
            .into_iter()
            .map(|item| from_item::<DayItem>(item)?.into_record())
            .collect::<Result<Vec<DayRecord>, _>>()?;
        Ok(UserDays { profile, days: days.into_iter().map(|d| (d.date, d)).collect() })
    }

    async fn commit_day(&self, write: &DayWrite) -> Result<(), StoreError> {
        let user = &write.record.user;
        let mut day = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&DayItem::from_record(&write.record, write.now))?));
        day = if write.expected_version == 0 {
            day.condition_expression("attribute_not_exists(pk)")
        } else {
            day.condition_expression("#version = :version")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":version", n(write.expected_version))
        };
        let mut items = vec![
            TransactWriteItem::builder().put(day.build().map_err(build_error)?).build(),
            self.profile_rev_update(user, write.expected_rev)?,
        ];
        for delta in &write.deltas {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(challenge_pk(&delta.challenge), participant_sk(user))))
                .update_expression("ADD #total :total, #days :days")
                .expression_attribute_names("#total", "total")
                .expression_attribute_names("#days", "days")
                // Never create a participant (one who left), never move a final challenge.
                .condition_expression("attribute_exists(pk) AND closes_at > :now")
                .expression_attribute_values(":total", n(delta.total))
                .expression_attribute_values(":days", n(delta.days))
                .expression_attribute_values(":now", n(write.now.as_second()))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        self.transact(items).await.map_err(StoreError::from)
    }

    async fn set_primary_source(
        &self,
        user: &UserId,
        primary: Option<Provider>,
        expected_rev: u64,
    ) -> Result<(), StoreError> {
        let (condition, values) = rev_condition(expected_rev);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), PROFILE_SK)))
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values.into_iter().collect()))
            .expression_attribute_values(":next_rev", n(expected_rev + 1));
        update = match primary {
            Some(p) => update
                .update_expression("SET #primary = :primary, rev = :next_rev")
                .expression_attribute_values(":primary", s(p.as_str())),
            None => update.update_expression("SET rev = :next_rev REMOVE #primary"),
        };
        update.expression_attribute_names("#primary", "primary").send().await.map_err(store_error)?;
        Ok(())
    }
}

#[async_trait]
impl ChallengeStore for DynamoStore {
    async fn create_challenge(&self, challenge: &Challenge) -> Result<(), StoreError> {
        self.put_new(to_item(&ChallengeItem::from_challenge(challenge))?, "challenge").await
    }

    async fn get_challenge(&self, id: &ChallengeId) -> Result<Option<Challenge>, StoreError> {
        self.get(challenge_pk(id), META_SK)
            .await?
            .map(|item| from_item::<ChallengeItem>(item).map(ChallengeItem::into_challenge))
            .transpose()
    }

    async fn list_challenges(&self, ending_from: LocalDate) -> Result<Vec<Challenge>, StoreError> {
        let values = [(":pk", s(CHALLENGES_GSI_PK)), (":from", s(ending_from.to_string()))];
        self.query(Some(GSI1), "gsi1pk = :pk AND gsi1sk >= :from", &values, usize::MAX)
            .await?
            .into_iter()
            .map(|item| from_item::<ChallengeItem>(item).map(ChallengeItem::into_challenge))
            .collect()
    }

    async fn commit_join(&self, write: &JoinWrite) -> Result<(), StoreError> {
        let p = &write.participant;
        let closes_at = self.participant_closes_at(&p.challenge).await?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&ParticipantItem::from_participant(p, closes_at))?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.profile_put(&p.user, &write.profile, write.expected_rev)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Cancelled(failed)) if failed.contains(&0) => {
                Err(StoreError::AlreadyExists("participant"))
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn commit_leave(&self, write: &LeaveWrite) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(challenge_pk(&write.challenge), participant_sk(&write.user))))
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.profile_put(&write.user, &write.profile, write.expected_rev)?,
        ];
        self.transact(items).await.map_err(StoreError::from)
    }

    async fn commit_totals(
        &self,
        challenge: &ChallengeId,
        user: &UserId,
        totals: ParticipantTotals,
        expected_rev: u64,
    ) -> Result<(), StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(challenge_pk(challenge), participant_sk(user))))
            .update_expression("SET #total = :total, #days = :days")
            .expression_attribute_names("#total", "total")
            .expression_attribute_names("#days", "days")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":total", n(totals.total))
            .expression_attribute_values(":days", n(totals.days))
            .build()
            .map_err(build_error)?;
        let (condition, values) = rev_condition(expected_rev);
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), PROFILE_SK)))
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values.into_iter().collect()))
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().condition_check(check).build(),
        ];
        self.transact(items).await.map_err(StoreError::from)
    }

    async fn participant(&self, challenge: &ChallengeId, user: &UserId) -> Result<Option<Participant>, StoreError> {
        self.get(challenge_pk(challenge), participant_sk(user))
            .await?
            .map(|item| from_item::<ParticipantItem>(item).map(ParticipantItem::into_participant))
            .transpose()
    }

    async fn participants(&self, challenge: &ChallengeId) -> Result<Vec<Participant>, StoreError> {
        self.query_prefix(challenge_pk(challenge), "PART")
            .await?
            .into_iter()
            .map(|item| from_item::<ParticipantItem>(item).map(ParticipantItem::into_participant))
            .collect()
    }
}

#[async_trait]
impl ConnectionStore for DynamoStore {
    async fn get_connection(&self, user: &UserId, provider: Provider) -> Result<Option<Connection>, StoreError> {
        self.get(user_pk(user), conn_sk(provider))
            .await?
            .map(|item| from_item::<ConnectionItem>(item).map(ConnectionItem::into_connection))
            .transpose()
    }

    async fn list_connections(&self, user: &UserId) -> Result<Vec<Connection>, StoreError> {
        self.query_prefix(user_pk(user), "CONN")
            .await?
            .into_iter()
            .map(|item| from_item::<ConnectionItem>(item).map(ConnectionItem::into_connection))
            .collect()
    }

    async fn due_connections(&self, shard: u16, now: Timestamp, limit: usize) -> Result<Vec<Connection>, StoreError> {
        let values = [(":pk", s(due_pk(shard))), (":now", s(due_sk(now)))];
        self.query(Some(GSI1), "gsi1pk = :pk AND gsi1sk <= :now", &values, limit)
            .await?
            .into_iter()
            .map(|item| from_item::<ConnectionItem>(item).map(ConnectionItem::into_connection))
            .collect()
    }

    async fn create_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        self.put_new(to_item(&ConnectionItem::from_connection(connection))?, "connection").await
    }

    async fn store_tokens(
        &self,
        user: &UserId,
        provider: Provider,
        tokens: &EncryptedTokens,
        expected_version: u64,
    ) -> Result<u64, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), conn_sk(provider))))
            .update_expression("SET tokens = :tokens, token_version = :next")
            .condition_expression("token_version = :expected AND #status <> :disconnected")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":tokens", s(tokens.0.clone()))
            .expression_attribute_values(":next", n(expected_version + 1))
            .expression_attribute_values(":expected", n(expected_version))
            .expression_attribute_values(":disconnected", s(ConnectionStatus::Disconnected.as_str()))
            .send()
            .await;
        match result.map_err(store_error) {
            Ok(_) => Ok(expected_version + 1),
            // Say which condition failed: the caller acts differently on each.
            Err(StoreError::Conflict) => match self.get_connection(user, provider).await? {
                None => Err(StoreError::NotFound("connection")),
                Some(c) if c.status == ConnectionStatus::Disconnected => Err(StoreError::Disconnected),
                Some(_) => Err(StoreError::Conflict),
            },
            Err(e) => Err(e),
        }
    }

    async fn acquire_lease(
        &self,
        user: &UserId,
        provider: Provider,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let expires = now.checked_add(ttl).unwrap_or(Timestamp::MAX);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), conn_sk(provider))))
            .update_expression("SET lease_holder = :holder, lease_expires_at = :expires")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(lease_expires_at) OR lease_expires_at <= :now OR lease_holder = :holder)",
            )
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":expires", n(expires.as_millisecond()))
            .expression_attribute_values(":now", n(now.as_millisecond()))
            .send()
            .await;
        won(result.map_err(store_error))
    }

    async fn release_lease(&self, user: &UserId, provider: Provider, holder: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), conn_sk(provider))))
            .update_expression("REMOVE lease_holder, lease_expires_at")
            .condition_expression("lease_holder = :holder")
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        match result.map_err(store_error) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn record_sync(&self, user: &UserId, provider: Provider, record: &SyncRecord) -> Result<(), StoreError> {
        // (attribute, value) pairs to SET; attribute names go through `#n{i}` placeholders.
        let mut sets: Vec<(&str, AttributeValue)> = Vec::new();
        let mut removes: Vec<&str> = Vec::new();
        let mut stamp = |name: &'static str, at: Option<Timestamp>| {
            if let Some(at) = at {
                sets.push((name, s(at.to_string())));
            }
        };
        stamp("last_attempt_at", record.attempted_at);
        stamp("last_success_at", record.succeeded_at);
        stamp("last_device_sync_at", record.last_device_sync_at);
        stamp("last_new_data_at", record.last_new_data_at);
        stamp("next_sync_at", record.next_sync_at);
        if let Some(date) = record.last_data_date {
            sets.push(("last_data_date", s(date.to_string())));
        }
        if let Some(status) = record.status {
            sets.push(("status", s(status.as_str())));
        }
        match &record.last_error {
            Some(Some(error)) => sets.push(("last_error", AttributeValue::M(to_item(error)?))),
            Some(None) => removes.push("last_error"),
            None => {}
        }
        if record.status.is_some_and(|s| s != ConnectionStatus::Active) {
            // Leave the scheduler's sparse index: nothing is due until the person acts.
            removes.extend(["gsi1pk", "gsi1sk"]);
        } else if let Some(at) = record.next_sync_at {
            sets.push(("gsi1pk", s(due_pk(shard_of(user, provider)))));
            sets.push(("gsi1sk", s(due_sk(at))));
        }
        let mut names: HashMap<String, String> = HashMap::from([("#status".to_owned(), "status".to_owned())]);
        let mut values: HashMap<String, AttributeValue> =
            HashMap::from([(":disconnected".to_owned(), s(ConnectionStatus::Disconnected.as_str()))]);
        let mut clauses = Vec::new();
        for (i, (name, value)) in sets.into_iter().enumerate() {
            names.insert(format!("#n{i}"), name.to_owned());
            values.insert(format!(":v{i}"), value);
            clauses.push(format!("#n{i} = :v{i}"));
        }
        let mut expression = if clauses.is_empty() { String::new() } else { format!("SET {}", clauses.join(", ")) };
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        if expression.is_empty() {
            return Ok(());
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), conn_sk(provider))))
            .update_expression(expression.trim())
            .condition_expression("attribute_exists(pk) AND #status <> :disconnected")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result.map_err(store_error) {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict) => match self.get_connection(user, provider).await? {
                None => Err(StoreError::NotFound("connection")),
                Some(_) => Err(StoreError::Disconnected),
            },
            Err(e) => Err(e),
        }
    }

    async fn claim_provider_account(&self, provider: Provider, account: &str, user: &UserId) -> Result<(), StoreError> {
        let owner = OwnerItem {
            pk: account_pk(provider, account),
            sk: OWNER_SK.to_owned(),
            user: user.clone(),
            provider,
            account: account.to_owned(),
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&owner)?))
            .condition_expression("attribute_not_exists(pk) OR #user = :user")
            .expression_attribute_names("#user", "user")
            .expression_attribute_values(":user", s(user.as_str()))
            .send()
            .await;
        match result.map_err(store_error) {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict) => Err(StoreError::AccountOwnedByAnother),
            Err(e) => Err(e),
        }
    }

    async fn release_provider_account(
        &self,
        provider: Provider,
        account: &str,
        user: &UserId,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(account_pk(provider, account), OWNER_SK)))
            .condition_expression("#user = :user")
            .expression_attribute_names("#user", "user")
            .expression_attribute_values(":user", s(user.as_str()))
            .send()
            .await;
        match result.map_err(store_error) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn provider_account_owner(&self, provider: Provider, account: &str) -> Result<Option<UserId>, StoreError> {
        self.get(account_pk(provider, account), OWNER_SK)
            .await?
            .map(|item| from_item::<OwnerItem>(item).map(|o| o.user))
            .transpose()
    }

    async fn save_connection(&self, connection: &Connection, expected_version: Option<u64>) -> Result<(), StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&ConnectionItem::from_connection(connection))?));
        let put = match expected_version {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => {
                put.condition_expression("token_version = :expected").expression_attribute_values(":expected", n(v))
            }
        };
        match put.send().await.map_err(store_error) {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict) if expected_version.is_none() => Err(StoreError::AlreadyExists("connection")),
            Err(e) => Err(e),
        }
    }

    async fn disconnect(&self, user: &UserId, provider: Provider) -> Result<Option<Connection>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), conn_sk(provider))))
            .update_expression(
                "SET #status = :disconnected, token_version = token_version + :one \
                 REMOVE tokens, gsi1pk, gsi1sk, next_sync_at, lease_holder, lease_expires_at",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":disconnected", s(ConnectionStatus::Disconnected.as_str()))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result.map_err(store_error) {
            Ok(out) => out
                .attributes
                .map(|item| from_item::<ConnectionItem>(item).map(ConnectionItem::into_connection))
                .transpose(),
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl EphemeralStore for DynamoStore {
    async fn put_oauth_state(&self, state: &OAuthState) -> Result<(), StoreError> {
        self.put_new(to_item(&OAuthStateItem::from_state(state))?, "oauth state").await
    }

    async fn take_oauth_state(&self, id: &str) -> Result<Option<OAuthState>, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(oauth_pk(id), OAUTH_SK)))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result.map_err(store_error) {
            Ok(out) => out.attributes.map(|item| from_item::<OAuthStateItem>(item)?.into_state()).transpose(),
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn claim_once(&self, key_name: &str, now: Timestamp, ttl: Duration) -> Result<bool, StoreError> {
        let expires = now.checked_add(ttl).unwrap_or(Timestamp::MAX);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(dedupe_pk(key_name)))
            .item("sk", s(DEDUPE_SK))
            .item("expires_at", n(expires.as_second()))
            // TTL deletion lags: an expired record still in the table counts as absent.
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(now.as_second()))
            .send()
            .await;
        won(result.map_err(store_error))
    }

    async fn claim_expiry(&self, key_name: &str) -> Result<Option<Timestamp>, StoreError> {
        let Some(item) = self.get(dedupe_pk(key_name), DEDUPE_SK).await? else { return Ok(None) };
        let seconds = item.get("expires_at").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok());
        Ok(seconds.and_then(|s| Timestamp::from_second(s).ok()))
    }

    async fn release_claim(&self, key_name: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(dedupe_pk(key_name), DEDUPE_SK)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
