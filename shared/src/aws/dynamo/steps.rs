//! The step-records port over DynamoDB: day records and the profile, one transaction per changed day.

use super::*;

#[async_trait]
impl StepStore for DynamoStore {
    async fn erase_user(&self, user: &UserId) -> Result<usize, StoreError> {
        let items = self.query(None, "pk = :pk", &[(":pk", s(user_pk(user)))], usize::MAX).await?;
        let keys: Vec<Item> = items
            .into_iter()
            .map(|item| item.into_iter().filter(|(name, _)| name == "pk" || name == "sk").collect())
            .collect();
        self.delete_keys(keys).await
    }

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
        if let Some(provider) = write.through {
            // The connection the values came through is not disconnected (one that never
            // existed, as for values applied directly, does not stop the write).
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(user_pk(user), conn_sk(provider))))
                .condition_expression("attribute_not_exists(pk) OR #status <> :disconnected")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":disconnected", s(ConnectionStatus::Disconnected.as_str()))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        // One update per participant (a transaction names each item once), moving each
        // source's numbers that changed.
        for challenge in write.challenges() {
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(challenge_pk(challenge), participant_sk(user))))
                // Never create a participant (one who left), never move a final challenge.
                .condition_expression("attribute_exists(pk) AND closes_at > :now")
                .expression_attribute_values(":now", n(write.now.as_second()));
            let mut adds = Vec::new();
            for (i, delta) in write.deltas.iter().filter(|d| &d.challenge == challenge).enumerate() {
                let (steps, days) = source_attributes(delta.source);
                adds.push(format!("#s{i} :s{i}, #d{i} :d{i}"));
                update = update
                    .expression_attribute_names(format!("#s{i}"), steps)
                    .expression_attribute_names(format!("#d{i}"), days)
                    .expression_attribute_values(format!(":s{i}"), n(delta.total))
                    .expression_attribute_values(format!(":d{i}"), n(delta.days));
            }
            let update = update.update_expression(format!("ADD {}", adds.join(", "))).build().map_err(build_error)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        match (self.transact(items).await, write.through) {
            (Ok(()), _) => Ok(()),
            // The guard (item 2) failed or conflicted: disconnected, or only written meanwhile.
            (Err(TransactFailure::Cancelled(failed)), Some(provider)) if failed.contains(&2) => {
                match self.get_connection(user, provider).await? {
                    Some(c) if c.status == ConnectionStatus::Disconnected => Err(StoreError::Disconnected),
                    _ => Err(StoreError::Conflict),
                }
            }
            (Err(other), _) => Err(other.into()),
        }
    }

    async fn commit_seal(&self, write: &SealWrite) -> Result<(), StoreError> {
        let item = to_item(&SnapshotItem::from_snapshot(&write.challenge, &write.user, &write.snapshot))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder()
                .update(self.participant_totals_update(&write.challenge, &write.user, &write.snapshot.totals, true)?)
                .build(),
            self.profile_put(&write.user, &write.profile, write.expected_rev)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            // Sealed already (by a racing seal): the profile moved too, so re-read.
            Err(TransactFailure::Cancelled(failed)) if failed.contains(&0) => Err(StoreError::Conflict),
            Err(other) => Err(other.into()),
        }
    }

    async fn set_time_zone(&self, user: &UserId, zone: &str, expected_rev: u64) -> Result<(), StoreError> {
        let (condition, values) = rev_condition(expected_rev);
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), PROFILE_SK)))
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values.into_iter().collect()))
            .expression_attribute_values(":next_rev", n(expected_rev + 1))
            .expression_attribute_values(":zone", s(zone))
            .update_expression("SET time_zone = :zone, rev = :next_rev")
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
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
