//! The audit's outputs: a comfy-table comparison (one column per policy), and JSON with the
//! schema `lsnat-audit/1` (documented in README.md).

use super::compliance::Level;
use super::policy::{self, Policy};
use super::{Audit, Broken, Effect, PolicyResult, gaps::Distribution};
use crate::report::table::{fit, right};
use crate::time::Span;
use comfy_table::Table;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// The JSON schema name.
pub const SCHEMA: &str = "lsnat-audit/1";

fn table(header: Vec<String>, width: Option<u16>) -> Table {
    let mut t = crate::report::table::table(&header);
    fit(&mut t, width);
    t
}

/// A gap or idle time: seconds with millisecond precision.
pub fn secs(s: Span) -> String {
    format!("{:.3}s", s.as_secs_f64())
}

fn bytes(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    }
}

fn key_text(k: &crate::engine::Tuple) -> String {
    let p = crate::wire::proto::name(k.protocol);
    format!("{p} {k}")
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn limit(p: &Policy) -> String {
    p.max_sessions.map_or("none".into(), |n| n.to_string())
}

/// The comparison rows shared by the policy table and the sweep table.
fn metric_rows(results: &[&PolicyResult]) -> Vec<(&'static str, Vec<String>)> {
    let col = |f: &dyn Fn(&PolicyResult) -> String| results.iter().map(|r| f(r)).collect();
    vec![
        (
            "TCP sessions broken (next packet dropped)",
            col(&|r| r.count(Effect::TcpDropped).to_string()),
        ),
        (
            "non-TCP rebound to another member",
            col(&|r| r.count(Effect::ReboundOtherMember).to_string()),
        ),
        (
            "non-TCP rebound to the same member",
            col(&|r| r.count(Effect::ReboundSameMember).to_string()),
        ),
        (
            "replies that found no session",
            col(&|r| r.count(Effect::OrphanedReply).to_string()),
        ),
        (
            "TCP closed, late packet lost",
            col(&|r| r.dropped_after_close.to_string()),
        ),
        ("sessions bound", col(&|r| r.sessions_bound.to_string())),
        (
            "unbound by idle timeout",
            col(&|r| r.idle_expired.to_string()),
        ),
        ("retired, table full", col(&|r| r.retired.to_string())),
        ("peak sessions", col(&|r| r.peak_sessions.to_string())),
        (
            "mean sessions (time-weighted)",
            col(&|r| format!("{:.3}", r.mean_sessions)),
        ),
        (
            "session-seconds",
            col(&|r| format!("{:.3}", r.session_ns as f64 / 1e9)),
        ),
        ("peak table memory", col(&|r| bytes(r.peak_bytes))),
    ]
}

/// Renders the audit as text tables. `worst` limits the worst-case list per policy; `width`
/// fixes the table width (goldens).
pub fn render(a: &Audit, worst: usize, width: Option<u16>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# lsnat audit of {} with {}",
        file_name(&a.capture),
        file_name(&a.config_path)
    );
    let _ = writeln!(
        out,
        "capture: {} packets over {}; engine state per session: {} bytes",
        a.span.packets,
        secs(a.span.duration()),
        a.bytes_per_session
    );
    for w in &a.warnings {
        let _ = writeln!(out, "warning: {w}");
    }

    if !a.results.is_empty() {
        let results: Vec<&PolicyResult> = a.results.iter().collect();
        let _ = writeln!(out, "\n## policies");
        let mut header = vec![String::new()];
        header.extend(results.iter().map(|r| r.policy.name.clone()));
        let mut t = table(header, width);
        for (key, _) in policy::effective(&results[0].policy.timeouts) {
            let mut row = vec![format!("timeout {key}")];
            for r in &results {
                let v = policy::effective(&r.policy.timeouts)
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| *v)
                    .unwrap_or_default();
                row.push(v.to_string());
            }
            t.add_row(row);
        }
        let mut row = vec!["table limit".to_string()];
        row.extend(results.iter().map(|r| limit(&r.policy)));
        t.add_row(row);
        for (name, cells) in metric_rows(&results) {
            let mut row = vec![name.to_string()];
            row.extend(cells);
            t.add_row(row);
        }
        let mut row = vec!["every MUST floor met".to_string()];
        row.extend(results.iter().map(|r| {
            if super::compliance::meets_musts(&r.checks) {
                "yes".to_string()
            } else {
                "NO".to_string()
            }
        }));
        t.add_row(row);
        right(&mut t, 1);
        let _ = writeln!(out, "{t}");

        let _ = writeln!(out, "\n## compliance (verdict and the policy's value)");
        let mut header = vec!["requirement".to_string(), "level".into(), "floor".into()];
        header.extend(results.iter().map(|r| r.policy.name.clone()));
        let mut t = table(header, width);
        for (i, c) in results[0].checks.iter().enumerate() {
            let mut row = vec![
                c.rule.to_string(),
                c.level.name().to_string(),
                c.required.map_or("-".into(), |r| r.to_string()),
            ];
            for r in &results {
                let c = &r.checks[i];
                row.push(format!("{} {}", c.verdict(), c.value));
            }
            t.add_row(row);
        }
        let _ = writeln!(out, "{t}");

        if worst == 0 {
            let _ = writeln!(out, "\n## worst cases: not listed (--worst 0)");
        } else {
            render_worst(&mut out, &results, worst, width);
        }
    }

    let _ = writeln!(
        out,
        "\n## idle gaps of load-shared sessions (by what the session was doing while idle)"
    );
    if a.gaps.sessions.is_empty() {
        let _ = writeln!(out, "none: no load-shared session had two packets");
    } else {
        let mut t = gap_table(width, true);
        for (c, d) in &a.gaps.sessions {
            t.add_row(gap_row(c.name(), d, Some(c.timeout_key())));
        }
        right(&mut t, 1);
        let _ = writeln!(out, "{t}");
    }
    let _ = writeln!(
        out,
        "\n## idle gaps of every IPv4 flow in the capture (load-shared or not)"
    );
    if a.gaps.flows.is_empty() {
        let _ = writeln!(out, "none: no IPv4 flow had two packets");
    } else {
        let mut t = gap_table(width, false);
        for (name, d) in &a.gaps.flows {
            t.add_row(gap_row(name, d, None));
        }
        right(&mut t, 1);
        let _ = writeln!(out, "{t}");
    }

    if let Some((s, points)) = &a.sweep {
        let _ = writeln!(
            out,
            "\n## sweep of {} (other timeouts from {})",
            s.key, s.base.name
        );
        let refs: Vec<&PolicyResult> = points.iter().collect();
        let mut header = vec![String::new()];
        header.extend(s.values.iter().map(|v| format!("{}={v}", s.key)));
        let mut t = table(header, width);
        for (name, cells) in metric_rows(&refs) {
            let mut row = vec![name.to_string()];
            row.extend(cells);
            t.add_row(row);
        }
        right(&mut t, 1);
        let _ = writeln!(out, "{t}");
    }
    out
}

