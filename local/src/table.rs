//! The DynamoDB table exactly as `template.yaml` defines it (read through `crate::template`):
//! the template is the one source, so the local stack and the tests never use a hand-kept copy.

use crate::template::{KeyDef, TemplateError, template};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("creating the table: {0}")]
    Create(String),
}

fn key_schema(keys: &[KeyDef]) -> Result<Vec<KeySchemaElement>, TableError> {
    keys.iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(&k.attribute_name)
                .key_type(KeyType::from(k.key_type.as_str()))
                .build()
                .map_err(|e| TableError::Create(e.to_string()))
        })
        .collect()
}

/// Whether a table made here has the template's change stream.
///
/// `Off` is for runs that never read the stream and write a lot (the bench's sweep, the
/// load it puts beside the freshness run): dynoxide keeps every stream record of a table and
/// finds the next sequence number with a `MAX` over all of them, so with a stream each write
/// costs time in proportion to the writes before it (the bench's 2,000 changed-day syncs: 49
/// a second with the stream, 700 without, on 2 cores). DynamoDB's streams cost nothing on
/// the write path, so a run without one measures what AWS would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stream {
    #[default]
    AsTemplate,
    Off,
}

/// Creates `name` with the template's definition (on-demand billing) and enables its TTL.
pub async fn create_table(client: &Client, name: &str) -> Result<(), TableError> {
    create_table_with(client, name, Stream::AsTemplate).await
}

/// The template's stream specification, as a request carries it.
fn stream_specification() -> Result<Option<StreamSpecification>, TableError> {
    let Some(stream) = &template()?.table.stream_specification else { return Ok(None) };
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::from(stream.stream_view_type.as_str()))
        .build()
        .map(Some)
        .map_err(|e| TableError::Create(e.to_string()))
}

/// Turns the template's stream on for a table made with [`Stream::Off`]: its records start
/// from here.
pub async fn enable_stream(client: &Client, name: &str) -> Result<(), TableError> {
    let Some(spec) = stream_specification()? else { return Ok(()) };
    client
        .update_table()
        .table_name(name)
        .stream_specification(spec)
        .send()
        .await
        .map_err(|e| TableError::Create(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()))?;
    Ok(())
}

/// [`create_table`], with or without the template's change stream.
pub async fn create_table_with(client: &Client, name: &str, stream: Stream) -> Result<(), TableError> {
    let def = &template()?.table;
    let create = |e: &dyn std::fmt::Display| TableError::Create(e.to_string());
    let mut request = client.create_table().table_name(name).billing_mode(BillingMode::PayPerRequest);
    for a in &def.attribute_definitions {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                .build()
                .map_err(|e| create(&e))?,
        );
    }
    request = request.set_key_schema(Some(key_schema(&def.key_schema)?));
    if stream == Stream::AsTemplate {
        request = request.set_stream_specification(stream_specification()?);
    }
    for index in &def.global_secondary_indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&index.index_name)
                .set_key_schema(Some(key_schema(&index.key_schema)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(index.projection.projection_type.as_str()))
                        .build(),
                )
                .build()
                .map_err(|e| create(&e))?,
        );
    }
    request.send().await.map_err(|e| create(&aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    if let Some(ttl) = &def.time_to_live_specification {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(&ttl.attribute_name)
                    .enabled(ttl.enabled)
                    .build()
                    .map_err(|e| create(&e))?,
            )
            .send()
            .await
            .map_err(|e| create(&aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    }
    Ok(())
}

/// Creates the table unless it exists (the local stack on a kept database file).
pub async fn ensure_table(client: &Client, name: &str, stream: Stream) -> Result<bool, TableError> {
    let exists = client.describe_table().table_name(name).send().await.is_ok();
    if exists {
        return Ok(false);
    }
    create_table_with(client, name, stream).await?;
    Ok(true)
}
