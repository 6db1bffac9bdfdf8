//! `make bench`: freshness, sweep throughput against the store's floor, requests and dollars
//! per sync, cold start and size. Writes `bench/out/report.md` and `bench/out/report.json`.

mod args;
mod cold_start;
mod cost;
mod error;
mod freshness;
mod machine;
mod prices;
mod report;
mod requests;
mod scale;
mod stats;
mod sweep;
mod template;
mod world;

use args::Args;
use error::BenchError;
use std::process::ExitCode;
use std::time::Instant;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), BenchError> {
    let started = Instant::now();
    let progress = |line: &str| eprintln!("[{:>6.1} s] {line}", started.elapsed().as_secs_f64());
    let machine = machine::Machine::describe();
    progress(&format!("bench on {} cores ({}), {}", machine.cores, machine.cpu_model, machine.rustc));
    let template = template::Template::read()?;
    let prices_path = stepsync_local::workspace_root().join("docs/PRICES.md");
    let prices = prices::parse(&std::fs::read_to_string(&prices_path).map_err(BenchError::io(&prices_path))?)?;
    std::fs::create_dir_all(&args.out).map_err(BenchError::io(&args.out))?;

    let cold_start = if args.skip_cold_start {
        Err("skipped (--skip-cold-start)".to_owned())
    } else {
        progress("start and size: each release binary and hello-world against the Runtime API emulator");
        Ok(cold_start::run(template.memory_mb, &args.out, &progress).await?)
    };
    if args.only_cold_start {
        let json_path = args.out.join("cold-start.json");
        let json = serde_json::to_string_pretty(&cold_start).map_err(|e| BenchError::measurement("report", e))?;
        std::fs::write(&json_path, json).map_err(BenchError::io(&json_path))?;
        let md_path = args.out.join("cold-start.md");
        let md = format!("# Start and size\n\n{}", report::cold_start_section(&cold_start, template.memory_mb));
        std::fs::write(&md_path, md).map_err(BenchError::io(&md_path))?;
        progress(&format!("wrote {} and {}", md_path.display(), json_path.display()));
        return Ok(());
    }

    progress(&format!("freshness: {} notifications on the local stack", args.notifications));
    let freshness = freshness::run(args.notifications, args.load_connections, &progress).await?;
    progress(&format!(
        "  visible after p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        freshness.visible_ms.p50, freshness.visible_ms.p95, freshness.visible_ms.max
    ));
    if let Some(load) = &freshness.under_load {
        progress(&format!(
            "  under a {}-connection sweep ({:.0}/s): {} visible after p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            load.connections,
            load.sweep_per_second,
            load.notifications,
            load.visible_ms.p50,
            load.visible_ms.p95,
            load.visible_ms.max
        ));
    }

    // The bigger sweeps first, each on a table of its own that is dropped before the next.
    let mut grown = Vec::with_capacity(args.sweep_sizes.len());
    for &n in &args.sweep_sizes {
        grown.push(sweep::grown(args.store, n, &progress).await?);
    }

    progress(&format!("sweep: seeding {} connections on {:?}", args.connections, args.store));
    // The sweep reads no stream; the request counts turn it on for theirs.
    let mut world = world::World::start(args.store, stepsync_local::table::Stream::Off).await?;
    world.add_people("sweeper", args.connections, &progress).await?;
    let sweep = sweep::run(&world, &progress).await?;
    progress(&format!(
        "  sweep {:.0}/s against the floor's {:.0}/s: ratio {:.2}",
        sweep.changed.per_second, sweep.floor_per_second, sweep.ratio_to_floor
    ));

    world.env.enable_stream().await;
    let requests = requests::run(&mut world, &progress).await?;
    for s in &requests {
        progress(&format!(
            "  {}: {} reads, {} writes, {} transactions, {} events, {} provider calls",
            s.name,
            s.reads,
            s.writes,
            s.transactions,
            s.events,
            s.provider_total()
        ));
    }
    let solo = world.people.last().ok_or_else(|| BenchError::measurement("item sizes", "nobody seeded"))?;
    let item_sizes = cost::ItemSizes::of(&world.person_items(solo).await?);

    progress("dollars: pricing the measured counts");
    let webhook = requests
        .iter()
        .find(|s| s.name.starts_with("webhook"))
        .ok_or_else(|| BenchError::measurement("dollars", "no webhook scenario"))?;
    let schedule = &world.app.config.schedule;
    let inputs = cost::Inputs {
        prices: &prices,
        sizes: &item_sizes,
        memory_gb: f64::from(template.memory_mb) / 1024.0,
        webhook,
        sweep_changed: &sweep.changed,
        sweep_unchanged: &sweep.unchanged,
        floor_ops: &sweep.floors[0].requests_per_sync,
        webhooks_per_day: args.webhooks_per_day,
        reconcile_hours: schedule.webhook_interval.as_secs_f64() / 3600.0,
        pull_minutes: schedule.pull_interval.as_secs_f64() / 60.0,
        tick_minutes: f64::from(template.sync_interval_minutes),
        tick_ms: sweep.changed.tick_ms,
        shards: f64::from(world.app.config.schedule.shards),
        stream_batch: cost::stream_batch(args.webhooks_per_day),
    };
    let costs = cost::populations(&inputs);
    for c in &costs {
        progress(&format!("  {}: ${:.2} per month for 10,000 people", c.name, c.month.total));
    }

    progress("scale: the capacity model from this run's figures");
    let gb = inputs.memory_gb;
    let changed = cost::scenario_usage(webhook, &webhook.operations, &item_sizes, &prices, gb, inputs.stream_batch);
    let unchanged = cost::sweep_usage(&sweep.unchanged, &sweep.unchanged.requests_per_sync, &item_sizes, &prices, gb);
    let fed = costs
        .iter()
        .find(|c| c.name.starts_with("webhook"))
        .ok_or_else(|| BenchError::measurement("scale", "no webhook-fed population"))?;
    let reconciles_per_day = 24.0 / inputs.reconcile_hours;
    let scale_inputs = scale::Inputs {
        webhooks_per_day: args.webhooks_per_day,
        reconciles_per_day,
        tick_minutes: inputs.tick_minutes,
        worker_concurrency: sweep.worker_concurrency as f64,
        people_per_shard: scale::people_per_shard(
            reconciles_per_day,
            inputs.tick_minutes,
            sweep.worker_concurrency as f64,
        ),
        changed_write_units: changed.write_units,
        changed_read_units: changed.read_units,
        unchanged_read_units: unchanged.read_units,
        provider_calls_per_sync: sweep.changed.provider_calls_per_sync.get("rollup").copied().unwrap_or(1.0),
        dollars_per_10k: fed.month.total,
        sweep_ms_per_connection: std::iter::once((
            sweep.changed.connections,
            sweep.changed.wall_ms / sweep.changed.connections.max(1) as f64,
        ))
        .chain(grown.iter().map(|g| (g.connections, g.ms_per_connection())))
        .collect(),
    };
    let scale = scale::model(&scale_inputs);

    let report = report::Report {
        machine,
        settings: report::Settings {
            connections: args.connections,
            notifications: args.notifications,
            store: args.store,
            webhooks_per_day: args.webhooks_per_day,
            quick: args.quick,
        },
        template,
        cold_start,
        freshness,
        sweep,
        grown,
        requests,
        item_sizes,
        prices,
        costs,
        scale_inputs,
        scale,
        run_seconds: started.elapsed().as_secs_f64(),
    };
    let json_path = args.out.join("report.json");
    let json = serde_json::to_string_pretty(&report).map_err(|e| BenchError::measurement("report", e))?;
    std::fs::write(&json_path, json).map_err(BenchError::io(&json_path))?;
    let md_path = args.out.join("report.md");
    std::fs::write(&md_path, report.markdown()).map_err(BenchError::io(&md_path))?;
    progress(&format!("wrote {} and {}", md_path.display(), json_path.display()));
    Ok(())
}
