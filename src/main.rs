//! `lsnat`: parse the command line, run, map errors to one line and an exit code.
//! Exit codes: 0 success, 1 a check found differences, 2 bad input or usage.

use clap::Parser;
use lsnat::capture::PacketMeta;
use lsnat::cli::{AuditArgs, Cli, Command, ReplayArgs, ViewArg};
use lsnat::engine::Algorithm;
use lsnat::engine::View;
use lsnat::output_file::{self, Destination};
use lsnat::replay::{self, Disposition, Observer, ReplayJob};
use lsnat::report::{Summary, golden::GoldenLog, json::JsonReport, load::LoadReport, table};
use lsnat::time::Span;
use lsnat::{check, compare, config};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

struct Progress(indicatif::ProgressBar, u64);

impl Observer for Progress {
    fn packet(&mut self, _: &PacketMeta, _: &Disposition) {
        self.1 += 1;
        if self.1.is_multiple_of(65536) {
            self.0.set_position(self.1);
        }
    }
}

fn replay_cmd(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let ReplayArgs {
        capture,
        config,
        output,
        json,
        members_dir,
        golden,
        view,
        quiet,
        interval,
        compare: compare_configs,
        algorithm,
    } = args;
    if config.is_some() && !compare_configs.is_empty() {
        anyhow::bail!(
            "use either --compare CONFIG... or -c CONFIG, not both (-c with --algorithm NAME... \
             compares algorithms on one config)"
        );
    }
    let config_path = config.clone().unwrap_or_else(|| config::beside(&capture));
    let load_config = || config::load_for(&capture, config.as_deref(), "give one with -c CONFIG");
    if !capture.exists() {
        anyhow::bail!("{}: no such file", capture.display());
    }
    let interval = match &interval {
        None => None,
        Some(t) => match Span::parse(t) {
            Ok(s) if s.0 > 0 => Some(s),
            Ok(_) => anyhow::bail!("--interval: must be longer than 0"),
            Err(e) => anyhow::bail!("--interval `{t}`: {e}"),
        },
    };
    let algorithms = algorithm
        .iter()
        .map(|a| {
            Algorithm::parse(a).ok_or_else(|| {
                anyhow::anyhow!(
                    "--algorithm: unknown algorithm `{a}` (expected one of: {})",
                    Algorithm::NAMES.join(", ")
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let set_view = |cfg: &mut lsnat::engine::EngineConfig| {
        if let Some(v) = view {
            cfg.view = match v {
                ViewArg::Router => View::Router,
                ViewArg::ClientSide => View::ClientSide,
            };
        }
    };
    if !compare_configs.is_empty() || algorithms.len() > 1 {
        if !compare_configs.is_empty() && !algorithms.is_empty() {
            anyhow::bail!("use either --compare CONFIG... or --algorithm NAME..., not both");
        }
        if output.is_some() || members_dir.is_some() || golden.is_some() {
            anyhow::bail!(
                "a comparison writes only the table and --json; drop -o, --members-dir and --golden"
            );
        }
        let mut variants = Vec::new();
        if compare_configs.is_empty() {
            let mut base = load_config()?;
            set_view(&mut base);
            for &a in &algorithms {
                variants.push(compare::Variant::with_algorithm(&base, &config_path, a));
            }
            let mut labels: Vec<String> = variants.iter().map(|v| v.label.clone()).collect();
            compare::number_repeats(&mut labels);
            for (v, l) in variants.iter_mut().zip(labels) {
                v.label = l;
            }
        } else {
            for (p, label) in compare_configs
                .iter()
                .zip(compare::labels(&compare_configs))
            {
                let mut c = config::load(p)?;
                set_view(&mut c);
                variants.push(compare::Variant {
                    label,
                    config_path: p.clone(),
                    config: c,
                });
            }
        }
        let results = compare::run(&capture, variants, interval)?;
        if let Some(p) = &json {
            let mut inputs = replay::inputs(&capture, &config_path);
            for c in &compare_configs {
                inputs.extend(config::input_files(c));
            }
            replay::refuse_overwrite(p, &inputs)?;
            let text = serde_json::to_string_pretty(&compare::to_json(&capture, &results))?;
            write_output(p, &(text + "\n"))?;
        }
        // Every run read the same capture: its warnings are the first run's.
        let warnings = results
            .first()
            .map(|r| r.warnings.clone())
            .unwrap_or_default();
        if quiet {
            warn(&warnings);
        } else {
            let mut text = compare::render(&results, None);
            for w in &warnings {
                text.push_str(&format!("warning: {w}\n"));
            }
            show(
                &text,
                &json.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut cfg = load_config()?;
    set_view(&mut cfg);
    if let Some(&a) = algorithms.first() {
        for v in &mut cfg.virtual_servers {
            v.algorithm = a;
        }
    }
    let mut load = LoadReport::new(&cfg, interval, false);
    let view_used = cfg.view;
    let names: Vec<String> = cfg.virtual_servers.iter().map(|v| v.name.clone()).collect();
    let job = ReplayJob {
        input: capture.clone(),
        config_path: config_path.clone(),
        config: cfg,
        output,
        member_dir: members_dir,
    };
    // Every output, the member captures included, is checked before any is created: none may
    // be an input (the capture, the config, a file the config names), nor share a path.
    let member_paths = replay::member_paths(&job);
    let named: Vec<(&str, &std::path::Path)> = [
        ("--output", &job.output),
        ("--json", &json),
        ("--golden", &golden),
    ]
    .into_iter()
    .filter_map(|(flag, p)| Some((flag, p.as_deref()?)))
    .chain(member_paths.iter().map(|p| ("--members-dir", p.as_path())))
    .collect();
    replay::refuse_shared_output(&named)?;
    let inputs = replay::inputs(&capture, &config_path);
    for (_, out) in &named {
        replay::refuse_overwrite(out, &inputs)?;
    }
    for out in [&job.output, &json, &golden].into_iter().flatten() {
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            replay::create_folder(dir)?;
        }
    }
    let mut json_report = match &json {
        Some(p) => Some(
            JsonReport::create(p, &capture, &config_path, &job.config)
                .map_err(|e| output_error(p, &e, "cannot write report"))?,
        ),
        None => None,
    };
    let mut summary = Summary::default();
    let mut log = GoldenLog::default();
    let show_progress = !quiet && std::io::stderr().is_terminal();
    let mut progress = Progress(
        if show_progress {
            let pb = indicatif::ProgressBar::new_spinner();
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {pos} packets ({per_sec}) {elapsed}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            pb
        } else {
            indicatif::ProgressBar::hidden()
        },
        0,
    );
    let totals = {
        let mut observers: Vec<&mut dyn Observer> = vec![&mut summary, &mut load];
        if let Some(j) = json_report.as_mut() {
            observers.push(j);
        }
        if golden.is_some() {
            observers.push(&mut log);
        }
        if show_progress {
            observers.push(&mut progress);
        }
        replay::run(&job, &mut observers)?
    };
    progress.0.finish_and_clear();
    if let Some(e) = load.interval_error() {
        anyhow::bail!("{}: {e}", capture.display());
    }
    if let (Some(mut j), Some(p)) = (json_report, &json) {
        j.set_load(load.to_json());
        j.finish(&summary, &totals)
            .map_err(|e| anyhow::anyhow!("{}: cannot write report: {e}", p.display()))?;
    }
    if let Some(p) = &golden {
        // Byte for byte what `lsnat check --bless` writes for this capture and config.
        let mut overridden = Vec::new();
        if let Some(v) = view.and_then(|v| clap::ValueEnum::to_possible_value(&v)) {
            overridden.push(format!("view {}", v.get_name()));
        }
        if let Some(a) = algorithms.first() {
            overridden.push(format!("algorithm {}", a.name()));
        }
        let text = check::text(
            &capture,
            &config_path,
            &overridden,
            &names,
            &log,
            &summary,
            &totals,
        );
        write_output(p, &check::snapshot_file(&text))?;
    }
    let mut warnings = totals.all_warnings();
    warnings.extend(table::hint(&summary, view_used));
    if quiet {
        warn(&warnings);
    } else {
        // The warnings end the summary, after the load report (README, "Reports").
        let mut text = table::render_tables(&summary, &totals, None);
        text.push_str(&load.render(None));
        for w in &warnings {
            text.push_str(&format!("warning: {w}\n"));
        }
        show(&text, &named.iter().map(|(_, p)| *p).collect::<Vec<_>>());
    }
    Ok(ExitCode::SUCCESS)
}

/// With `-q`, each warning goes to stderr on a line of its own; without, they are in the
/// summary.
fn warn(warnings: &[String]) {
    for w in warnings {
        eprintln!("lsnat: warning: {w}");
    }
}

/// Prints a command's tables: on stdout, unless stdout is itself one of the command's
/// `outputs` (`-o /dev/stdout`, or the same file by any name), where they would end up inside
/// that output; then on stderr. A reader that went away is no error.
fn show(text: &str, outputs: &[&std::path::Path]) {
    if outputs.iter().any(|p| is_stdout(p)) {
        let _ = std::io::stderr().write_all(text.as_bytes());
    } else {
        let _ = std::io::stdout().write_all(text.as_bytes());
    }
}

/// Whether `path` names the file stdout writes to (`/dev/stdout`, `/proc/self/fd/1`, the file
/// or pipe stdout was redirected to, by any name): the same device and inode. The null device
/// does not count: nothing written to it ends up anywhere.
fn is_stdout(path: &std::path::Path) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(out) = std::fs::metadata(path) else {
        return false;
    };
    let stdout = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata());
    let Ok(stdout) = stdout else {
        return false;
    };
    let null = std::fs::metadata("/dev/null")
        .ok()
        .filter(|n| n.file_type().is_char_device());
    if out.file_type().is_char_device() && null.is_some_and(|n| n.rdev() == out.rdev()) {
        return false;
    }
    (out.dev(), out.ino()) == (stdout.dev(), stdout.ino())
}

/// Writes `text` to `path` through `PATH.partial` (no partial output on failure), or in place
/// when `path` is a device or a FIFO (see [`Destination`]).
fn write_output(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        replay::create_folder(dir)?;
    }
    Destination::of(path)
        .write_whole(text.as_bytes())
        .map_err(|e| {
            // A reader that went away (`--golden /dev/stdout | head`) is no error, as for
            // `check`'s own output: `main` tells it by the io::Error in the chain.
            if e.error.kind() == std::io::ErrorKind::BrokenPipe {
                anyhow::Error::new(e.error)
            } else {
                output_error(path, &e.error, "cannot write")
            }
        })
}

fn audit_cmd(args: AuditArgs) -> anyhow::Result<ExitCode> {
    use lsnat::audit::{self, AuditJob, policy, report, svg, sweep::Sweep};
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| config::beside(&args.capture));
    if !args.capture.exists() {
        anyhow::bail!("{}: no such file", args.capture.display());
    }
    let mut cfg = config::load_for(
        &args.capture,
        args.config.as_deref(),
        "give one with -c CONFIG",
    )?;
    if let Some(v) = args.view {
        cfg.view = match v {
            ViewArg::Router => View::Router,
            ViewArg::ClientSide => View::ClientSide,
        };
    }
    let inputs = replay::inputs(&args.capture, &config_path);
    for out in [&args.json, &args.svg].into_iter().flatten() {
        replay::refuse_overwrite(out, &inputs)?;
    }
    if let (Some(j), Some(s)) = (&args.json, &args.svg) {
        replay::refuse_shared_output(&[("--json", j), ("--svg", s)])?;
    }
    if args.svg.is_some() && args.sweep.is_none() {
        anyhow::bail!("--svg draws a sweep: give --sweep KEY=LO..HI too");
    }
    let file_policies = audit::file_policies(&config_path, &cfg).map_err(anyhow::Error::msg)?;
    // The sweep's other timeouts: the first `-p`, else the config (not a --require-compliant
    // policy, which is audited beside it).
    let sweep = match &args.sweep {
        Some(s) => {
            let base = match args.policies.first() {
                Some(n) => audit::resolve(n, &cfg, &file_policies).map_err(anyhow::Error::msg)?,
                None => audit::config_policy(&cfg),
            };
            Some(Sweep::parse(s, &base).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    let mut names = args.policies.clone();
    if names.is_empty() && args.sweep.is_none() {
        names.push("config".into());
        names.extend(policy::PRESETS.iter().map(|s| s.to_string()));
        names.extend(file_policies.iter().map(|p| p.name.clone()));
    }
    for r in &args.require_compliant {
        if !names.contains(r) {
            names.push(r.clone());
        }
    }
    let mut policies = Vec::new();
    for n in &names {
        let p = audit::resolve(n, &cfg, &file_policies).map_err(anyhow::Error::msg)?;
        if !policies.iter().any(|q: &policy::Policy| q.name == p.name) {
            policies.push(p);
        }
    }
    let job = AuditJob {
        capture: args.capture.clone(),
        config_path: config_path.clone(),
        config: cfg,
        policies,
        sweep,
    };
    let a = audit::run(&job)?;
    if let Some(p) = &args.json {
        let text = serde_json::to_string_pretty(&report::to_json(&a, args.worst))?;
        write_output(p, &(text + "\n"))?;
    }
    if let (Some(p), Some((s, points))) = (&args.svg, &a.sweep) {
        let title = format!(
            "lsnat audit: {} sweep on {}",
            s.key,
            args.capture
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        write_output(p, &svg::render(&title, &s.key, &s.values, points))?;
    }
    if args.quiet {
        warn(&a.warnings);
    } else {
        let text = report::render(&a, args.worst, None);
        let outputs: Vec<&std::path::Path> = [&args.json, &args.svg]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
            .collect();
        show(&text, &outputs);
    }
    let mut failing = Vec::new();
    for r in &args.require_compliant {
        if let Some(res) = a.results.iter().find(|x| {
            x.policy.name == *r
                || audit::resolve(r, &job.config, &file_policies)
                    .is_ok_and(|p| p.name == x.policy.name)
        }) && !audit::compliance::meets_musts(&res.checks)
        {
            let ids: Vec<&str> = res
                .checks
                .iter()
                .filter(|c| c.level == audit::compliance::Level::Must && !c.pass)
                .map(|c| c.id)
                .collect();
            failing.push(format!("{} ({})", res.policy.name, ids.join(", ")));
        }
    }
    if !failing.is_empty() {
        eprintln!(
            "lsnat: policy fails a MUST-level floor: {}",
            failing.join("; ")
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn default_captures() -> anyhow::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    let dir = std::fs::read_dir("captures").map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!(
                "captures: no such folder here: name the captures to check, or run lsnat check \
                 in the folder that holds captures/ and golden/"
            )
        } else {
            anyhow::anyhow!("captures: {e}")
        }
    })?;
    for e in dir {
        let p = e?.path();
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "pcap" | "pcapng") && config::beside(&p).exists() {
            v.push(p);
        }
    }
    if v.is_empty() {
        // A check of nothing would pass, and a CI job with it.
        anyhow::bail!(
            "captures: no capture with a config beside it (NAME.pcap or NAME.pcapng with \
             NAME.toml); name the captures to check"
        );
    }
    v.sort();
    Ok(v)
}

/// Writes `text` to stdout for `lsnat check`. A reader that went away (`lsnat check | head`)
/// is no error: the check goes on, its goldens are blessed as asked, and the exit code still
/// says whether anything differed.
fn say(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// `lsnat check`: its exit code, and what to print once the run's outputs have their names
/// (the goldens `--bless` wrote: none is written until all are, see [`output_file`]).
fn check_cmd(
    captures: Vec<PathBuf>,
    golden_dir: PathBuf,
    bless: bool,
) -> anyhow::Result<(ExitCode, String)> {
    let captures = if captures.is_empty() {
        default_captures()?
    } else {
        captures
    };
    // Every capture's golden is known, and no two captures share one, before anything is
    // written.
    let planned = check::plan(&golden_dir, &captures).map_err(anyhow::Error::msg)?;
    let mut differing = 0;
    let mut blessed = String::new();
    for (c, snap) in &planned {
        let fresh = check::render(c, None, None)?.text;
        if bless {
            replay::refuse_overwrite(snap, &replay::inputs(c, &config::beside(c)))?;
            write_output(snap, &check::snapshot_file(&fresh))?;
            blessed.push_str(&format!("blessed {}\n", snap.display()));
            continue;
        }
        match check::read_snapshot(snap) {
            Ok(stored) if check::same(check::strip_header(&stored), &fresh) => {
                say(&format!("ok      {}\n", c.display()))
            }
            Ok(stored) => {
                differing += 1;
                say(&format!(
                    "DIFFERS {} (golden {})\n",
                    c.display(),
                    snap.display()
                ));
                say(&check::diff(&stored, &fresh));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                differing += 1;
                say(&format!(
                    "MISSING {} (no golden at {}; run `lsnat check --golden-dir {} --bless {}` \
                     to create it)\n",
                    c.display(),
                    snap.display(),
                    shell_word(&golden_dir),
                    shell_word(c)
                ));
            }
            Err(e) => anyhow::bail!("{}: cannot read the golden: {e}", snap.display()),
        }
    }
    if bless {
        blessed.push_str(&format!("{} blessed\n", planned.len()));
        return Ok((ExitCode::SUCCESS, blessed));
    }
    say(&format!(
        "{} checked, {} differ\n",
        planned.len(),
        differing
    ));
    let code = if differing > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    Ok((code, String::new()))
}

/// `path` as one word of a POSIX shell command line: as it is when it holds only characters no
/// shell treats specially, else in single quotes (a single quote in it written `'\''`).
fn shell_word(path: &std::path::Path) -> String {
    let s = path.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A command-line usage error as one line, like every other error (exit 2); help and version
/// requests print as clap prints them.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more"))
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect();
    let mut line = String::new();
    for p in parts {
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') { " " } else { "; " });
        }
        line.push_str(p);
    }
    eprintln!("lsnat: error: {line}; see --help");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    // A run's outputs replace their names together once all are whole; interrupted (Ctrl-C,
    // SIGTERM, SIGHUP) or failed, it leaves none, and what was there before stays.
    output_file::begin_run();
    let _ = ctrlc::set_handler(output_file::on_interrupt);
    let nothing_after = |code| (code, String::new());
    let result = match cli.command {
        Command::Replay(args) => replay_cmd(args).map(nothing_after),
        Command::Audit(args) => audit_cmd(args).map(nothing_after),
        Command::Check {
            captures,
            golden_dir,
            bless,
        } => check_cmd(captures, golden_dir, bless),
    };
    let result = match result {
        Ok((code, after)) => output_file::commit_run()
            .map(|()| {
                say(&after);
                code
            })
            .map_err(|e| anyhow::anyhow!("{}: {}: {}", e.path.display(), e.what, e.error)),
        Err(e) => {
            output_file::abort_run();
            Err(e)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            let msg = e.to_string().replace('\n', " ");
            eprintln!("lsnat: error: {msg}");
            ExitCode::from(2)
        }
    }
}

/// The one-line error of an output that could not be written: `PATH: CANNOT: cause`, or, when
/// another lsnat run holds the output's lock, `PATH: another lsnat run is writing this output
/// (PATH.partial is locked)` as the error says it.
fn output_error(path: &std::path::Path, e: &std::io::Error, cannot: &str) -> anyhow::Error {
    if output_file::is_locked(e) {
        anyhow::anyhow!("{}: {e}", path.display())
    } else {
        anyhow::anyhow!("{}: {cannot}: {e}", path.display())
    }
}
