//! The DynamoDB table exactly as `template.yaml` defines it: the template is the one source,
//! read at build time, so the local stack and the tests never use a hand-kept copy.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use serde::Deserialize;

/// The SAM template, compiled in.
pub const TEMPLATE: &str = include_str!("../../template.yaml");
/// The table's logical id in the template.
pub const TABLE_RESOURCE: &str = "StepsTable";

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("creating the table: {0}")]
    Create(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableDefinition {
    pub attribute_definitions: Vec<AttributeDef>,
    pub key_schema: Vec<KeyDef>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<IndexDef>,
    #[serde(default)]
    pub time_to_live_specification: Option<TtlDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDef {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyDef {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexDef {
    pub index_name: String,
    pub key_schema: Vec<KeyDef>,
    pub projection: ProjectionDef,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionDef {
    pub projection_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TtlDef {
    pub attribute_name: String,
    pub enabled: bool,
}

/// Reads the table's properties from a SAM template (CloudFormation tags elsewhere are fine).
pub fn table_definition(template: &str) -> Result<TableDefinition, TableError> {
    let doc: serde_norway::Value = serde_norway::from_str(template).map_err(|e| TableError::Template(e.to_string()))?;
    let props = doc
        .get("Resources")
        .and_then(|r| r.get(TABLE_RESOURCE))
        .and_then(|t| t.get("Properties"))
        .ok_or_else(|| TableError::Template(format!("no Resources.{TABLE_RESOURCE}.Properties")))?;
    serde_norway::from_value(props.clone()).map_err(|e| TableError::Template(format!("{TABLE_RESOURCE}: {e}")))
}

fn key_schema(keys: &[KeyDef]) -> Result<Vec<KeySchemaElement>, TableError> {
    keys.iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(&k.attribute_name)
                .key_type(KeyType::from(k.key_type.as_str()))
                .build()
                .map_err(|e| TableError::Template(e.to_string()))
        })
        .collect()
}

/// Creates `name` with the template's definition (on-demand billing) and enables its TTL.
pub async fn create_table(client: &Client, name: &str, def: &TableDefinition) -> Result<(), TableError> {
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
    create_table(client, name, &table_definition(TEMPLATE)?).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_defines_the_one_table() {
        let def = table_definition(TEMPLATE).unwrap();
        let keys: Vec<_> = def.key_schema.iter().map(|k| (k.attribute_name.as_str(), k.key_type.as_str())).collect();
        assert_eq!(keys, [("pk", "HASH"), ("sk", "RANGE")]);
        assert_eq!(def.global_secondary_indexes[0].index_name, "GSI1");
        assert_eq!(def.time_to_live_specification.unwrap().attribute_name, "expires_at");
    }
}
