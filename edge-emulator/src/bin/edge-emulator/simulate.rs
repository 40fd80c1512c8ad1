//! `simulate` and `compare`: replay, report, write the JSON and HTML, check `--assert`.

use anyhow::Context;

use crate::args::{CompareArgs, SimulateArgs};
use edge_emulator::sim::render;
use edge_emulator::sim::replay;
use edge_emulator::sim::report::Report;
use edge_emulator::sim::scenario::Scenario;
use edge_emulator::sim::setup::{SimSetup, WallFigures};
use edge_emulator::sim::workload::{self, Generator, WriteInvalidation};

pub fn progress_bar(requests: u64, label: &str) -> anyhow::Result<indicatif::ProgressBar> {
    Ok(indicatif::ProgressBar::new(requests).with_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {label:<12} {{pos}}/{{len}} [{{bar:30}}] {{per_sec}} {{eta}}"
        ))?
        .progress_chars("=> "),
    ))
}

/// Writes the JSON (when asked) and the HTML (unless switched off) reports.
pub fn write_reports(
    reports: &[Report],
    run: &render::RunContext,
    json: Option<&std::path::Path>,
    html: &std::path::Path,
    no_html: bool,
) -> anyhow::Result<()> {
    if let Some(path) = json {
        let text = if reports.len() == 1 {
            serde_json::to_string_pretty(&reports[0])?
        } else {
            serde_json::to_string_pretty(reports)?
        };
        if path.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    if !no_html {
        std::fs::write(html, render::html(reports, run))
            .with_context(|| format!("cannot write {}", html.display()))?;
        println!("HTML report: {}", html.display());
    }
    Ok(())
}

/// The command line as typed, for the report's context ("what produced this page").
fn command_line() -> String {
    std::env::args()
        .map(|arg| {
            if arg.contains([' ', '\'', '"', '<', '>', '*']) {
                format!("'{}'", arg.replace('\'', "'\\''"))
            } else {
                arg
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the run's pages say of how they were made, and the `--assert` verdicts.
fn run_context(verdicts: Vec<render::Verdict>) -> render::RunContext {
    #[allow(clippy::disallowed_methods)]
    // why: the date the report was made, shown on it (never in the deterministic JSON)
    let now = std::time::SystemTime::now();
    render::RunContext {
        command_line: command_line(),
        version: env!("CARGO_PKG_VERSION"),
        date: render::rfc3339(now),
        verdicts,
    }
}

/// A trace file's records, and the name the report gives the workload. An empty trace is an
/// error that says so, rather than a run that measures nothing.
fn load_trace(
    path: &std::path::Path,
) -> anyhow::Result<(Vec<edge_emulator::sim::trace::TraceRecord>, String)> {
    let format = edge_emulator::sim::trace::TraceFormat::from_path(path)?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the trace {}", path.display()))?;
    let records = edge_emulator::sim::trace::parse_trace(&text, format)
        .with_context(|| format!("fix the trace {}", path.display()))?;
    anyhow::ensure!(
        !records.is_empty(),
        "the trace {} is empty: it holds no request (no lines, or a header row alone); add one \
         request per line (the columns are in `edge-emulator simulate --help`)",
        path.display()
    );
    // The file name only, so the report does not depend on where it was run from.
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    let workload = format!("trace {name} ({} requests)", records.len());
    Ok((records, workload))
}

/// Checks `assertions` against each report (named when there are several) and prints the
/// verdicts; a report whose caches never warmed or whose figures beat their bound says so
/// beside them. Returns the verdicts and whether the run must fail.
fn verdicts(
    assertions: &[edge_emulator::sim::assertions::Assertion],
    reports: &[Report],
) -> (Vec<render::Verdict>, bool) {
    let mut verdicts = Vec::new();
    let mut failed = false;
    for report in reports {
        let outcomes = edge_emulator::sim::assertions::check(assertions, report);
        let warning = report.cold_caches.as_ref().map(|c| c.summary());
        for outcome in outcomes {
            failed |= !outcome.passed;
            verdicts.push(render::Verdict {
                report: (reports.len() > 1).then(|| report.scenario.name.clone()),
                text: outcome.to_string(),
                passed: outcome.passed,
                warning: warning.clone(),
            });
        }
        // A gate must not pass on figures that cannot be true.
        if !assertions.is_empty() && render::bound_warning(report).is_some() {
            failed = true;
            verdicts.push(render::Verdict {
                report: (reports.len() > 1).then(|| report.scenario.name.clone()),
                text: "a measured figure beats its stream bound (see the WARNING) ✗".into(),
                passed: false,
                warning: None,
            });
        }
    }
    (verdicts, failed)
}

/// Prints the verdicts on stderr (seen when stdout is the JSON) and exits with
/// [`crate::ASSERTION_FAILED`] when one failed.
fn finish(verdicts: &[render::Verdict], reports: &[Report], failed: bool) {
    for report in reports {
        // Said on stderr too, so it is seen when stdout is the JSON.
        if let Some(warning) = render::bound_warning(report) {
            eprint!("{warning}");
        }
    }
    for verdict in verdicts {
        eprintln!("{}", verdict.line());
    }
    if failed {
        let missed = verdicts.iter().filter(|v| !v.passed).count();
        eprintln!(
            "{missed} of {} assertions failed (exit status {})",
            verdicts.len(),
            crate::ASSERTION_FAILED
        );
        std::process::exit(crate::ASSERTION_FAILED);
    }
}

pub fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    if args.print_scenario {
        print!("{}", edge_emulator::sim::scenario::DEFAULT_SCENARIO);
        return Ok(());
    }
    let (scenario, mut setup) = args.common.setup()?;
    let (events, total): (Box<dyn Iterator<Item = workload::SimEvent>>, u64) = match &args.trace {
        Some(path) => {
            let (records, name) = load_trace(path)?;
            let total = records.len() as u64;
            setup.spec = None;
            setup.workload = name;
            if args.common.warmup_s.is_none() {
                setup.warmup_s = 0.0;
            }
            (Box::new(workload::from_trace(records)), total)
        }
        None => (
            Box::new(Generator::new(scenario.workload.clone(), scenario.seed)),
            scenario.workload.requests,
        ),
    };
    let progress = progress_bar(total, "simulating")?;
    let (report, wall) = replay::simulate(&setup, events, total, &progress)?;
    progress.finish_and_clear();
    let reports = std::slice::from_ref(&report);
    let (verdicts, failed) = verdicts(&args.assertions.list, reports);
    let run = run_context(verdicts);
    if args.json.as_deref().is_none_or(|p| p.as_os_str() != "-") {
        print!("{}", render::table(&report, &run));
    }
    write_reports(
        reports,
        &run,
        args.json.as_deref(),
        &args.html,
        args.no_html,
    )?;
    eprintln!(
        "{} requests in {:.1} s of wall time: {:.0} simulated requests/s (one core)",
        wall.requests,
        wall.elapsed.as_secs_f64(),
        wall.requests_per_second()
    );
    eprintln!("{}", isolate_line(&wall.isolates));
    let codings = &wall.codings;
    eprintln!(
        "codings (miss and background, every PoP): {} computed in {:.1} s of coder time, {} \
         answered from the memo",
        codings.computed,
        codings.spent.as_secs_f64(),
        codings.reused
    );
    finish(&run.verdicts, reports, failed);
    Ok(())
}

/// How the worker's instances were used, for the line after a run.
pub fn isolate_line(isolates: &edge_emulator::cdn::stats::IsolateReport) -> String {
    let retired: Vec<String> = isolates
        .retired
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    format!(
        "worker instances ({}): {} created, {:.1} calls each (at most {}); retired: {}",
        isolates.mode,
        isolates.created,
        isolates.requests_per_isolate,
        isolates.max_requests_per_isolate,
        if retired.is_empty() {
            "none".to_string()
        } else {
            retired.join(", ")
        }
    )
}

/// Applies one `--variants` entry to a copy of the setup.
pub fn variant(base: &SimSetup, scenario: &Scenario, name: &str) -> anyhow::Result<SimSetup> {
    let mut setup = base.clone();
    let mut spec = scenario.workload.clone();
    let number = |text: &str| -> anyhow::Result<f64> {
        text.parse::<f64>()
            .ok()
            .filter(|n| *n >= 0.0)
            .with_context(|| format!("variant {name:?}: {text:?} is not a number ≥ 0"))
    };
    match name.split_once('=') {
        None if name == "tiered" => setup.regional_caching = true,
        None if name == "shield" => {
            setup.regional_caching = true;
            setup.topology = setup.topology.with_one_shield();
        }
        None if name == "edge-only" => setup.regional_caching = false,
        None if name == "no-routing" => setup.routing_toml = None,
        Some(("swr", v)) => spec.swr_s = number(v)? as u64,
        Some(("ttl", v)) => spec.ttl_s = number(v)? as u64,
        Some(("capacity-mib", v)) => {
            setup.edge_capacity_bytes = Some((number(v)? * 1024.0 * 1024.0) as u64)
        }
        // How writes invalidate: a new URL per version, a purge, or a soft purge.
        None if name == "version" => spec.write_invalidation = WriteInvalidation::Version,
        None if name == "purge" => spec.write_invalidation = WriteInvalidation::Purge,
        None if name == "soft-purge" => spec.write_invalidation = WriteInvalidation::SoftPurge,
        // A cache policy of one route for every path with this one feature (0: off).
        Some(("jitter", v)) => {
            setup.cache_policy_toml = Some(format!(
                "[[routes]]\npath = \"*\"\nttl_jitter = {}\n",
                number(v)?
            ))
        }
        // Background recompression of coded variants (the cache policy's [compression]).
        Some(("recompress", v)) => {
            let on = match v {
                "on" => true,
                "off" => false,
                _ => anyhow::bail!("variant {name:?}: use recompress=on or recompress=off"),
            };
            setup.cache_policy_toml = Some(format!("[compression]\nbackground = {on}\n"))
        }
        // Who composes the dashboard (the workload's `compose`): the edge or the origin.
        Some(("compose", v)) => {
            spec.compose = match v {
                "edge" => edge_emulator::sim::workload::Compose::Edge,
                "origin" => edge_emulator::sim::workload::Compose::Origin,
                _ => anyhow::bail!("variant {name:?}: use compose=edge or compose=origin"),
            }
        }
        Some(("negative", v)) => {
            let secs = number(v.strip_suffix('s').unwrap_or(v))? as u64;
            setup.cache_policy_toml = Some(format!(
                "[[routes]]\npath = \"*\"\nnegative_ttl_secs = {secs}\n"
            ))
        }
        _ => anyhow::bail!(
            "unknown variant {name:?}; use tiered, shield, edge-only, no-routing, swr=SECS, \
             ttl=SECS, capacity-mib=MIB, jitter=FRACTION, negative=SECS, recompress=on|off, \
             compose=edge|origin (who composes the dashboard), or version, purge, soft-purge \
             (how writes invalidate)"
        ),
    }
    spec.validate()?;
    setup.name = name.to_string();
    setup.workload = spec.describe();
    setup.spec = Some(spec);
    Ok(setup)
}

/// Variants that change the workload itself, which a trace fixes.
const WORKLOAD_VARIANTS: [&str; 6] = ["swr", "ttl", "version", "purge", "soft-purge", "compose"];

pub fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let (scenario, base) = args.common.setup()?;
    anyhow::ensure!(
        (2..=render::MAX_COMPARED_REPORTS).contains(&args.variants.len()),
        "compare needs 2 to {} variants",
        render::MAX_COMPARED_REPORTS
    );
    let trace = match &args.trace {
        Some(path) => {
            for name in &args.variants {
                let kind = name.trim().split('=').next().unwrap_or_default();
                anyhow::ensure!(
                    !WORKLOAD_VARIANTS.contains(&kind),
                    "variant {name:?} changes the generated workload, which --trace replaces; \
                     with a trace use tiered, shield, edge-only, no-routing, capacity-mib=MIB, \
                     jitter=FRACTION, negative=SECS or recompress=on|off"
                );
            }
            Some(load_trace(path)?)
        }
        None => None,
    };
    let mut setups = args
        .variants
        .iter()
        .map(|name| variant(&base, &scenario, name.trim()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some((_, name)) = &trace {
        for setup in &mut setups {
            setup.spec = None;
            setup.workload = name.clone();
            if args.common.warmup_s.is_none() {
                setup.warmup_s = 0.0;
            }
        }
    }
    let records = trace.map(|(records, _)| records);
    let bars = indicatif::MultiProgress::new();
    let slots: Vec<std::sync::Mutex<Option<RunResult>>> =
        setups.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    // Each configuration is its own deterministic run: two at a time use both cores.
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(setup) = setups.get(i) else { break };
                let result = run_variant(setup, records.as_deref(), &bars);
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
            });
        }
    });
    let mut reports = Vec::new();
    for (setup, slot) in setups.iter().zip(slots) {
        let result = slot
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .context("a comparison run did not finish")?;
        let (report, wall) = result.with_context(|| format!("variant {}", setup.name))?;
        eprintln!(
            "{}: {} requests in {:.1} s of wall time ({:.0}/s)",
            setup.name,
            wall.requests,
            wall.elapsed.as_secs_f64(),
            wall.requests_per_second()
        );
        reports.push(report);
    }
    let (verdicts, failed) = verdicts(&args.assertions.list, &reports);
    let run = run_context(verdicts);
    if args.json.as_deref().is_none_or(|p| p.as_os_str() != "-") {
        print!("{}", render::compare_table(&reports, &run));
    }
    write_reports(
        &reports,
        &run,
        args.json.as_deref(),
        &args.html,
        args.no_html,
    )?;
    finish(&run.verdicts, &reports, failed);
    Ok(())
}

/// One comparison run's outcome.
pub type RunResult = anyhow::Result<(Report, WallFigures)>;

/// Runs one variant: the trace's `records` when given, else its generated workload.
pub fn run_variant(
    setup: &SimSetup,
    records: Option<&[edge_emulator::sim::trace::TraceRecord]>,
    bars: &indicatif::MultiProgress,
) -> RunResult {
    if let Some(records) = records {
        let total = records.len() as u64;
        let bar = bars.add(progress_bar(total, &setup.name)?);
        let events = workload::from_trace(records.to_vec());
        let result = replay::simulate(setup, events, total, &bar);
        bar.finish_and_clear();
        return result;
    }
    let spec = setup
        .spec
        .clone()
        .context("variants are generated workloads")?;
    let bar = bars.add(progress_bar(spec.requests, &setup.name)?);
    let result = replay::simulate(
        setup,
        Generator::new(spec.clone(), setup.seed),
        spec.requests,
        &bar,
    );
    bar.finish_and_clear();
    result
}
