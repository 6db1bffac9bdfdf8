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

/// Creates `name` with the template's definition (on-demand billing) and enables its TTL.
pub async fn create_table(client: &Client, name: &str) -> Result<(), TableError> {
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
    if let Some(stream) = &def.stream_specification {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(stream.stream_view_type.as_str()))
                .build()
                .map_err(|e| create(&e))?,
        );
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
pub async fn ensure_table(client: &Client, name: &str) -> Result<bool, TableError> {
    let exists = client.describe_table().table_name(name).send().await.is_ok();
    if exists {
        return Ok(false);
    }
    create_table(client, name).await?;
    Ok(true)
}
