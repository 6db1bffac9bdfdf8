//! Dollars per 10,000 people per month: the measured requests, events and durations priced at
//! the list prices in `docs/PRICES.md`.
//!
//! DynamoDB bills request units, not requests: a strongly consistent read is one unit per
//! 4 KB item (half for an eventually consistent GSI query), a write one unit per 1 KB item,
//! a transactional item `dynamodb_transactional_factor` times that. Item sizes are measured
//! from the table; which items each operation touches is stated in `units`.

use crate::prices::Prices;
use crate::requests::Scenario;
use crate::sweep::SweepRun;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

pub const PEOPLE: f64 = 10_000.0;
pub const DAYS_PER_MONTH: f64 = 30.0;
/// Connections one shard page lists (the worker's page size).
const PAGE: f64 = 100.0;

/// DynamoDB's item size: attribute names plus values (numbers about one byte per two digits,
/// maps and lists three bytes plus one per element).
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| k.len() + value_size(v) + 1).sum::<usize>(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

/// The largest item of each kind (by sort-key prefix: `CONN`, `DAY`, `PROFILE`, `PART`, ...).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ItemSizes {
    pub largest_bytes: BTreeMap<String, usize>,
}

impl ItemSizes {
    pub fn of(items: &[HashMap<String, AttributeValue>]) -> Self {
        let mut largest_bytes: BTreeMap<String, usize> = BTreeMap::new();
        for item in items {
            let sk = item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("?");
            let kind = sk.split('#').next().unwrap_or(sk).to_owned();
            let size = item_size(item);
            let entry = largest_bytes.entry(kind).or_default();
            *entry = (*entry).max(size);
        }
        Self { largest_bytes }
    }

    fn bytes(&self, kind: &str) -> f64 {
        self.largest_bytes.get(kind).copied().unwrap_or(1) as f64
    }

    /// The largest of the items a sync touches.
    fn sync_item(&self) -> f64 {
        ["CONN", "DAY", "PROFILE", "PART"].iter().map(|k| self.bytes(k)).fold(1.0, f64::max)
    }
}

/// How much of each billed thing one unit of work uses.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Usage {
    pub read_units: f64,
    pub write_units: f64,
    pub lambda_requests: f64,
    pub lambda_gb_seconds: f64,
    pub events: f64,
    pub scheduler_invocations: f64,
    pub api_requests: f64,
}

impl Usage {
    pub fn times(self, k: f64) -> Self {
        Self {
            read_units: self.read_units * k,
            write_units: self.write_units * k,
            lambda_requests: self.lambda_requests * k,
            lambda_gb_seconds: self.lambda_gb_seconds * k,
            events: self.events * k,
            scheduler_invocations: self.scheduler_invocations * k,
            api_requests: self.api_requests * k,
        }
    }

    pub fn plus(self, o: Self) -> Self {
        Self {
            read_units: self.read_units + o.read_units,
            write_units: self.write_units + o.write_units,
            lambda_requests: self.lambda_requests + o.lambda_requests,
            lambda_gb_seconds: self.lambda_gb_seconds + o.lambda_gb_seconds,
            events: self.events + o.events,
            scheduler_invocations: self.scheduler_invocations + o.scheduler_invocations,
            api_requests: self.api_requests + o.api_requests,
        }
    }

