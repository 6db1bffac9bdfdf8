//! The table's change stream, read the way Lambda's event source mapping reads it when
//! deployed: every shard from its oldest record, each record once, in order. The local stack
//! hands what it reads to `day-events`' service; the tests do the same on both emulators.

use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use std::collections::BTreeMap;
use stepsync::ports::DayChange;

#[derive(Debug, thiserror::Error)]
#[error("reading the table's stream: {0}")]
pub struct StreamError(String);

fn failed(e: impl std::fmt::Display) -> StreamError {
    StreamError(e.to_string())
}

/// Where reading one shard stands: the next iterator, or done (the shard closed and was read).
enum Position {
    At(String),
    Done,
}

pub struct TableStream {
    client: Client,
    arn: String,
    shards: BTreeMap<String, Position>,
}

impl TableStream {
    /// The stream of `table` (its `LatestStreamArn`) on the DynamoDB `sdk` points at.
    pub async fn open(sdk: &stepsync::aws::SdkConfig, table: &str) -> Result<Self, StreamError> {
        let dynamo = aws_sdk_dynamodb::Client::new(sdk);
        let described = dynamo
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| failed(aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
        let arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| StreamError(format!("{table} has no stream (template.yaml's StreamSpecification)")))?
            .to_owned();
        Ok(Self { client: Client::new(sdk), arn, shards: BTreeMap::new() })
    }

    /// Every day change committed since the last call, in stream order per shard (a parent
    /// shard before its children).
    pub async fn read(&mut self) -> Result<Vec<DayChange>, StreamError> {
        let described = self
            .client
            .describe_stream()
            .stream_arn(&self.arn)
            .send()
            .await
            .map_err(|e| failed(aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)))?;
        let shards = described.stream_description().map(|d| d.shards().to_vec()).unwrap_or_default();
        let mut changes = Vec::new();
        for shard in shards {
            let Some(id) = shard.shard_id() else { continue };
            let iterator = match self.shards.get(id) {
                Some(Position::Done) => continue,
                Some(Position::At(iterator)) => iterator.clone(),
                None => self.first_iterator(id).await?,
            };
            let (read, next) = self.read_shard(iterator).await?;
            changes.extend(read);
            self.shards.insert(id.to_owned(), next.map_or(Position::Done, Position::At));
        }
        Ok(changes)
    }

    async fn first_iterator(&self, shard: &str) -> Result<String, StreamError> {
        let answer = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.arn)
            .shard_id(shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .map_err(|e| failed(aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)))?;
        answer.shard_iterator().map(str::to_owned).ok_or_else(|| StreamError(format!("no iterator for {shard}")))
    }

    /// Reads a shard up to its current end; returns the iterator to go on from (none once a
    /// closed shard is read to its end).
    async fn read_shard(&self, mut iterator: String) -> Result<(Vec<DayChange>, Option<String>), StreamError> {
        let mut changes = Vec::new();
        loop {
            let answer = self
                .client
                .get_records()
                .shard_iterator(&iterator)
                .send()
                .await
                .map_err(|e| failed(aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)))?;
            for record in answer.records() {
                let Some(change) = record.dynamodb() else { continue };
                let id = change.sequence_number().unwrap_or_default().to_owned();
                let old = change.old_image().cloned();
                let new = change.new_image().cloned();
                if let Some(day) = stepsync::aws::day_change(id, old, new).map_err(failed)? {
                    changes.push(day);
                }
            }
            match answer.next_shard_iterator() {
                None => return Ok((changes, None)),
                Some(next) if answer.records().is_empty() => return Ok((changes, Some(next.to_owned()))),
                Some(next) => iterator = next.to_owned(),
            }
        }
    }
}
