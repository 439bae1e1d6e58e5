//! `lsnat replay CAPTURE --compare a.toml --compare b.toml` (or `--algorithm rr --algorithm
//! least-load`): the same capture replayed once per configuration, sequentially, and the load
//! reports ([`crate::report::load`]) set side by side: sessions and shares per member, fairness,
//! affinity. Each replay is an independent engine, so the results are exactly those of separate
//! `lsnat replay` runs.

use crate::engine::{Algorithm, EngineConfig};
use crate::replay::{self, ReplayJob};
use crate::report::Summary;
use crate::report::load::{LoadReport, fmt_fig, jain, max_min};
use crate::report::table::{fit, right, table};
use crate::time::Span;
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// One configuration to replay.
#[derive(Clone, Debug)]
pub struct Variant {
    /// Column label.
    pub label: String,
    /// Its configuration file.
    pub config_path: PathBuf,
    /// The configuration.
    pub config: EngineConfig,
}

impl Variant {
    /// `base` with every virtual server's algorithm set to `algorithm`.
    pub fn with_algorithm(base: &EngineConfig, path: &Path, algorithm: Algorithm) -> Variant {
        let mut config = base.clone();
        for v in &mut config.virtual_servers {
            v.algorithm = algorithm;
        }
        Variant {
            label: algorithm.name().to_string(),
            config_path: path.to_path_buf(),
            config,
        }
    }
}

/// Column labels for configurations compared from `paths`: each file's name without extension,
/// and where two would read alike, its parent folder's name before it (`x/lb`, `y/lb`), else
/// the path as given; a path given twice gets its position after it (`lb #2`).
pub fn labels(paths: &[PathBuf]) -> Vec<String> {
    let stem = |p: &Path| crate::check::name(p);
    let with_parent = |p: &Path| match p.parent().and_then(Path::file_name) {
        Some(d) => format!("{}/{}", d.to_string_lossy(), stem(p)),
        None => p.display().to_string(),
    };
    let as_given = |p: &Path| p.display().to_string();
    let mut labels: Vec<String> = paths.iter().map(|p| stem(p)).collect();
    for better in [&with_parent as &dyn Fn(&Path) -> String, &as_given] {
        let clash: Vec<bool> = labels
            .iter()
            .map(|l| labels.iter().filter(|m| *m == l).count() > 1)
            .collect();
        for (i, p) in paths.iter().enumerate() {
            if clash[i] {
                labels[i] = better(p);
            }
        }
    }
    number_repeats(&mut labels);
    labels
}

/// Gives a label that an earlier one already reads its position after it (`lb #2`), so every
/// column of a comparison has a label of its own (`--compare` a file twice, `--algorithm` a
/// name twice).
pub fn number_repeats(labels: &mut [String]) {
    for i in 0..labels.len() {
        if labels[..i].contains(&labels[i]) {
            labels[i] = format!("{} #{}", labels[i], i + 1);
        }
    }
}

/// The result of one replay.
pub struct Compared {
    /// Which configuration.
    pub variant: Variant,
    /// Its load report.
    pub load: LoadReport,
    /// Its summary.
    pub summary: Summary,
    /// Its warnings ([`crate::replay::ReplayTotals::all_warnings`]).
    pub warnings: Vec<String>,
}

/// Replays `capture` once per variant.
pub fn run(
    capture: &Path,
    variants: Vec<Variant>,
    interval: Option<Span>,
) -> anyhow::Result<Vec<Compared>> {
    let mut out = Vec::new();
    for variant in variants {
        let job = ReplayJob {
            input: capture.to_path_buf(),
            config_path: variant.config_path.clone(),
            config: variant.config.clone(),
            output: None,
            member_dir: None,
        };
        let mut load = LoadReport::new(&variant.config, interval, false);
        let mut summary = Summary::default();
        let totals = replay::run(&job, &mut [&mut load, &mut summary])
            .map_err(|e| anyhow::anyhow!("{} ({}): {e}", variant.label, capture.display()))?;
        if let Some(e) = load.interval_error() {
            anyhow::bail!("{}: {e}", capture.display());
        }
        out.push(Compared {
            variant,
            load,
            summary,
            warnings: totals.all_warnings(),
        });
    }
    Ok(out)
}

