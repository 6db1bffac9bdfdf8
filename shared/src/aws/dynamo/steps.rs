//! The step-records port over DynamoDB: day records and the profile; a changed day is one
//! conditional put, each participant it moves one conditional update (`engine::counting`).

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
        let Some(first) = dates.iter().min() else {
            return Ok(UserDays { profile: self.get_profile(user).await?, days: std::collections::BTreeMap::new() });
        };
        // One consistent Query, billed by the bytes it reads: the days from the earliest asked
        // through the profile (`DAY#…` < `PROFILE` in the partition, nothing between), where a
        // BatchGetItem would bill each item a whole unit.
        let wanted: std::collections::BTreeSet<LocalDate> = dates.iter().copied().collect();
        let mut result = UserDays::default();
        for item in self.query_all(user_pk(user), day_sk(*first), PROFILE_SK.to_owned()).await? {
            let sk = item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            if sk == PROFILE_SK {
                result.profile = from_item::<ProfileItem>(item)?.into_profile()?;
            } else if sk.starts_with("DAY#") {
                let day = from_item::<DayItem>(item)?.into_record()?;
                if wanted.contains(&day.date) {
                    result.days.insert(day.date, day);
                }
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

    async fn load_people_days(
        &self,
        users: &[UserId],
        dates: &[LocalDate],
    ) -> Result<std::collections::BTreeMap<UserId, UserDays>, StoreError> {
        // Known keys, many people to a request: a Query per person would be a request each.
        let keys = users
            .iter()
            .flat_map(|u| {
                std::iter::once(key(user_pk(u), PROFILE_SK)).chain(dates.iter().map(|d| key(user_pk(u), day_sk(*d))))
            })
            .collect();
        let owners: HashMap<String, &UserId> = users.iter().map(|u| (user_pk(u), u)).collect();
        let mut people: std::collections::BTreeMap<UserId, UserDays> =
            users.iter().map(|u| (u.clone(), UserDays::default())).collect();
        for item in self.batch_get(keys).await? {
            let pk = item.get("pk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let sk = item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let Some(person) = owners.get(&pk).and_then(|u| people.get_mut(*u)) else {
                return Err(StoreError::Corrupt(format!("an item of {pk} that was not asked for")));
            };
            if sk == PROFILE_SK {
                person.profile = from_item::<ProfileItem>(item)?.into_profile()?;
            } else {
                let day = from_item::<DayItem>(item)?.into_record()?;
                person.days.insert(day.date, day);
            }
        }
        Ok(people)
    }

    async fn commit_day(&self, write: &DayWrite) -> Result<(), StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&DayItem::from_record(&write.record, write.now))?));
        put = if write.expected_version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("#version = :version")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":version", n(write.expected_version))
        };
        put.send().await.map_err(store_error)?;
        Ok(())
    }

    async fn count_day(&self, count: &DayCount) -> Result<(), StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(challenge_pk(&count.challenge), participant_sk(&count.user))))
            .expression_attribute_names("#counted", "counted")
            .expression_attribute_names("#date", count.date.to_string())
            .expression_attribute_values(":written", n(count.written_at.as_second()))
            .expression_attribute_values(":to", n(count.to_version))
            .expression_attribute_values(":one", n(1));
        // Never create a participant (one who left), never move a sealed one or a final
        // challenge's, and only from the version the change came from.
        let from = if count.from_version == 0 {
            "attribute_not_exists(#counted.#date)"
        } else {
            update = update.expression_attribute_values(":from", n(count.from_version));
            "#counted.#date = :from"
        };
        update = update.condition_expression(format!(
            "attribute_exists(pk) AND attribute_exists(#counted) AND closes_at > :written \
             AND attribute_not_exists(sealed) AND {from}"
        ));
        let mut adds = vec!["rev :one".to_owned()];
        for (i, (source, total, days)) in count.deltas.iter().enumerate() {
            let (steps_name, days_name) = source_attributes(*source);
            adds.push(format!("#s{i} :s{i}, #d{i} :d{i}"));
            update = update
                .expression_attribute_names(format!("#s{i}"), steps_name)
                .expression_attribute_names(format!("#d{i}"), days_name)
                .expression_attribute_values(format!(":s{i}"), n(*total))
                .expression_attribute_values(format!(":d{i}"), n(*days));
        }
        update
            .update_expression(format!("SET #counted.#date = :to ADD {}", adds.join(", ")))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
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
