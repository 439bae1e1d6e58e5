//! Goldens: the replay of a capture rendered as text ([`crate::report::golden`]) and compared
//! with a stored snapshot. `cargo test` compares through insta; `lsnat check` does the same
//! comparison without cargo, for users' CI, and rewrites goldens only when asked (`--bless`).
//! The snapshot files are insta's format: a `---` header, then the text.

use crate::config;
use crate::replay::{self, ReplayJob, ReplayTotals};
use crate::report::{Summary, golden::GoldenLog, table};
use std::path::{Path, PathBuf};

/// A capture's golden text, and the replay's per-packet log and totals.
pub struct Golden {
    /// The text stored in the snapshot.
    pub text: String,
    /// The packet log (which packets were forwarded).
    pub log: GoldenLog,
    /// The replay totals.
    pub totals: ReplayTotals,
}

/// The name of a capture's golden: its file name without extension.
pub fn name(capture: &Path) -> String {
    capture
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "capture".into())
}

/// Where a capture's golden lives in `dir`.
pub fn snapshot_path(dir: &Path, capture: &Path) -> PathBuf {
    dir.join(format!("{}.snap", name(capture)))
}

/// The captures `lsnat check` goes through, each with its golden in `dir`: a capture given
/// twice (the same file under any name) once, in the order first given. Two different captures
/// whose goldens would be one file (`x.pcap` and `x.pcapng`, or `a/x.pcap` and `b/x.pcap`) are
/// refused in one line naming both and the golden: each would be compared with, and blessed
/// over, the other's.
pub fn plan(dir: &Path, captures: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>, String> {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut planned: Vec<(PathBuf, PathBuf, PathBuf)> = Vec::new();
    for c in captures {
        let real = canonical(c);
        if planned.iter().any(|(_, r, _)| *r == real) {
            continue;
        }
        let snap = snapshot_path(dir, c);
        if let Some((other, _, _)) = planned.iter().find(|(_, _, s)| *s == snap) {
            return Err(format!(
                "{}: {} and {} would share this golden; rename one, or check them \
                 separately with their own --golden-dir",
                snap.display(),
                other.display(),
                c.display()
            ));
        }
        planned.push((c.clone(), real, snap));
    }
    Ok(planned.into_iter().map(|(c, _, s)| (c, s)).collect())
}

/// Replays `capture` with its configuration (`config_path`, default: beside it) and renders the
/// golden text, optionally also writing the rewritten capture to `output`.
pub fn render(
    capture: &Path,
    config_path: Option<&Path>,
    output: Option<&Path>,
) -> anyhow::Result<Golden> {
    let config_path = config_path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| config::beside(capture));
    let cfg = config::load(&config_path)?;
    let names: Vec<String> = cfg.virtual_servers.iter().map(|v| v.name.clone()).collect();
    let job = ReplayJob {
        input: capture.to_path_buf(),
        config_path: config_path.clone(),
        config: cfg,
        output: output.map(Path::to_path_buf),
        member_dir: None,
    };
    let mut log = GoldenLog::default();
    let mut summary = Summary::default();
    let totals = replay::run(&job, &mut [&mut log, &mut summary])?;
    let text = text(capture, &config_path, &names, &log, &summary, &totals);
    Ok(Golden { text, log, totals })
}

/// The golden text of a replay of `capture` with the config at `config_path` (whose virtual
/// servers are `names`), from what its observers collected: the packet log, the session table,
/// the pool events and the summary. The title names the files, not the paths as typed, so the
/// text is the same from any folder. `lsnat check`, `--bless` and `lsnat replay --golden` all
/// write and compare this text (in [`snapshot_file`]).
pub fn text(
    capture: &Path,
    config_path: &Path,
    names: &[String],
    log: &GoldenLog,
    summary: &Summary,
    totals: &ReplayTotals,
) -> String {
    let file = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let title = format!(
        "lsnat replay of {} with {}",
        file(capture),
        file(config_path)
    );
    let mut text = log.render(&title, names);
    text.push_str("## summary\n");
    text.push_str(&table::render(summary, totals, Some(100)));
    text
}

/// A stored snapshot file, header and all (see [`strip_header`] for its text).
pub fn read_snapshot(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

/// The text of a snapshot file, without its insta header.
pub fn strip_header(raw: &str) -> &str {
    if let Some(rest) = raw.strip_prefix("---\n")
        && let Some(end) = rest.find("\n---\n")
    {
        return &rest[end + 5..];
    }
    raw
}

/// A snapshot file's text in insta's format: its header, then `text`.
pub fn snapshot_file(text: &str) -> String {
    format!("---\nsource: tests/golden.rs\n---\n{}\n", text.trim_end())
}

/// Whether a snapshot's text and a fresh rendering agree (trailing whitespace aside).
pub fn same(stored: &str, fresh: &str) -> bool {
    stored.trim_end() == fresh.trim_end()
}

/// A readable unified diff of a stored snapshot file (`stored_file`, header and all) → a
/// fresh rendering: the fresh text is given the stored file's header, so hunk line numbers are
/// those of the snapshot file on both sides. Both end with one newline, as [`snapshot_file`]
/// writes them (trailing whitespace aside, as in [`same`]).
pub fn diff(stored_file: &str, fresh: &str) -> String {
    let body = strip_header(stored_file);
    let header = &stored_file[..stored_file.len() - body.len()];
    let old = format!("{header}{}\n", body.trim_end());
    let new = format!("{header}{}\n", fresh.trim_end());
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(2)
        .header("golden", "replay")
        .to_string()
}

/// The load-share golden of `capture` replayed with `config_path` (tests/algorithms/): every
/// session's binding decision (algorithm, each candidate's figure and bound sessions, chosen
/// member, affinity), then the load report per member and per `interval`, fairness and the
/// algorithms with their parameters. Per-packet lines are left to the capture's own golden.
pub fn render_algorithm(
    capture: &Path,
    config_path: &Path,
    interval: crate::time::Span,
) -> anyhow::Result<String> {
    use crate::report::load::LoadReport;
    let cfg = config::load(config_path)?;
    let job = ReplayJob {
        input: capture.to_path_buf(),
        config_path: config_path.to_path_buf(),
        config: cfg.clone(),
        output: None,
        member_dir: None,
    };
    let mut load = LoadReport::new(&cfg, Some(interval), true);
    let mut summary = Summary::default();
    let totals = replay::run(&job, &mut [&mut load, &mut summary])?;
    let file = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut text = format!(
        "# lsnat replay of {} with {}\n## decisions: session, time, virtual server, key -> member, algorithm, [member=figure/bound ...]\n",
        file(capture),
        file(config_path)
    );
    text.push_str(&load.render_decisions(totals.first_ts.unwrap_or_default()));
    text.push_str("## load\n");
    text.push_str(&load.render(Some(100)));
    let dropped: Vec<String> = summary
        .dropped
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    text.push_str(&format!(
        "sessions bound {}; dropped: {}\n",
        summary.sessions,
        if dropped.is_empty() {
            "none".to_string()
        } else {
            dropped.join(", ")
        }
    ));
    Ok(text)
}