/// The side-by-side table: one column per configuration, one row per member (sessions and
/// share), then fairness and affinity rows.
pub fn render(results: &[Compared], width: Option<u16>) -> String {
    let mut members: Vec<Ipv4Addr> = Vec::new();
    for r in results {
        for m in &r.load.members {
            if !members.contains(m) {
                members.push(*m);
            }
        }
    }
    let mut header = vec!["sessions (share)".to_string()];
    header.extend(results.iter().map(|r| r.variant.label.clone()));
    let mut t = table(&header);
    for m in &members {
        let mut row = vec![m.to_string()];
        for r in results {
            let total: u64 = r.load.totals.iter().map(|l| l.sessions).sum();
            // `-`: not a member in this configuration (0 would read as a member never chosen).
            let Some(i) = r.load.members.iter().position(|x| x == m) else {
                row.push("-".into());
                continue;
            };
            let n = r.load.totals[i].sessions;
            row.push(if total == 0 {
                format!("{n}")
            } else {
                format!("{n} ({:.1}%)", n as f64 * 100.0 / total as f64)
            });
        }
        t.add_row(row);
    }
    let mut bound = vec!["sessions bound".to_string()];
    bound.extend(results.iter().map(|r| r.summary.sessions.to_string()));
    t.add_row(bound);
    let figure_row = |name: &str, f: &dyn Fn(&LoadReport) -> Option<f64>| {
        let mut row = vec![name.to_string()];
        row.extend(results.iter().map(|r| fmt_fig(f(&r.load))));
        row
    };
    t.add_row(figure_row("Jain, sessions", &|l| jain(&l.sessions())));
    t.add_row(figure_row("Jain, bytes", &|l| jain(&l.bytes())));
    t.add_row(figure_row("max/min, sessions", &|l| max_min(&l.sessions())));
    t.add_row(figure_row("max/min, bytes", &|l| max_min(&l.bytes())));
    // Packets dropped, by reason: for want of a member always, and every other reason any of
    // the configurations dropped packets for (a configuration can drop what another forwards).
    let mut reasons = vec!["no-member-available"];
    for r in results {
        for reason in r.summary.dropped.keys() {
            if !reasons.contains(reason) {
                reasons.push(reason);
            }
        }
    }
    reasons[1..].sort_unstable();
    for reason in reasons {
        let mut row = vec![format!("dropped: {reason}")];
        row.extend(results.iter().map(|r| {
            r.summary
                .dropped
                .get(reason)
                .copied()
                .unwrap_or(0)
                .to_string()
        }));
        t.add_row(row);
    }
    if results.iter().any(|r| !r.load.affinity.is_empty()) {
        for k in ["kept", "new", "broken"] {
            let mut row = vec![format!("affinity {k}")];
            row.extend(
                results
                    .iter()
                    .map(|r| r.load.affinity.get(k).copied().unwrap_or(0).to_string()),
            );
            t.add_row(row);
        }
    }
    right(&mut t, 1);
    fit(&mut t, width);
    format!("{t}\n")
}

/// The comparison as JSON (schema `lsnat-compare/1`): one section per configuration.
pub fn to_json(capture: &Path, results: &[Compared]) -> Value {
    json!({
        "schema": "lsnat-compare/1",
        "tool": format!("lsnat {}", env!("CARGO_PKG_VERSION")),
        "capture": capture.display().to_string(),
        "runs": results.iter().map(|r| json!({
            "label": r.variant.label,
            "config": r.variant.config_path.display().to_string(),
            "sessions_bound": r.summary.sessions,
            "dropped": r.summary.dropped,
            "load": r.load.to_json(),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::labels;
    use std::path::PathBuf;

    fn of(paths: &[&str]) -> Vec<String> {
        labels(&paths.iter().map(PathBuf::from).collect::<Vec<_>>())
    }

    #[test]
    fn labels_are_names_unless_they_clash() {
        assert_eq!(of(&["a.toml", "b/c.toml"]), ["a", "c"]);
        assert_eq!(
            of(&["x/lb.toml", "y/lb.toml", "lb2.toml"]),
            ["x/lb", "y/lb", "lb2"]
        );
        // Same folder name: the paths as given; the same path twice: numbered.
        assert_eq!(
            of(&["p/x/lb.toml", "q/x/lb.toml"]),
            ["p/x/lb.toml", "q/x/lb.toml"]
        );
        assert_eq!(of(&["lb.toml", "lb.toml"]), ["lb.toml", "lb.toml #2"]);
    }
}
