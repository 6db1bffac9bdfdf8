//! Counts SDK operations by name, for tests and benchmarks ("zero writes", "one transaction").

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// An SDK interceptor that counts operations (`GetItem`, `TransactWriteItems`, `PutEvents`…).
/// Clones share one count.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<Mutex<BTreeMap<String, u64>>>);

/// Operations that write to DynamoDB.
const WRITES: [&str; 6] =
    ["PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem", "ExecuteStatement"];

impl RequestCounter {
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self, operation: &str) -> u64 {
        self.0.lock().unwrap().get(operation).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.lock().unwrap().values().sum()
    }

    /// DynamoDB write requests of any kind.
    pub fn writes(&self) -> u64 {
        WRITES.iter().map(|op| self.count(op)).sum()
    }

    pub fn reset(&self) {
        self.0.lock().unwrap().clear();
    }

    /// Puts back counts taken with `snapshot` (a test's own requests, without a helper's).
    pub fn restore(&self, counts: BTreeMap<String, u64>) {
        *self.0.lock().unwrap() = counts;
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    /// Counts each request sent (a retried attempt counts again), named after the JSON
    /// protocols' `X-Amz-Target` header (`DynamoDB_20120810.GetItem` → `GetItem`).
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or("unknown.unknown");
        let name = target.rsplit('.').next().unwrap_or(target).to_owned();
        *self.0.lock().unwrap().entry(name).or_default() += 1;
        Ok(())
    }
}