/// The worst-case list: at most `worst` (≥ 1) broken sessions per policy, longest gap first.
fn render_worst(out: &mut String, results: &[&PolicyResult], worst: usize, width: Option<u16>) {
    let _ = writeln!(
        out,
        "\n## worst cases (longest idle gap first, at most {worst} per policy)"
    );
    let mut t = table(
        [
            "policy", "session", "key", "state", "idle gap", "timeout", "cause", "effect",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        width,
    );
    let mut any = false;
    for r in results {
        for b in r.broken.iter().take(worst) {
            any = true;
            t.add_row(vec![
                r.policy.name.clone(),
                format!("s{}", b.session),
                key_text(&b.key),
                b.state.to_string(),
                secs(b.gap),
                secs(b.timeout),
                b.cause.name().to_string(),
                b.effect.name().to_string(),
            ]);
        }
    }
    if any {
        let _ = writeln!(out, "{t}");
    } else {
        let _ = writeln!(out, "none: no policy broke a session");
    }
}

fn gap_table(width: Option<u16>, with_safe: bool) -> Table {
    let mut h: Vec<String> = [
        "class",
        "gaps",
        "with gaps",
        "p50",
        "p90",
        "p99",
        "max",
        "> 30 s",
        "max at",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if with_safe {
        h.push("nothing breaks with".into());
    }
    table(h, width)
}

fn gap_row(name: &str, d: &Distribution, timeout_key: Option<&str>) -> Vec<String> {
    let mut row = vec![
        name.to_string(),
        d.count.to_string(),
        d.sessions.to_string(),
        secs(d.p50),
        secs(d.p90),
        secs(d.p99),
        secs(d.max),
        d.over_30s.to_string(),
        d.max_at.as_ref().map_or("-".into(), key_text),
    ];
    if let Some(k) = timeout_key {
        row.push(format!("{k} > {}", secs(d.max)));
    }
    row
}

fn span_json(s: Span) -> Value {
    json!(s.0)
}

fn timeouts_json(p: &Policy) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in policy::effective(&p.timeouts) {
        m.insert(format!("{}_ns", k.replace('-', "_")), span_json(v));
    }
    Value::Object(m)
}

fn addr(a: [u8; 4]) -> String {
    Ipv4Addr::from(a).to_string()
}

fn broken_json(b: &Broken) -> Value {
    json!({
        "session": b.session,
        "proto": crate::wire::proto::name(b.key.protocol),
        "orig_h": addr(b.key.src), "orig_p": b.key.sport,
        "resp_h": addr(b.key.dst), "resp_p": b.key.dport,
        "member": addr(b.member_addr),
        "state": b.state,
        "gap_ns": b.gap.0,
        "timeout_ns": b.timeout.0,
        "cause": b.cause.name(),
        "effect": b.effect.name(),
        "packet": b.packet,
    })
}

/// One policy's result as JSON (`worst`: how many broken sessions to list).
pub fn result_json(r: &PolicyResult, worst: usize) -> Value {
    let checks: Vec<Value> = r
        .checks
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "rule": c.rule,
                "level": c.level.name(),
                "required_ns": c.required.map(|s| s.0),
                "value_ns": c.value.0,
                "verdict": c.verdict(),
            })
        })
        .collect();
    json!({
        "name": r.policy.name,
        "source": r.policy.source,
        "timeouts": timeouts_json(&r.policy),
        "max_sessions": r.policy.max_sessions,
        "broken": {
            "tcp_dropped": r.count(Effect::TcpDropped),
            "rebound_other_member": r.count(Effect::ReboundOtherMember),
            "rebound_same_member": r.count(Effect::ReboundSameMember),
            "orphaned_replies": r.count(Effect::OrphanedReply),
            "total": r.total_broken(),
        },
        "dropped_after_close": r.dropped_after_close,
        "worst": r.broken.iter().take(worst).map(broken_json).collect::<Vec<_>>(),
        "cost": {
            "sessions_bound": r.sessions_bound,
            "idle_expired": r.idle_expired,
            "retired_table_full": r.retired,
            "peak_sessions": r.peak_sessions,
            "mean_sessions": r.mean_sessions,
            // Session-nanoseconds summed over every session can pass 2^64 (584 years):
            // written at most u64::MAX, as JSON readers hold integers that far.
            "session_ns": u64::try_from(r.session_ns).unwrap_or(u64::MAX),
            "peak_bytes": r.peak_bytes,
            "forgotten": r.forgotten,
        },
        "compliance": checks,
        "meets_must": super::compliance::meets_musts(&r.checks),
        "must_failures": r.checks.iter().filter(|c| c.level == Level::Must && !c.pass).map(|c| c.id).collect::<Vec<_>>(),
    })
}

