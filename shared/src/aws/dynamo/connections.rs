//! The connection port over DynamoDB: connections, tokens, leases, outcomes and provider-account owners.

use super::*;
use crate::domain::DueSlot;
use crate::ports::{Fenced, FetchFence, StoredSubscriptions, SubscriptionCheck, SweepCursor};

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

    async fn connections_of(&self, users: &[UserId]) -> Result<Vec<Connection>, StoreError> {
        // A person's connections are not listed anywhere but their partition, so each
        // source's key is asked for (a missing one costs the least a read costs); many people
        // to a request, where a Query per person would be a request each.
        let keys =
            users.iter().flat_map(|u| Provider::ALL.into_iter().map(move |p| key(user_pk(u), conn_sk(p)))).collect();
        let mut connections = self
            .batch_get(keys)
            .await?
            .into_iter()
            .map(|item| from_item::<ConnectionItem>(item).map(ConnectionItem::into_connection))
            .collect::<Result<Vec<_>, _>>()?;
        connections.sort_by(|a, b| (&a.user, a.provider).cmp(&(&b.user, b.provider)));
        Ok(connections)
    }

    async fn due_connections(
        &self,
        shard: u16,
        now: Timestamp,
        after: Option<&Connection>,
        limit: usize,
    ) -> Result<Vec<Connection>, StoreError> {
        let start = after.and_then(|c| {
            let at = c.next_sync_at?;
            Some(gsi1_start(c, due_pk(shard), due_sk(at)))
        });
        let values = [(":pk", s(due_pk(shard))), (":now", s(due_sk(now)))];
        self.gsi1_page("gsi1pk = :pk AND gsi1sk <= :now", &values, start, limit).await
    }

    async fn slot_connections(
        &self,
        slot: DueSlot,
        after: Option<&(UserId, Provider)>,
        limit: usize,
    ) -> Result<Vec<Connection>, StoreError> {
        let start = after.map(|(user, provider)| {
            let mut key = key(user_pk(user), conn_sk(*provider));
            key.insert("gsi1pk".to_owned(), s(slot_pk(slot)));
            key.insert("gsi1sk".to_owned(), s(slot_sk(user, *provider)));
            key
        });
        self.gsi1_page("gsi1pk = :pk", &[(":pk", s(slot_pk(slot)))], start, limit).await
    }

    async fn sweep_cursor(&self, shard: u16, cycle: u32) -> Result<Option<SweepCursor>, StoreError> {
        self.get(sweep_pk(shard, cycle), SWEEP_SK)
            .await?
            .map(|item| from_item::<SweepCursorItem>(item)?.into_cursor())
            .transpose()
    }

    async fn save_sweep_cursor(&self, shard: u16, cycle: u32, cursor: &SweepCursor) -> Result<(), StoreError> {
        // Written only under the shard's sweep claim: a plain put.
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&SweepCursorItem::from_cursor(shard, cycle, cursor))?))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn fence_fetch(&self, user: &UserId, provider: Provider, fence: &FetchFence) -> Result<Fenced, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), conn_sk(provider))))
            .update_expression("SET fetch_at = :now, fetch_from = :start, fetch_to = :end, fetch_notice = :id")
            // Goes ahead unless a fetch recorded began at or after the notice and covers its
            // dates; a retry of the notice it was written for goes ahead again (its first try may
            // have died).
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(fetch_at) OR fetch_at < :notice \
                 OR fetch_from > :start OR fetch_to < :end OR fetch_notice = :id)",
            )
            .expression_attribute_values(":now", s(due_sk(fence.now)))
            .expression_attribute_values(":notice", s(due_sk(fence.noticed_at)))
            .expression_attribute_values(":id", s(fence.notice_id.clone()))
            .expression_attribute_values(":start", s(fence.start.to_string()))
            .expression_attribute_values(":end", s(fence.end.to_string()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        let returned_old = match &result {
            Err(SdkError::ServiceError(e)) => match e.err() {
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(failed) => {
                    failed.item().is_some_and(|item| !item.is_empty())
                }
                _ => false,
            },
            _ => false,
        };
        match result.map_err(store_error) {
            Ok(out) => match out.attributes {
                Some(item) => Ok(Fenced::Fetch(Box::new(from_item::<ConnectionItem>(item)?.into_connection()))),
                None => Ok(Fenced::NoConnection),
            },
            Err(StoreError::Conflict) if returned_old => Ok(Fenced::Covered),
            // No old item came back: none exists, or an emulator that does not return it.
            Err(StoreError::Conflict) => match self.get_connection(user, provider).await? {
                Some(_) => Ok(Fenced::Covered),
                None => Ok(Fenced::NoConnection),
            },
            Err(e) => Err(e),
        }
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
            .update_expression("SET tokens = :tokens, token_version = :next REMOVE lease_holder, lease_expires_at")
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
        } else if let Some(slot) = record.slot {
            // Back in its slot: no due time any more, swept once a cycle without a write.
            sets.push(("slot", AttributeValue::M(to_item(&slot)?)));
            sets.push(("gsi1pk", s(slot_pk(slot))));
            sets.push(("gsi1sk", s(slot_sk(user, provider))));
            removes.push("next_sync_at");
        }
        let mut names: HashMap<String, String> = HashMap::from([("#status".to_owned(), "status".to_owned())]);
        let mut values: HashMap<String, AttributeValue> =
            HashMap::from([(":disconnected".to_owned(), s(ConnectionStatus::Disconnected.as_str()))]);
        let mut condition = "attribute_exists(pk) AND #status <> :disconnected".to_owned();
        if let Some(version) = record.token_version {
            condition.push_str(" AND token_version = :token_version");
            values.insert(":token_version".to_owned(), n(version));
        }
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
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match result.map_err(store_error) {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict) => match self.get_connection(user, provider).await? {
                None => Err(StoreError::NotFound("connection")),
                Some(c) if c.status == ConnectionStatus::Disconnected => Err(StoreError::Disconnected),
                // Newer tokens: this outcome belongs to a connection that no longer exists.
                Some(_) => Err(StoreError::Conflict),
            },
            Err(e) => Err(e),
        }
    }

    async fn claim_provider_account(
        &self,
        provider: Provider,
        account: &str,
        user: &UserId,
    ) -> Result<AccountClaim, StoreError> {
        // Read, decide (`AccountHold::claimed`), write conditioned on what was read; a racing
        // claim moves the version, and the next round reads who won.
        for _ in 0..CLAIM_ROUNDS {
            let previous = self.owner_item(provider, account).await?;
            let previous_hold = previous.as_ref().map(OwnerItem::hold);
            let hold = AccountHold::claimed(previous_hold.as_ref(), user).ok_or(StoreError::AccountOwnedByAnother)?;
            let claim = AccountClaim { counts_from: hold.counts_from };
            if previous_hold.as_ref() == Some(&hold) {
                return Ok(claim);
            }
            let version = previous.as_ref().map_or(0, |p| p.version);
            if self
                .put_owner(
                    &OwnerItem::from_hold(provider, account, &hold, version + 1),
                    previous.is_some().then_some(version),
                )
                .await?
            {
                return Ok(claim);
            }
        }
        Err(StoreError::Unavailable("too many concurrent claims of one provider account".into()))
    }

    async fn release_provider_account(
        &self,
        provider: Provider,
        account: &str,
        user: &UserId,
        counted_through: LocalDate,
    ) -> Result<(), StoreError> {
        for _ in 0..CLAIM_ROUNDS {
            let Some(previous) = self.owner_item(provider, account).await? else { return Ok(()) };
            let Some(released) = previous.hold().released(user, counted_through) else { return Ok(()) };
            let item = OwnerItem::from_hold(provider, account, &released, previous.version + 1);
            if self.put_owner(&item, Some(previous.version)).await? {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable("too many concurrent changes to one provider account".into()))
    }

    async fn provider_account_owner(&self, provider: Provider, account: &str) -> Result<Option<UserId>, StoreError> {
        Ok(self.owner_item(provider, account).await?.and_then(|o| o.hold().holder().cloned()))
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

    async fn subscriptions(&self, provider: Provider) -> Result<Option<StoredSubscriptions>, StoreError> {
        let Some(item) = self.get(subscriptions_pk(provider), SUBSCRIPTIONS_SK).await? else { return Ok(None) };
        let json = item
            .get("states")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt("subscriptions without states".into()))?;
        serde_json::from_str(json).map(Some).map_err(|e| StoreError::Corrupt(format!("subscriptions: {e}")))
    }

    async fn save_subscriptions(&self, provider: Provider, stored: &StoredSubscriptions) -> Result<(), StoreError> {
        let json = serde_json::to_string(stored).map_err(|e| StoreError::Corrupt(format!("subscriptions: {e}")))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(subscriptions_pk(provider)))
            .item("sk", s(SUBSCRIPTIONS_SK))
            .item("states", s(json))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn record_subscription_check(
        &self,
        user: &UserId,
        provider: Provider,
        check: &SubscriptionCheck,
    ) -> Result<(), StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), conn_sk(provider))))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":checked", s(check.checked_at.to_string()));
        let update = match check.lapsed_since {
            Some(at) => update
                .update_expression("SET subscription_checked_at = :checked, subscription_lapsed_at = :at")
                .expression_attribute_values(":at", s(at.to_string())),
            None => update.update_expression("SET subscription_checked_at = :checked REMOVE subscription_lapsed_at"),
        };
        match update.send().await.map_err(store_error) {
            Err(StoreError::Conflict) => Err(StoreError::NotFound("connection")),
            other => other.map(|_| ()),
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
                 REMOVE tokens, gsi1pk, gsi1sk, next_sync_at, lease_holder, lease_expires_at, installs",
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

/// Rounds of read-decide-write on one provider account before giving up (a retry may help).
const CLAIM_ROUNDS: u32 = 5;

/// The `ExclusiveStartKey` of a GSI1 query that resumes after `connection`.
fn gsi1_start(connection: &Connection, gsi1pk: String, gsi1sk: String) -> Item {
    let mut key = key(user_pk(&connection.user), conn_sk(connection.provider));
    key.insert("gsi1pk".to_owned(), s(gsi1pk));
    key.insert("gsi1sk".to_owned(), s(gsi1sk));
    key
}

impl DynamoStore {
    /// One page of connections from GSI1 (a single `Query`), starting after `start`.
    async fn gsi1_page(
        &self,
        condition: &str,
        values: &[(&str, AttributeValue)],
        start: Option<Item>,
        limit: usize,
    ) -> Result<Vec<Connection>, StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression(condition)
            .set_exclusive_start_key(start)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        for (name, value) in values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        let out = request.send().await.map_err(store_error)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item::<ConnectionItem>(item).map(ConnectionItem::into_connection))
            .collect()
    }

    async fn owner_item(&self, provider: Provider, account: &str) -> Result<Option<OwnerItem>, StoreError> {
        self.get(account_pk(provider, account), OWNER_SK).await?.map(from_item::<OwnerItem>).transpose()
    }

    /// Writes the account's item if it is still at `expected` (absent for `None`); `false`
    /// when someone changed it since.
    async fn put_owner(&self, item: &OwnerItem, expected: Option<u64>) -> Result<bool, StoreError> {
        let put = self.client.put_item().table_name(&self.table).set_item(Some(to_item(item)?));
        let put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            // Items written before versions existed read as version 0.
            Some(0) => put
                .condition_expression("attribute_not_exists(version) OR version = :v")
                .expression_attribute_values(":v", n(0)),
            Some(v) => put.condition_expression("version = :v").expression_attribute_values(":v", n(v)),
        };
        won(put.send().await.map(|_| ()).map_err(store_error))
    }
}
