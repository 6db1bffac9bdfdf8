//! AWS list prices, read from the dated table in `docs/PRICES.md` so no figure lives in code.

use serde::Serialize;
use std::collections::BTreeMap;

/// The prices the cost model needs, each in USD per one unit.
#[derive(Debug, Clone, Serialize)]
pub struct Prices {
    /// The date the table says the prices were read.
    pub as_of: String,
    pub region: String,
    pub dynamodb_read_unit: f64,
    pub dynamodb_write_unit: f64,
    /// Request units a transactional item costs relative to a standard one.
    pub dynamodb_transaction_factor: f64,
    pub lambda_request: f64,
    /// arm64, the architecture `template.yaml` deploys.
    pub lambda_gb_second: f64,
    pub eventbridge_event: f64,
    pub scheduler_invocation: f64,
    pub http_api_request: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PriceError {
    #[error("docs/PRICES.md: no line `Prices as of: <date>, <region>`")]
    MissingDate,
    #[error("docs/PRICES.md: no row for `{0}`")]
    MissingRow(&'static str),
    #[error("docs/PRICES.md: row `{key}`: {why}")]
    BadRow { key: String, why: String },
}

/// One row of the table: `value` USD (or a factor) per `per` units.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    value: f64,
    per: f64,
}

/// Reads the rows `| `key` | value | per | ... |` and the `Prices as of: date, region` line.
pub fn parse(markdown: &str) -> Result<Prices, PriceError> {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut dated: Option<(String, String)> = None;
    for line in markdown.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Prices as of:") {
            let (date, region) = rest.split_once(',').unwrap_or((rest, ""));
            dated = Some((date.trim().trim_matches('*').to_owned(), region.trim().trim_matches('*').to_owned()));
            continue;
        }
        let Some(body) = line.strip_prefix("| `") else { continue };
        let cells: Vec<&str> = body.split('|').map(str::trim).collect();
        let key = cells[0].trim_end_matches('`').to_owned();
        let number = |i: usize, what: &str| -> Result<f64, PriceError> {
            let raw = cells.get(i).map(|c| c.replace(',', "")).unwrap_or_default();
            raw.parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0).ok_or_else(|| PriceError::BadRow {
                key: key.clone(),
                why: format!("{what} {raw:?} is not a positive number"),
            })
        };
        let row = Row { value: number(1, "value")?, per: number(2, "per")? };
        rows.insert(key, row);
    }
    let (as_of, region) = dated.ok_or(PriceError::MissingDate)?;
    let unit = |key: &'static str| rows.get(key).map(|r| r.value / r.per).ok_or(PriceError::MissingRow(key));
    Ok(Prices {
        as_of,
        region,
        dynamodb_read_unit: unit("dynamodb_read_request_unit")?,
        dynamodb_write_unit: unit("dynamodb_write_request_unit")?,
        dynamodb_transaction_factor: unit("dynamodb_transactional_factor")?,
        lambda_request: unit("lambda_request")?,
        lambda_gb_second: unit("lambda_arm64_gb_second")?,
        eventbridge_event: unit("eventbridge_custom_event")?,
        scheduler_invocation: unit("scheduler_invocation")?,
        http_api_request: unit("http_api_request")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
# Prices\n\
Prices as of: 2026-11-26, us-east-1\n\
\n\
| key | value | per | what | source |\n\
| --- | ---: | ---: | --- | --- |\n\
| `dynamodb_read_request_unit` | 0.125 | 1,000,000 | read request unit | https://aws.amazon.com/dynamodb/pricing/on-demand/ |\n\
| `dynamodb_write_request_unit` | 0.625 | 1,000,000 | write request unit | same |\n\
| `dynamodb_transactional_factor` | 2 | 1 | units per transactional item | same |\n\
| `lambda_request` | 0.20 | 1000000 | request | https://aws.amazon.com/lambda/pricing/ |\n\
| `lambda_arm64_gb_second` | 0.0000133334 | 1 | GB-second | same |\n\
| `eventbridge_custom_event` | 1.00 | 1000000 | event | https://aws.amazon.com/eventbridge/pricing/ |\n\
| `scheduler_invocation` | 1.00 | 1000000 | invocation | same |\n\
| `http_api_request` | 1.00 | 1000000 | request | https://aws.amazon.com/api-gateway/pricing/ |\n";

    #[test]
    fn reads_every_price_per_unit() {
        let prices = parse(TABLE).unwrap();
        assert_eq!((prices.as_of.as_str(), prices.region.as_str()), ("2026-11-26", "us-east-1"));
        assert_eq!(prices.dynamodb_write_unit, 0.625 / 1e6);
        assert_eq!(prices.dynamodb_transaction_factor, 2.0);
        assert_eq!(prices.lambda_gb_second, 0.0000133334);
        assert_eq!(prices.http_api_request, 1e-6);
    }

    #[test]
    fn a_missing_or_broken_row_is_a_typed_error() {
        let without = TABLE.replace("| `http_api_request`", "| http_api_request");
        assert_eq!(parse(&without).unwrap_err(), PriceError::MissingRow("http_api_request"));
        let broken = TABLE.replace("| 0.20 |", "| free |");
        assert!(matches!(parse(&broken), Err(PriceError::BadRow { key, .. }) if key == "lambda_request"));
        assert_eq!(parse("| `lambda_request` | 0.2 | 1 |").unwrap_err(), PriceError::MissingDate);
    }
}