fn dist_json(name: &str, d: &Distribution, key: Option<&str>) -> Value {
    let mut v = json!({
        "class": name,
        "gaps": d.count,
        "sessions": d.sessions,
        "p50_ns": d.p50.0,
        "p90_ns": d.p90.0,
        "p99_ns": d.p99.0,
        "max_ns": d.max.0,
        "over_30s": d.over_30s,
    });
    if let Some(k) = key {
        v["timeout"] = json!(k);
        v["safe_timeout_ns"] = json!(d.safe_timeout().map(|s| s.0));
    }
    v
}

/// The whole audit as JSON (schema `lsnat-audit/1`).
pub fn to_json(a: &Audit, worst: usize) -> Value {
    let sweep = a.sweep.as_ref().map(|(s, points)| {
        json!({
            "key": s.key,
            "base": s.base.name,
            "points": s.values.iter().zip(points).map(|(v, r)| {
                let mut p = result_json(r, worst);
                p["value_ns"] = json!(v.0);
                p
            }).collect::<Vec<_>>(),
        })
    });
    json!({
        "schema": SCHEMA,
        "tool": concat!("lsnat ", env!("CARGO_PKG_VERSION")),
        "capture": a.capture.display().to_string(),
        "config": a.config_path.display().to_string(),
        "packets": a.span.packets,
        "first_ts_ns": a.span.first.0,
        "last_ts_ns": a.span.last.0,
        "duration_ns": a.span.duration().0,
        "bytes_per_session": a.bytes_per_session,
        "warnings": a.warnings,
        "policies": a.results.iter().map(|r| result_json(r, worst)).collect::<Vec<_>>(),
        "gaps": {
            "sessions": a.gaps.sessions.iter().map(|(c, d)| dist_json(c.name(), d, Some(c.timeout_key()))).collect::<Vec<_>>(),
            "flows": a.gaps.flows.iter().map(|(n, d)| dist_json(n, d, None)).collect::<Vec<_>>(),
        },
        "sweep": sweep,
    })
}