    pub fn dollars(&self, prices: &Prices) -> Dollars {
        let parts = [
            ("DynamoDB reads", self.read_units * prices.dynamodb_read_unit),
            ("DynamoDB writes", self.write_units * prices.dynamodb_write_unit),
            ("Lambda requests", self.lambda_requests * prices.lambda_request),
            ("Lambda duration", self.lambda_gb_seconds * prices.lambda_gb_second),
            ("EventBridge events", self.events * prices.eventbridge_event),
            ("EventBridge Scheduler", self.scheduler_invocations * prices.scheduler_invocation),
            ("API Gateway HTTP API", self.api_requests * prices.http_api_request),
        ];
        Dollars {
            total: parts.iter().map(|(_, d)| d).sum(),
            by_service: parts.into_iter().map(|(k, d)| (k.to_owned(), d)).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Dollars {
    pub total: f64,
    pub by_service: BTreeMap<String, f64>,
}

/// Request units of DynamoDB operations. Items per operation: GetItem one, BatchGetItem the
/// profile and one day, a base-table Query one page of at most 4 KB (strongly consistent),
/// a GSI1 page `gsi_items` connections (eventually consistent), Put/Update/Delete one item,
/// TransactWriteItems the day, the profile and one participant.
fn units(ops: &BTreeMap<String, f64>, sizes: &ItemSizes, prices: &Prices, gsi_items: Option<f64>) -> (f64, f64) {
    let read_unit = (sizes.sync_item() / 4096.0).ceil();
    let write_unit = (sizes.sync_item() / 1024.0).ceil();
    let count = |op: &str| ops.get(op).copied().unwrap_or(0.0);
    // A sweep's connection: its own Query of days and profile (the table, one unit), and its
    // share of the GSI pages it was listed on (eventually consistent, the page's bytes).
    let (own, pages) = match gsi_items {
        Some(items) => {
            let page = 0.5 * (items * sizes.bytes("CONN") / 4096.0).ceil().max(1.0);
            let own = count("Query").min(1.0);
            (own * read_unit, (count("Query") - own) * page)
        }
        None => (count("Query") * read_unit, 0.0),
    };
    let reads = read_unit * (count("GetItem") + 2.0 * count("BatchGetItem")) + own + pages;
    let writes = write_unit
        * (count("PutItem")
            + count("UpdateItem")
            + count("DeleteItem")
            + 3.0 * prices.dynamodb_transaction_factor * count("TransactWriteItems"));
    (reads, writes)
}

/// One scenario of the request counts, as billed.
/// `ops`: the DynamoDB requests to bill (the measured ones, or the design's minimum).
/// `stream_batch`: the changed days one `day-events` invocation handles (the stream gathers
/// them for up to its batching window), so each costs that share of an invocation.
pub fn scenario_usage(
    s: &Scenario,
    ops: &BTreeMap<String, u64>,
    sizes: &ItemSizes,
    prices: &Prices,
    memory_gb: f64,
    stream_batch: f64,
) -> Usage {
    let ops = ops.iter().map(|(k, v)| (k.clone(), *v as f64)).collect();
    let (read_units, write_units) = units(&ops, sizes, prices, None);
    let share = |i: &crate::requests::Invocation| if i.function == "day-events" { 1.0 / stream_batch } else { 1.0 };
    Usage {
        read_units,
        write_units,
        lambda_requests: s.invocations.iter().map(share).sum(),
        lambda_gb_seconds: s.invocations.iter().map(|i| i.ms.ceil() / 1e3).sum::<f64>() * memory_gb,
        events: s.events as f64,
        scheduler_invocations: 0.0,
        api_requests: s.api_requests as f64,
    }
}

/// One connection of a sweep, as billed: its share of the shard pages, worker invocations and
/// worker time; `ops` per connection (measured, or the floor's minimal set).
pub fn sweep_usage(
    run: &SweepRun,
    ops: &BTreeMap<String, f64>,
    sizes: &ItemSizes,
    prices: &Prices,
    memory_gb: f64,
) -> Usage {
    let per_page = (run.connections as f64 / run.busy_shards.max(1) as f64).min(PAGE);
    let (read_units, write_units) = units(ops, sizes, prices, Some(per_page));
    Usage {
        read_units,
        write_units,
        lambda_requests: run.busy_shards as f64 / run.connections.max(1) as f64,
        lambda_gb_seconds: run.worker_ms_per_sync / 1e3 * memory_gb,
        events: run.events_per_sync,
        scheduler_invocations: 0.0,
        api_requests: 0.0,
    }
}

/// A population's month, and how it was assumed.
#[derive(Debug, Clone, Serialize)]
pub struct Population {
    pub name: &'static str,
    pub assumptions: Vec<String>,
    pub per_person_day: Usage,
    pub month: Dollars,
    pub per_person_month: f64,
    /// The same month with DynamoDB billed at the design's minimum requests (the webhook
    /// scenario's minimum; the floor's set for a changed pull, its read alone for an unchanged
    /// one); everything else as measured.
    pub month_at_minimum: Dollars,
}

pub struct Inputs<'a> {
    pub prices: &'a Prices,
    pub sizes: &'a ItemSizes,
    pub memory_gb: f64,
    pub webhook: &'a Scenario,
    pub sweep_changed: &'a SweepRun,
    pub sweep_unchanged: &'a SweepRun,
    /// The floor's requests per sync: the minimal set of a changed-day pull.
    pub floor_ops: &'a BTreeMap<String, f64>,
    pub webhooks_per_day: f64,
    pub reconcile_hours: f64,
    pub pull_minutes: f64,
    pub tick_minutes: f64,
    pub tick_ms: f64,
    pub shards: f64,
    /// Changed days one `day-events` invocation handles (`stream_batch`).
    pub stream_batch: f64,
}

/// The stream's batching window for `day-events` (template.yaml `MaximumBatchingWindowInSeconds`).
pub const STREAM_WINDOW_SECONDS: f64 = 5.0;

/// Changed days one `day-events` invocation gathers at 10,000 people making `changes_per_day`
/// each: the rate times the batching window, between 1 and the batch size (100).
pub fn stream_batch(changes_per_day: f64) -> f64 {
    (PEOPLE * changes_per_day / 86_400.0 * STREAM_WINDOW_SECONDS).clamp(1.0, 100.0)
}

/// The scheduler's own cost per day, whatever the population: each tick one Scheduler
/// invocation and one `scheduled-sync` invocation reading every shard: its due-time query
/// (0.5 unit) and, per cycle, its cursor (a consistent GetItem, 1 unit) and the new phase's
/// first page (0.5): 3.5 units a shard (the worker invocations it causes are in each sweep
/// connection's share).
fn ticks_per_day(i: &Inputs<'_>) -> Usage {
    let tick = Usage {
        read_units: 3.5 * i.shards,
        lambda_requests: 1.0,
        lambda_gb_seconds: i.tick_ms.ceil() / 1e3 * i.memory_gb,
        scheduler_invocations: 1.0,
        ..Usage::default()
    };
    tick.times(24.0 * 60.0 / i.tick_minutes)
}

/// An unchanged pull's minimum: the floor's read alone (its `Query` and its share of the shard
/// pages); with nothing to write there is no status to check and nothing to put or count.
fn read_alone(floor_ops: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    floor_ops.iter().filter(|(op, _)| op.as_str() == "Query").map(|(op, n)| (op.clone(), *n)).collect()
}

pub fn populations(i: &Inputs<'_>) -> Vec<Population> {
    let (sizes, prices, gb) = (i.sizes, i.prices, i.memory_gb);
    let unchanged_floor = read_alone(i.floor_ops);
    // (measured, at the design's minimum)
    let webhook = (
        scenario_usage(i.webhook, &i.webhook.operations, sizes, prices, gb, i.stream_batch),
        scenario_usage(i.webhook, &i.webhook.minimum.operations, sizes, prices, gb, i.stream_batch),
    );
    // What the change stream adds to a changed pull: day-events reads the profile and the
    // participant (consistent GetItems) to check the count, in a share of one invocation.
    let stream_ops: BTreeMap<String, f64> = [("GetItem".to_owned(), 2.0)].into();
    let (stream_reads, _) = units(&stream_ops, sizes, prices, None);
    let stream = Usage { read_units: stream_reads, lambda_requests: 1.0 / i.stream_batch, ..Usage::default() };
    let changed = (
        sweep_usage(i.sweep_changed, &i.sweep_changed.requests_per_sync, sizes, prices, gb).plus(stream),
        sweep_usage(i.sweep_changed, i.floor_ops, sizes, prices, gb).plus(stream),
    );
    let unchanged = (
        sweep_usage(i.sweep_unchanged, &i.sweep_unchanged.requests_per_sync, sizes, prices, gb),
        sweep_usage(i.sweep_unchanged, &unchanged_floor, sizes, prices, gb),
    );
    let fixed = ticks_per_day(i).times(1.0 / PEOPLE);
    let reconciles = 24.0 / i.reconcile_hours;
    let pulls = 24.0 * 60.0 / i.pull_minutes;
    let changed_pulls = i.webhooks_per_day.min(pulls);
    let month = |per_day: Usage| per_day.times(PEOPLE * DAYS_PER_MONTH).dollars(i.prices);
    let fed = |webhook: Usage, unchanged: Usage| {
        webhook.times(i.webhooks_per_day).plus(unchanged.times(reconciles)).plus(fixed)
    };
    let pull = |changed: Usage, unchanged: Usage| {
        changed.times(changed_pulls).plus(unchanged.times(pulls - changed_pulls)).plus(fixed)
    };
    let tick_note = format!(
        "the scheduler ticks every {} min (template.yaml SyncIntervalMinutes) and reads {} shards; worker invocations and shard pages as measured in the sweep",
        i.tick_minutes, i.shards
    );
    [
        (
            "webhook-fed (Google Health, Misfit)",
            (fed(webhook.0, unchanged.0), fed(webhook.1, unchanged.1)),
            vec![
                format!("{} device syncs per person per day, each one signed webhook about one changed day (assumed, --webhooks-per-day)", i.webhooks_per_day),
                format!("{reconciles:.0} reconciliation pulls per day (every {} h, Schedule.webhook_interval), nothing new", i.reconcile_hours),
                tick_note.clone(),
            ],
        ),
        (
            "pull-only",
            (pull(changed.0, unchanged.0), pull(changed.1, unchanged.1)),
            vec![
                format!("{pulls:.0} pulls per person per day (every {} min, Schedule.pull_interval)", i.pull_minutes),
                format!("{changed_pulls:.0} of them find one changed day (as many as the device syncs above), the rest nothing new"),
                tick_note,
            ],
        ),
    ]
    .into_iter()
    .map(|(name, (per_day, at_minimum), assumptions)| {
        let total = month(per_day);
        Population {
            name,
            assumptions,
            per_person_day: per_day,
            per_person_month: total.total / PEOPLE,
            month: total,
            month_at_minimum: month(at_minimum),
        }
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_sizes_follow_dynamodbs_rules() {
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("USER#a".into())),
            ("total".to_owned(), AttributeValue::N("12345".into())),
            ("m".to_owned(), AttributeValue::M(HashMap::from([("k".to_owned(), AttributeValue::Bool(true))]))),
        ]);
        // 2 + 6, 5 + 4, 1 + (3 + 1 + 1 + 1)
        assert_eq!(item_size(&item), 8 + 9 + 7);
    }

    #[test]
    fn an_unchanged_pull_is_billed_at_the_floors_read_alone() {
        let floor: BTreeMap<String, f64> = [("GetItem", 1.0), ("PutItem", 1.0), ("Query", 1.1), ("UpdateItem", 1.0)]
            .map(|(k, v)| (k.to_owned(), v))
            .into();
        assert_eq!(read_alone(&floor), BTreeMap::from([("Query".to_owned(), 1.1)]));
    }
}
