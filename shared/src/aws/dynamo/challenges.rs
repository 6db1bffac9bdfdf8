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

    async fn commit_totals(&self, rebuilt: &Participant) -> Result<(), StoreError> {
        let mut parts = TotalsExpression::of(&rebuilt.sources);
        // With the counted versions, conditioned on `rev`: a count or a rebuild that came first
        // fails it (the caller re-reads and rebuilds again).
        let counted = rebuilt.counted.iter().map(|(d, v)| (d.to_string(), n(*v))).collect();
        parts.sets.push("counted = :counted, rev = :next_rev".to_owned());
        parts.values.insert(":counted".to_owned(), AttributeValue::M(counted));
        parts.values.insert(":next_rev".to_owned(), n(rebuilt.rev + 1));
        let condition = if rebuilt.rev == 0 {
            parts.values.insert(":zero".to_owned(), n(0));
            "attribute_exists(pk) AND attribute_not_exists(sealed) AND (attribute_not_exists(rev) OR rev = :zero)"
        } else {
            parts.values.insert(":rev".to_owned(), n(rebuilt.rev));
            "attribute_exists(pk) AND attribute_not_exists(sealed) AND rev = :rev"
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(challenge_pk(&rebuilt.challenge), participant_sk(&rebuilt.user))))
            .update_expression(parts.expression())
            .condition_expression(condition)
            .set_expression_attribute_names(Some(parts.names))
            .set_expression_attribute_values(Some(parts.values))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
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

/// The update that sets every source's numbers on a participant (removing a source with none
/// in the window).
struct TotalsExpression {
    sets: Vec<String>,
    removes: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl TotalsExpression {
    fn of(totals: &SourceTotals) -> Self {
        let mut parts = Self { sets: vec![], removes: vec![], names: HashMap::new(), values: HashMap::new() };
        for (i, source) in Provider::ALL.into_iter().enumerate() {
            let (steps, days) = source_attributes(source);
            parts.names.insert(format!("#s{i}"), steps);
            parts.names.insert(format!("#d{i}"), days);
            match totals.0.get(&source) {
                Some(t) => {
                    parts.sets.push(format!("#s{i} = :s{i}, #d{i} = :d{i}"));
                    parts.values.insert(format!(":s{i}"), n(t.total));
                    parts.values.insert(format!(":d{i}"), n(t.days));
                }
                None => parts.removes.push(format!("#s{i}, #d{i}")),
            }
        }
        parts
    }

    fn expression(&self) -> String {
        let mut expression = String::new();
        if !self.sets.is_empty() {
            expression.push_str(&format!("SET {}", self.sets.join(", ")));
        }
        if !self.removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", self.removes.join(", ")));
        }
        expression.trim().to_owned()
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
        let mut parts = TotalsExpression::of(totals);
        if seal {
            parts.sets.push("sealed = :sealed".to_owned());
            parts.values.insert(":sealed".to_owned(), AttributeValue::Bool(true));
        }
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(challenge_pk(challenge), participant_sk(user))))
            .condition_expression("attribute_exists(pk)")
            .update_expression(parts.expression())
            .set_expression_attribute_names(Some(parts.names))
            .set_expression_attribute_values((!parts.values.is_empty()).then_some(parts.values))
            .build()
            .map_err(build_error)
    }
}
