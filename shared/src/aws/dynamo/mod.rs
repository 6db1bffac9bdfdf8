//! `DynamoStore`: every store port over one DynamoDB table. Each write that must not race is
//! one conditional request; a changed day is one conditional put, each participant total it
//! moves one conditional update (`engine::counting`).

use super::items::*;
use crate::domain::{
    AccountHold, Challenge, ChallengeId, Connection, ConnectionStatus, DayRecord, EncryptedTokens, LocalDate,
    OAuthState, Participant, Provider, Snapshot, SourceTotals, UserId, UserProfile,
};
use crate::domain::{MAX_TRANSACTION_ITEMS, shard_of};
use crate::ports::{
    AccountClaim, ChallengeStore, ConnectionStore, DayCount, DayWrite, EphemeralStore, JoinWrite, LeaveWrite,
    SealWrite, StepStore, StoreError, SyncRecord, UserDays,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, KeysAndAttributes, Put, ReturnValue, TransactWriteItem, Update, WriteRequest,
};
use jiff::Timestamp;
use std::collections::HashMap;
use std::time::Duration;

mod challenges;
mod connections;
mod ephemeral;
mod reminders;
mod steps;

/// The one global secondary index (scheduler shards, the challenge directory).
const GSI1: &str = "GSI1";
/// The most keys one `BatchGetItem` may ask for.
const BATCH_GET_KEYS: usize = 100;

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

    /// Every item among `keys` that exists, eventually consistent (what an overview reads):
    /// 100 keys to a `BatchGetItem`, asking again for what DynamoDB left unprocessed (with a
    /// short backoff) until none is left. Items come back in no particular order.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        for chunk in keys.chunks(BATCH_GET_KEYS) {
            let mut pending =
                Some(KeysAndAttributes::builder().set_keys(Some(chunk.to_vec())).build().map_err(build_error)?);
            let mut attempt = 0u32;
            while let Some(wanted) = pending.take() {
                if attempt == 8 {
                    return Err(StoreError::Unavailable(format!("{} reads left unprocessed", wanted.keys().len())));
                }
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(50 << (attempt - 1))).await;
                }
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, wanted)
                    .send()
                    .await
                    .map_err(store_error)?;
                items.extend(out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
                pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys().is_empty());
                attempt += 1;
            }
        }
        Ok(items)
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

    /// Deletes the items with these keys, 25 to a `BatchWriteItem`, sending again what DynamoDB
    /// left unprocessed (with a short backoff) until none is left.
    async fn delete_keys(&self, keys: Vec<Item>) -> Result<usize, StoreError> {
        let total = keys.len();
        for chunk in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|k| {
                    let delete = DeleteRequest::builder().set_key(Some(k.clone())).build().map_err(build_error)?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<_, StoreError>>()?;
            for attempt in 0..8u32 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(store_error)?;
                requests = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt == 7 {
                    return Err(StoreError::Unavailable(format!("{} deletes left unprocessed", requests.len())));
                }
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(total)
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
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(TransactFailure::Other(StoreError::Refused(format!(
                "a transaction of {} items is over DynamoDB's {MAX_TRANSACTION_ITEMS}",
                items.len()
            ))));
        }
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
        // A validation error (a transaction over 100 items, say) fails the same way every time.
        _ => {
            let message = err.message().unwrap_or("").to_owned();
            tracing::error!(code, message, "DynamoDB refused a request");
            StoreError::Refused(format!("{code}: {message}"))
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
        if cancelled.cancellation_reasons().iter().any(|r| r.code() == Some("ValidationError")) {
            tracing::error!(message, "DynamoDB refused a transaction item");
            return TransactFailure::Other(StoreError::Refused(format!("transaction refused: {message}")));
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

#[cfg(test)]
mod store_error_tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_smithy_types::error::ErrorMetadata;

    fn answered(code: &str) -> StoreError {
        let error = GetItemError::generic(ErrorMetadata::builder().code(code).message("said DynamoDB").build());
        store_error(SdkError::service_error(error, ()))
    }

    #[test]
    fn throttling_and_server_errors_are_retryable_a_failed_condition_a_conflict_the_rest_refused() {
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
            "InternalServerError",
            "ServiceUnavailable",
            "TransactionInProgressException",
        ] {
            assert!(matches!(answered(code), StoreError::Unavailable(c) if c == code), "{code}");
        }
        assert!(matches!(answered("ConditionalCheckFailedException"), StoreError::Conflict));
        assert!(
            matches!(answered("ValidationException"), StoreError::Refused(m) if m == "ValidationException: said DynamoDB")
        );
    }
}
