//! The challenge port over DynamoDB: challenges, participants, joins and leaves.

use super::*;

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
            .set_item(Some(participant_item(p, closes_at)?))
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
        totals: &SourceTotals,
        expected_rev: u64,
    ) -> Result<(), StoreError> {
        let update = self.participant_totals_update(challenge, user, totals, false)?;
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
        self.get(challenge_pk(challenge), participant_sk(user)).await?.map(participant_from_item).transpose()
    }

    async fn participants(&self, challenge: &ChallengeId) -> Result<Vec<Participant>, StoreError> {
        self.query_prefix(challenge_pk(challenge), "PART").await?.into_iter().map(participant_from_item).collect()
    }

    async fn erase_participant(&self, challenge: &ChallengeId, user: &UserId) -> Result<(), StoreError> {
        let pk = challenge_pk(challenge);
        self.delete_keys(vec![key(pk.clone(), participant_sk(user)), key(pk, snapshot_sk(user))]).await?;
        Ok(())
    }

    async fn snapshot(&self, challenge: &ChallengeId, user: &UserId) -> Result<Option<Snapshot>, StoreError> {
        self.get(challenge_pk(challenge), snapshot_sk(user))
            .await?
            .map(|item| from_item::<SnapshotItem>(item)?.into_snapshot())
            .transpose()
    }
}

impl DynamoStore {
    /// Sets every source's numbers on a participant (removing a source with none in the
    /// window), and marks it sealed when `seal`.
    pub(super) fn participant_totals_update(
        &self,
        challenge: &ChallengeId,
        user: &UserId,
        totals: &SourceTotals,
        seal: bool,
    ) -> Result<Update, StoreError> {
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(challenge_pk(challenge), participant_sk(user))))
            .condition_expression("attribute_exists(pk)");
        if seal {
            sets.push("sealed = :sealed".to_owned());
            update = update.expression_attribute_values(":sealed", AttributeValue::Bool(true));
        }
        for (i, source) in Provider::ALL.into_iter().enumerate() {
            let (steps, days) = source_attributes(source);
            update = update
                .expression_attribute_names(format!("#s{i}"), steps)
                .expression_attribute_names(format!("#d{i}"), days);
            match totals.0.get(&source) {
                Some(t) => {
                    sets.push(format!("#s{i} = :s{i}, #d{i} = :d{i}"));
                    update = update
                        .expression_attribute_values(format!(":s{i}"), n(t.total))
                        .expression_attribute_values(format!(":d{i}"), n(t.days));
                }
                None => removes.push(format!("#s{i}, #d{i}")),
            }
        }
        let mut expression = String::new();
        if !sets.is_empty() {
            expression.push_str(&format!("SET {}", sets.join(", ")));
        }
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        update.update_expression(expression.trim()).build().map_err(build_error)
    }
}
