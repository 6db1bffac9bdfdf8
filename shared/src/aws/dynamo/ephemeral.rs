//! The ephemeral port over DynamoDB: single-use OAuth states and webhook coalescing claims.

use super::*;

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

    async fn window_count(&self, key_name: &str, window_end: Timestamp) -> Result<u32, StoreError> {
        let Some(item) = self.get(rate_pk(key_name, window_end), RATE_SK).await? else { return Ok(0) };
        let hits = item.get("hits").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok());
        Ok(hits.unwrap_or(0))
    }

    async fn count_in_window(&self, key_name: &str, window_end: Timestamp) -> Result<(), StoreError> {
        // One item per key and window; it expires with its window (TTL).
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(rate_pk(key_name, window_end), RATE_SK)))
            .update_expression("ADD hits :one SET expires_at = :end")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":end", n(window_end.as_second()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn take_in_window(&self, key_name: &str, window_end: Timestamp, limit: u32) -> Result<bool, StoreError> {
        // The same item as `count_in_window`; the condition makes the count and the check one
        // step, so callers in many functions at once never take more than `limit` together.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(rate_pk(key_name, window_end), RATE_SK)))
            .update_expression("ADD hits :one SET expires_at = :end")
            .condition_expression("attribute_not_exists(hits) OR hits < :limit")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":end", n(window_end.as_second()))
            .expression_attribute_values(":limit", n(i64::from(limit)))
            .send()
            .await;
        won(result.map_err(store_error))
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
