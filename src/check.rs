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
/// twice (the same file, config and golden, however the path is spelled) once, in the order
/// first given. A capture given under another name (a symbolic or hard link) has its own
/// config and golden, so it is checked under each. Two different captures, or names, whose
/// goldens would be one file (`x.pcap` and `x.pcapng`, or `a/x.pcap` and `b/x.pcap`) are
/// refused in one line naming both and the golden: each would be compared with, and blessed
/// over, the other's.
pub fn plan(dir: &Path, captures: &[PathBuf]) -> Result<Vec<(PathBuf, PathBuf)>, String> {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut planned: Vec<(PathBuf, (PathBuf, PathBuf), PathBuf)> = Vec::new();
    for c in captures {
        let snap = snapshot_path(dir, c);
        let real = (canonical(c), canonical(&config::beside(c)));
        if planned.iter().any(|(_, r, s)| *r == real && *s == snap) {
            continue;
        }
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
    // The capture first, so a mistyped capture name is reported as such, not as its missing
    // config.
    crate::capture::CaptureReader::open(capture)?;
    let cfg = config::load_for(
        capture,
        config_path,
        "each capture lsnat check replays needs one there",
    )?;
    let config_path = config_path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| config::beside(capture));
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
    let text = text(capture, &config_path, &[], &names, &log, &summary, &totals);
    Ok(Golden { text, log, totals })
}

/// The golden text of a replay of `capture` with the config at `config_path` (whose virtual
/// servers are `names`), from what its observers collected: the packet log, the session table,
/// the pool events and the summary. The title names the files, not the paths as typed, so the
/// text is the same from any folder, and the settings the command line overrode
/// (`overridden`, e.g. `algorithm maglev`: `lsnat replay --golden` with `--view` or
/// `--algorithm`), so a later `check` of that golden shows why it differs. `lsnat check`,
/// `--bless` and `lsnat replay --golden` all write and compare this text (in
/// [`snapshot_file`]).
pub fn text(
    capture: &Path,
    config_path: &Path,
    overridden: &[String],
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
    let mut title = format!(
        "lsnat replay of {} with {}",
        file(capture),
        file(config_path)
    );
    if !overridden.is_empty() {
        title.push_str(&format!(" (overridden: {})", overridden.join(", ")));
    }
    let mut text = log.render(&title, names);
    text.push_str("## summary\n");
    text.push_str(&table::render(summary, totals, Some(100)));
    text
}

/// A stored snapshot file, header and all (see [`strip_header`] for its text), with its line
/// ends as written: a checkout that turned them into CRLF (git's `autocrlf`) still compares
/// equal, as the text never holds a carriage return of its own.
pub fn read_snapshot(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(if text.contains("\r\n") {
        text.replace("\r\n", "\n")
    } else {
        text
    })
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
///
/// A line diff costs time in proportion to the lines times the differences, so past the lines
/// the two share at their start and end, only the first [`DIFF_LINES`] lines of each side are
/// diffed; a last line says how many more differ. A golden of a million packets that differs
/// everywhere then prints its first differences at once, where the whole diff took minutes.
pub fn diff(stored_file: &str, fresh: &str) -> String {
    let body = strip_header(stored_file);
    let header = &stored_file[..stored_file.len() - body.len()];
    let old = format!("{header}{}\n", body.trim_end());
    let new = format!("{header}{}\n", fresh.trim_end());
    let (old_cut, new_cut, rest) = cut_for_diff(&old, &new, DIFF_LINES);
    let mut out = similar::TextDiff::from_lines(old_cut, new_cut)
        .unified_diff()
        .context_radius(2)
        .header("golden", "replay")
        .to_string();
    if let Some((old_more, new_more)) = rest {
        out.push_str(&format!(
            "... and {old_more} more lines of the golden and {new_more} of the replay after \
             these, not compared line by line\n"
        ));
    }
    out
}

/// How many lines of each side, past what they share at their start, [`diff`] compares.
pub const DIFF_LINES: usize = 5000;

/// `old` and `new` cut for [`diff`]: whole when, past their common first and last lines, each
/// has at most `limit` lines; else each cut `limit` lines past their common start (at a line
/// end), with the numbers of lines left out of each.
fn cut_for_diff<'a>(
    old: &'a str,
    new: &'a str,
    limit: usize,
) -> (&'a str, &'a str, Option<(usize, usize)>) {
    let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
    let new_lines: Vec<&str> = new.split_inclusive('\n').collect();
    let prefix = old_lines
        .iter()
        .zip(&new_lines)
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = old_lines[prefix..]
        .iter()
        .rev()
        .zip(new_lines[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let old_middle = old_lines.len() - prefix - suffix;
    let new_middle = new_lines.len() - prefix - suffix;
    if old_middle <= limit && new_middle <= limit {
        return (old, new, None);
    }
    let bytes = |lines: &[&str], n: usize| lines[..n].iter().map(|l| l.len()).sum::<usize>();
    let old_keep = prefix + old_middle.min(limit);
    let new_keep = prefix + new_middle.min(limit);
    (
        &old[..bytes(&old_lines, old_keep)],
        &new[..bytes(&new_lines, new_keep)],
        Some((old_lines.len() - old_keep, new_lines.len() - new_keep)),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(prefix: &str, n: usize) -> String {
        (0..n).map(|i| format!("{prefix} {i}\n")).collect()
    }

    /// Two goldens that differ on every line past their first: the diff compares the first
    /// [`DIFF_LINES`] of each and says how many more there are; one that differs in a line
    /// is diffed whole, however long it is.
    #[test]
    fn diff_compares_a_bounded_number_of_differing_lines() {
        let header = "---\nsource: tests/golden.rs\n---\n";
        let n = DIFF_LINES * 3;
        let stored = format!("{header}same\n{}", numbered("old", n));
        let fresh = format!("same\n{}", numbered("new", n + 7));
        let d = diff(&stored, &fresh);
        assert!(d.contains("\n-old 0\n"), "{}", &d[..200]);
        assert!(d.contains("\n+new 0\n"));
        assert!(d.contains(&format!("-old {}\n", DIFF_LINES - 1)));
        assert!(!d.contains(&format!("-old {DIFF_LINES}\n")));
        assert!(d.ends_with(&format!(
            "... and {} more lines of the golden and {} of the replay after these, not \
             compared line by line\n",
            n - DIFF_LINES,
            n + 7 - DIFF_LINES
        )));

        let long = numbered("line", n);
        let stored = format!("{header}{long}");
        let fresh = long.replacen(&format!("line {}\n", n - 2), "changed\n", 1);
        let d = diff(&stored, &fresh);
        assert!(d.contains(&format!("-line {}\n+changed\n", n - 2)), "{d}");
        assert!(!d.contains("not compared"));
        // Hunk line numbers are the snapshot file's: three header lines, then line n - 2
        // (0-based) is file line n + 2, shown with two lines of context before it.
        assert!(d.contains(&format!("@@ -{n},4 +{n},4 @@")), "{d}");
    }
}
