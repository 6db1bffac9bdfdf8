//! The report: `report.json` (everything measured) and `report.md` (the same, for people).

use crate::cold_start::{ColdStart, ColdStarts, STARTS};
use crate::cost::{ItemSizes, Population};
use crate::freshness::Freshness;
use crate::machine::Machine;
use crate::prices::Prices;
use crate::requests::Scenario;
use crate::stats::Summary;
use crate::sweep::{GrownSweep, SweepReport, SweepRun};
use crate::template::Template;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub connections: usize,
    pub notifications: usize,
    pub store: crate::args::Store,
    pub webhooks_per_day: f64,
    pub quick: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub settings: Settings,
    pub template: Template,
    pub cold_start: Result<ColdStarts, String>,
    pub freshness: Freshness,
    pub sweep: SweepReport,
    /// The same sweep on fresh tables of other sizes (`--sweep-sizes`).
    pub grown: Vec<GrownSweep>,
    pub requests: Vec<Scenario>,
    pub item_sizes: ItemSizes,
    pub prices: Prices,
    pub costs: Vec<Population>,
    pub scale_inputs: crate::scale::Inputs,
    pub scale: Vec<crate::scale::Row>,
    pub run_seconds: f64,
}

impl Report {
    /// Section 6: the capacity model (docs/SCALE.md says how each row is made).
    fn scale_section(&self) -> String {
        use crate::scale::{assume, limits};
        let i = &self.scale_inputs;
        let mut o = String::new();
        let _ = writeln!(o, "\n## 6. Scale\n");
        let _ = writeln!(
            o,
            "Webhook-fed people (Google Health): {} device syncs and {:.0} reconcile pulls a person a day; the busiest hour {}× the day's average; a sync deployed {} s, a webhook {} s (assumed: loopback measures only our part). From this run: a webhook's changed day costs {:.2} write and {:.2} read units (the webhook, the worker, the stream's check), an unchanged reconcile pull {:.2} read units, {} provider call(s) a sync, ${:.2} a month per 10,000 people. Shards: one per {:.0} people, at least 8. The sweep here: {}.\n",
            i.webhooks_per_day,
            i.reconciles_per_day,
            assume::PEAK_FACTOR,
            assume::SYNC_SECONDS,
            assume::WEBHOOK_SECONDS,
            i.changed_write_units,
            i.changed_read_units,
            i.unchanged_read_units,
            i.provider_calls_per_sync,
            i.dollars_per_10k,
            i.people_per_shard,
            i.sweep_ms_per_connection
                .iter()
                .map(|(n, ms)| format!("{ms:.3} ms per connection at {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let people = |n: f64| match n {
            n if n >= 1e6 => format!("{:.0} M", n / 1e6),
            n => format!("{:.0} k", n / 1e3),
        };
        let _ = writeln!(o, "| | {} |", self.scale.iter().map(|r| people(r.people)).collect::<Vec<_>>().join(" | "));
        let _ = writeln!(o, "| --- |{}", " ---: |".repeat(self.scale.len()));
        let row = |o: &mut String, name: &str, value: &dyn Fn(&crate::scale::Row) -> String| {
            let _ = writeln!(o, "| {name} | {} |", self.scale.iter().map(value).collect::<Vec<_>>().join(" | "));
        };
        row(&mut o, "sweep shards", &|r| format!("{:.0}", r.shards));
        row(&mut o, "device syncs/s, peak", &|r| format!("{:.0}", r.device_syncs_per_second_peak));
        row(&mut o, "table write units/s, peak", &|r| format!("{:.0}", r.table_write_units_peak));
        row(&mut o, "table read units/s, peak", &|r| format!("{:.0}", r.table_read_units_peak));
        row(&mut o, "hottest key (one challenge of everyone), writes/s", &|r| {
            format!("{:.0}", r.hottest_partition_writes_peak)
        });
        row(&mut o, "connections per tick", &|r| format!("{:.0}", r.per_tick_connections));
        row(&mut o, "one shard's sweep deployed, s", &|r| format!("{:.0}", r.shard_sweep_seconds));
        row(&mut o, "Lambda concurrency, peak", &|r| format!("{:.0}", r.lambda_concurrency_peak));
        row(&mut o, "PutEvents/s (SyncShard)", &|r| format!("{:.2}", r.put_events_per_second));
        row(&mut o, "scheduler invocations/month", &|r| format!("{:.0}", r.scheduler_invocations_per_month));
        row(&mut o, "Google requests/day", &|r| format!("{:.0}", r.google_requests_per_day));
        row(&mut o, "Google requests/minute, peak", &|r| format!("{:.0}", r.google_requests_per_minute_peak));
        row(&mut o, "Google OAuth grants/day", &|r| format!("{:.0}", r.google_grants_per_day));
        row(&mut o, "dollars/month", &|r| format!("${:.0}", r.dollars_per_month));
        row(&mut o, "first limit reached (default quotas)", &|r| match r.limits_hit.as_slice() {
            [] => "none".to_owned(),
            hit => hit.join("; "),
        });
        let _ = writeln!(
            o,
            "\nLimits: DynamoDB {:.0} write / {:.0} read units a second per partition, {:.0} per table (on-demand default); Lambda {:.0} concurrent; PutEvents {:.0}/s; Google Health {:.1} M requests a day, {:.0} a minute per project, {:.0} a minute per person, {:.0} OAuth grants a day.",
            limits::PARTITION_WRITE_UNITS,
            limits::PARTITION_READ_UNITS,
            limits::TABLE_UNITS,
            limits::LAMBDA_CONCURRENCY,
            limits::PUT_EVENTS_PER_SECOND,
            limits::GOOGLE_PER_DAY / 1e6,
            limits::GOOGLE_PER_MINUTE,
            limits::GOOGLE_PER_USER_MINUTE,
            limits::GOOGLE_GRANTS_PER_DAY
        );
        o
    }
}

fn ops(map: &BTreeMap<String, f64>) -> String {
    map.iter().map(|(op, n)| format!("{op} {}", round(*n))).collect::<Vec<_>>().join(", ")
}

fn round(n: f64) -> String {
    if (n - n.round()).abs() < 1e-9 { format!("{n:.0}") } else { format!("{n:.3}") }
}

fn summary_row(out: &mut String, what: &str, s: &Summary) {
    let _ = writeln!(out, "| {what} | {} | {:.1} | {:.1} | {:.1} | {:.1} |", s.count, s.p50, s.p95, s.max, s.mean);
}

fn sweep_row(out: &mut String, what: &str, r: &SweepRun) {
    let _ = writeln!(
        out,
        "| {what} | {} | {} | {} | {:.0} | **{:.0}** | {:.1} | {:.2} |",
        r.connections, r.synced, r.failed, r.wall_ms, r.per_second, r.tick_ms, r.worker_ms_per_sync
    );
}

/// An HTTP status as is; an event function's JSON answer as code.
fn answer(outcome: &str) -> String {
    if outcome.starts_with("HTTP ") { outcome.to_owned() } else { format!("`{}`", outcome.replace('|', "\\|")) }
}

fn money(d: f64) -> String {
    if d >= 0.1 { format!("${d:.2}") } else { format!("${d:.4}") }
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let m = &self.machine;
        let _ = writeln!(o, "# StepSync benchmark report\n");
        let _ = writeln!(
            o,
            "Run {} on {} cores ({}, load average {} at the start), {}, {}. Store: {:?}; {} connections in the sweep, {} notifications{}. The whole run took {:.0} s.\n",
            m.date,
            m.cores,
            m.cpu_model,
            m.load_average,
            m.kernel,
            m.rustc,
            self.settings.store,
            self.settings.connections,
            self.settings.notifications,
            if self.settings.quick { " (--quick)" } else { "" },
            self.run_seconds
        );
        let _ = writeln!(
            o,
            "Every figure below was measured in this run; only the prices (docs/PRICES.md) and the stated assumptions come from elsewhere. Everything ran on loopback: local stores and fakes answer in microseconds where AWS answers in milliseconds, so durations here are the code's own cost, not production latency.\n"
        );

        let f = &self.freshness;
        let _ = writeln!(o, "## 1. Freshness\n");
        let _ = writeln!(
            o,
            "A signed Google Health notification → the person's new total in `GET /v1/challenges/{{id}}/leaderboard`, on the local stack (real handlers behind the HttpApi routes, the in-process bus handing `SyncRequested` to the real `sync-worker`, embedded dynoxide, fake Google Health). {} notifications, one at a time, over {} people; the leaderboard polled every {} ms.\n",
            f.notifications, f.people, f.poll_every_ms
        );
        let _ = writeln!(o, "| ms | n | p50 | p95 | max | mean |\n| --- | ---: | ---: | ---: | ---: | ---: |");
        summary_row(&mut o, "notification → total visible", &f.visible_ms);
        summary_row(&mut o, "the webhook request alone (→ 204)", &f.webhook_ms);
        if let Some(load) = &f.under_load {
            let _ = writeln!(
                o,
                "\nUnder load: the same, while a sweep of {} connections (each with one changed day, in a challenge of their own) runs on the same stack: the scheduler's tick publishing `SyncShard` events, each handed to its own `sync-worker`. The sweep took {:.0} ms ({:.0} connections/s); {} notifications were timed while it ran.\n",
                load.connections, load.sweep_ms, load.sweep_per_second, load.notifications
            );
            let _ = writeln!(o, "| ms | n | p50 | p95 | max | mean |\n| --- | ---: | ---: | ---: | ---: | ---: |");
            summary_row(&mut o, "idle: notification → total visible", &f.visible_ms);
            summary_row(&mut o, "under load: notification → total visible", &load.visible_ms);
            summary_row(&mut o, "under load: the webhook request alone", &load.webhook_ms);
        }

        let s = &self.sweep;
        let _ = writeln!(o, "\n## 2. Sweep\n");
        let _ = writeln!(
            o,
            "All connections due at once: the real `scheduled-sync` tick, then `sync-worker` for every published `SyncShard` event at the same time (as EventBridge invokes one worker per event), ticking again until nothing is due; fake Google Health with one changed day per person. Then the same connections seven hours later with nothing new. Store: {:?}. Concurrency: {} busy shards × {} connections per worker = {}.\n",
            self.settings.store, s.changed.busy_shards, s.worker_concurrency, s.concurrency
        );
        let _ = writeln!(
            o,
            "| sweep | connections | synced | failed | wall ms | connections/s | tick ms | worker ms per sync |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        sweep_row(&mut o, "one changed day each", &s.changed);
        sweep_row(&mut o, "nothing new", &s.unchanged);
        let _ = writeln!(
            o,
            "\n**The floor**: the minimal request set of one sync issued straight through the DynamoDB adapter at the same concurrency ({}): one consistent `Query` of the day and the profile, the connection's status (`GetItem`), the day's conditional `PutItem` and its count (`UpdateItem`), and the shard pages the worker reads (one `Query` per 100 connections and the empty one ending a shard). No provider call, no token decryption. The store slows as the table grows (every changed-day run adds a day item per person), so the floor runs just before and just after the changed-day sweep, on other dates, and the sweep is compared with the two floors' mean time.\n",
            s.concurrency
        );
        let _ = writeln!(
            o,
            "| | connections | wall ms | connections/s | requests per sync |\n| --- | ---: | ---: | ---: | --- |"
        );
        for (when, f) in ["before the sweep", "after the sweep"].iter().zip(&s.floors) {
            let _ = writeln!(
                o,
                "| floor, {when} | {} | {:.0} (shard pages {:.0}) | {:.0} | {} |",
                f.connections,
                f.wall_ms,
                f.pages_ms,
                f.per_second,
                ops(&f.requests_per_sync)
            );
        }
        let _ = writeln!(o, "| floor, mean time | | | **{:.0}** | |", s.floor_per_second);
        // The changed-day sweep is the one compared with the floor: its rate in bold.
        for (name, sweep, mark) in [("changed day", &s.changed, "**"), ("nothing new", &s.unchanged, "")] {
            let _ = writeln!(
                o,
                "| sweep, {name} | {} | {:.0} | {mark}{:.0}{mark} | {} |",
                sweep.connections,
                sweep.wall_ms,
                sweep.per_second,
                ops(&sweep.requests_per_sync)
            );
        }
        let _ = writeln!(
            o,
            "\nSweep ÷ floor: **{:.2}** (the engine reaches {:.0} % of what the store itself sustains for the same work).",
            s.ratio_to_floor,
            s.ratio_to_floor * 100.0
        );
        let _ = writeln!(
            o,
            "Provider calls per connection: changed {}; nothing new {}. Events per connection: changed {:.3}, nothing new {:.3}.",
            ops(&s.changed.provider_calls_per_sync),
            ops(&s.unchanged.provider_calls_per_sync),
            s.changed.events_per_sync,
            s.unchanged.events_per_sync
        );
        if !self.grown.is_empty() {
            let _ = writeln!(
                o,
                "\n**As the sweep grows**: the same sweep and floors on a fresh table of each size (`--sweep-sizes`), the {} above first. Time per connection is the changed-day sweep's wall time over its connections.\n",
                s.changed.connections
            );
            let _ = writeln!(
                o,
                "| connections | seeding s | changed day, connections/s | floor, connections/s | sweep ÷ floor | ms per connection | nothing new, connections/s |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
            );
            let row = |o: &mut String, n: usize, seed: Option<f64>, r: &SweepReport| {
                let _ = writeln!(
                    o,
                    "| {n} | {} | {:.0} | {:.0} | **{:.2}** | {:.3} | {:.0} |",
                    seed.map_or_else(|| "–".to_owned(), |ms| format!("{:.0}", ms / 1e3)),
                    r.changed.per_second,
                    r.floor_per_second,
                    r.ratio_to_floor,
                    r.changed.wall_ms / n.max(1) as f64,
                    r.unchanged.per_second
                );
            };
            row(&mut o, s.changed.connections, None, s);
            for g in &self.grown {
                row(&mut o, g.connections, Some(g.seed_ms), &g.report);
            }
        }

        let _ = writeln!(o, "\n## 3. Requests per sync\n");
        let _ = writeln!(
            o,
            "DynamoDB requests counted by `stepsync::aws::RequestCounter` (by `X-Amz-Target`), events published through the publisher port, fake Google Health calls, for one person in one challenge with a warm function (keyset cached). Minimum = what docs/DATA_MODEL.md allows.\n"
        );
        let _ = writeln!(
            o,
            "| scenario | DynamoDB requests | reads (min) | writes (min) | transactions (min) | events (min) | provider calls (min) | invocations, handler ms |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for sc in &self.requests {
            let measured: BTreeMap<String, f64> = sc.operations.iter().map(|(k, v)| (k.clone(), *v as f64)).collect();
            let calls: BTreeMap<String, f64> = sc.provider_calls.iter().map(|(k, v)| (k.clone(), *v as f64)).collect();
            let invocations: Vec<String> =
                sc.invocations.iter().map(|i| format!("{} {:.1}", i.function, i.ms)).collect();
            let _ = writeln!(
                o,
                "| {} | {} | {} ({}) | {} ({}) | {} ({}) | {} ({}) | {} ({}) | {} |",
                sc.name,
                ops(&measured),
                sc.reads,
                sc.minimum.reads,
                sc.writes,
                sc.minimum.writes,
                sc.transactions,
                sc.minimum.transactions,
                sc.events,
                sc.minimum.events,
                ops(&calls),
                sc.minimum.provider_calls,
                invocations.join("; ")
            );
        }
        let _ = writeln!(o, "\nWhere the engine exceeds the minimum, and why:\n");
        for sc in &self.requests {
            if sc.over_minimum.is_empty() {
                let _ = writeln!(o, "- **{}**: at the minimum ({}).", sc.name, sc.minimum.why);
            } else {
                let _ = writeln!(o, "- **{}** (minimum: {}):", sc.name, sc.minimum.why);
                for why in &sc.over_minimum {
                    let _ = writeln!(o, "  - {why}");
                }
            }
        }

        let _ = writeln!(o, "\n## 4. Dollars per 10,000 people per month\n");
        let p = &self.prices;
        let _ = writeln!(
            o,
            "Prices: docs/PRICES.md, as of {} ({}); free tiers ignored. Lambda: {} MB ({} in template.yaml), billed on the handler durations measured above (on loopback, so an under-estimate against real DynamoDB latency). DynamoDB request units from the counted requests and the measured item sizes (largest by kind: {}).\n",
            p.as_of,
            p.region,
            self.template.memory_mb,
            self.template.architecture,
            self.item_sizes.largest_bytes.iter().map(|(k, v)| format!("{k} {v} B")).collect::<Vec<_>>().join(", ")
        );
        let services: Vec<String> =
            self.costs.first().map(|c| c.month.by_service.keys().cloned().collect()).unwrap_or_default();
        let _ = writeln!(
            o,
            "| population | {} | **total / month** | per person / month | with DynamoDB at the design's minimum |",
            services.join(" | ")
        );
        let _ = writeln!(o, "| --- |{} ---: | ---: | ---: |", " ---: |".repeat(services.len()));
        for c in &self.costs {
            let cells: Vec<String> = services.iter().map(|k| money(c.month.by_service[k])).collect();
            let _ = writeln!(
                o,
                "| {} | {} | **{}** | {} | {} |",
                c.name,
                cells.join(" | "),
                money(c.month.total),
                money(c.per_person_month),
                money(c.month_at_minimum.total)
            );
        }
        let _ = writeln!(
            o,
            "\nThe last column bills DynamoDB for the minimum request sets of section 3 (a changed pull: the floor's set; an unchanged one: its read alone) and everything else as measured: the difference is what the requests beyond the minimum cost."
        );
        for c in &self.costs {
            let _ = writeln!(o, "\n{}: {}.", c.name, c.assumptions.join("; "));
        }

        let _ = writeln!(o, "\n## 5. Start and size\n");
        o.push_str(&cold_start_section(&self.cold_start, self.template.memory_mb));
        o.push_str(&self.scale_section());
        o
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

/// Section 5's text (also written alone by `--only-cold-start`).
pub fn cold_start_section(cold_start: &Result<ColdStarts, String>, memory_mb: u32) -> String {
    let mut o = String::new();
    let starts = match cold_start {
        Ok(starts) => starts,
        Err(why) => {
            let _ = writeln!(o, "Not measured in this run: {why}");
            return o;
        }
    };
    let hello = &starts.hello_world;
    let _ = writeln!(
        o,
        "Each release binary (`cargo build --release -p stepsync-functions -p stepsync-hello-world --bins`) started as Lambda starts it, against the bench's Runtime API emulator, with `AWS_LAMBDA_FUNCTION_MEMORY_SIZE={memory_mb}`, DynamoDB embedded (dynoxide), fake Google Health and a PutEvents stub on loopback. Each binary is started {STARTS} times, the starts interleaved across binaries: the first is fed one sample from `events/` and runs until it has answered (its answer, first-answer time and peak RSS are that start's); the others stop at the first poll. Start → first poll is the median of the {STARTS}. The baseline is `hello-world` (`hello/`): a `lambda_runtime` function answering a constant, with the same profile and Tokio runtime, measured in the same run; the ratios are to it. This machine is x86_64; Lambda runs arm64 and its own sandbox start comes on top.\n"
    );
    let _ = writeln!(
        o,
        "| binary | sample | size (cargo) | size (`sam build`) | start → first poll | ÷ hello-world | start → first answer | answer | peak RSS | ÷ hello-world |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"
    );
    let sam = |c: &ColdStart| c.sam_build_bytes.map_or_else(|| "–".to_owned(), megabytes);
    let _ = writeln!(
        o,
        "| `{}` (baseline) | `{}` | {} | – | {:.1} ms | 1 | {:.1} ms | {} | {:.1} MB | 1 |",
        hello.function,
        hello.sample,
        megabytes(hello.binary_bytes),
        hello.to_first_poll_ms,
        hello.to_first_answer_ms,
        answer(&hello.outcome),
        hello.peak_rss_kib as f64 / 1024.0
    );
    for c in &starts.functions {
        let _ = writeln!(
            o,
            "| `{}` | `{}` | {} | {} | {:.1} ms | **{:.2}×** | {:.1} ms | {} | {:.1} MB | {:.2}× |",
            c.function,
            c.sample,
            megabytes(c.binary_bytes),
            sam(c),
            c.to_first_poll_ms,
            c.poll_ratio(hello),
            c.to_first_answer_ms,
            answer(&c.outcome),
            c.peak_rss_kib as f64 / 1024.0,
            c.rss_ratio(hello)
        );
    }
    if starts.functions.iter().all(|c| c.sam_build_bytes.is_none()) {
        let _ =
            writeln!(o, "\nNo `sam build` output (`.aws-sam/build/*/bootstrap`) was found: `make release` makes it.");
    }
    o
}
