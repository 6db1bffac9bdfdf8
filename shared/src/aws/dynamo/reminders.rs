//! The reminders port over DynamoDB: one conditional put per reminder and period, which
//! answers the record it lost to (`ReturnValuesOnConditionCheckFailure`), never a read first.

use super::*;
use crate::ports::{ReminderClaim, ReminderStore, ReminderSubject};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

/// When the record says its reminder was sent (`sent_at`, epoch milliseconds).
fn sent_at(item: &Item) -> Option<Timestamp> {
    let millis = item.get("sent_at")?.as_n().ok()?.parse::<i64>().ok()?;
    Timestamp::from_millisecond(millis).ok()
}

#[async_trait]
impl ReminderStore for DynamoStore {
    async fn claim_reminder(
        &self,
        subject: &ReminderSubject,
        holder: &str,
        now: Timestamp,
        period: Duration,
    ) -> Result<ReminderClaim, StoreError> {
        let (pk, sk) = reminder_key(subject);
        let cutoff = now.checked_sub(period).unwrap_or(Timestamp::MIN);
        let expires = now.checked_add(period).unwrap_or(Timestamp::MAX);
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk.clone()))
            .item("sk", s(sk.clone()))
            .item("holder", s(holder))
            .item("sent_at", n(now.as_millisecond()))
            .item("expires_at", n(expires.as_second()));
        put = match subject {
            ReminderSubject::Person { user, provider, code } => {
                put.item("user", s(user.as_str())).item("provider", s(provider.as_str())).item("code", s(code.as_str()))
            }
            ReminderSubject::Digest { challenge } => put.item("challenge", s(challenge.as_str())),
        };
        // TTL deletion lags: a record from an earlier period still in the table counts as absent.
        let result = put
            .condition_expression("attribute_not_exists(pk) OR sent_at <= :cutoff")
            .expression_attribute_values(":cutoff", n(cutoff.as_millisecond()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(ReminderClaim::Claimed),
            Err(error) => error,
        };
        if let Some(PutItemError::ConditionalCheckFailedException(failed)) = error.as_service_error() {
            if let Some(at) = failed.item().and_then(sent_at) {
                return Ok(ReminderClaim::SentAt(at));
            }
            // A store that does not return the record: when it was sent is only told, the
            // decision is made already.
            let at = self.get(pk, sk).await?.as_ref().and_then(sent_at).unwrap_or(now);
            return Ok(ReminderClaim::SentAt(at));
        }
        Err(store_error(error))
    }

    async fn release_reminder(&self, subject: &ReminderSubject, holder: &str) -> Result<(), StoreError> {
        let (pk, sk) = reminder_key(subject);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .condition_expression("#holder = :holder")
            .expression_attribute_names("#holder", "holder")
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        match result.map_err(store_error) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
