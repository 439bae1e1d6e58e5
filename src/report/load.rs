//! How sessions and traffic spread over the pool (RFC 2391 §5): per member sessions, packets,
//! bytes and their shares, over the whole replay and per interval of capture time; fairness
//! (Jain's index and the max/min ratio) of sessions and bytes; client affinity counts; the
//! algorithms and parameters that produced it. Built only from engine events and outcomes.

use super::table::{fit, right, table};
use crate::capture::PacketMeta;
use crate::engine::{
    AffinityOutcome, Decision, EmitKind, EngineConfig, Event, Outcome, PoolEvent, PoolEventKind,
    Tuple, Verdict, VirtualServerConfig,
};
use crate::replay::{Disposition, Observer};
use crate::time::{Span, Timestamp};
use crate::wire::proto;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// Sessions, packets and IP bytes (both directions) of one member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    /// Sessions bound to it.
    pub sessions: u64,
    /// Packets translated to or from it.
    pub packets: u64,
    /// IP bytes translated to or from it.
    pub bytes: u64,
}

/// One interval of capture time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    /// Start, ns since the epoch.
    pub start: Timestamp,
    /// Per member (report order).
    pub members: Vec<Load>,
}

/// A session's binding decision, kept for the algorithm goldens.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    /// Session number.
    pub number: u64,
    /// When.
    pub at: Timestamp,
    /// Virtual server index.
    pub virtual_server: usize,
    /// Session key.
    pub key: Tuple,
    /// The decision.
    pub decision: Decision,
}

/// Jain's fairness index (Σx)² / (n·Σx²): 1 when all equal, 1/n when one member has all.
/// `None` when there is nothing to share.
pub fn jain(xs: &[u64]) -> Option<f64> {
    let n = xs.len() as f64;
    let sum: f64 = xs.iter().map(|&x| x as f64).sum();
    let sq: f64 = xs.iter().map(|&x| (x as f64) * (x as f64)).sum();
    (sq > 0.0).then(|| sum * sum / (n * sq))
}

/// Largest ÷ smallest; infinite when a member has none, `None` when nobody has any.
pub fn max_min(xs: &[u64]) -> Option<f64> {
    let max = *xs.iter().max()?;
    let min = *xs.iter().min()?;
    if max == 0 {
        None
    } else if min == 0 {
        Some(f64::INFINITY)
    } else {
        Some(max as f64 / min as f64)
    }
}

/// An algorithm's description for reports: virtual server, name, parameters.
pub fn algorithm_json(v: &VirtualServerConfig, cfg: &EngineConfig) -> Value {
    let mut params = serde_json::Map::new();
    use crate::engine::Algorithm as A;
    let a = v.algorithm;
    if matches!(a, A::LeastTraffic | A::CostLeastTraffic) {
        params.insert("traffic".into(), json!(v.params.traffic));
        params.insert(
            "window_s".into(),
            json!(cfg.load_tracking.window.as_secs_f64()),
        );
    }
    if a == A::MostResponsive {
        params.insert("smoothing".into(), json!(cfg.load_tracking.smoothing));
    }
    if matches!(a, A::SourceHash | A::Maglev) {
        let k = v.params.hash_key.unwrap_or(if a == A::Maglev {
            crate::engine::HashKey::Session
        } else {
            crate::engine::HashKey::Source
        });
        params.insert("hash_key".into(), json!(k));
    }
    if a == A::LeastWeightedLoad {
        params.insert("session_weight".into(), json!(v.session_weight));
    }
    if a == A::ReportedCapacity {
        params.insert("capacity_reports".into(), json!(cfg.capacity_reports.len()));
    }
    let weights: Vec<Value> = cfg
        .member_settings
        .iter()
        .filter(|s| v.members.contains(&s.addr))
        .map(|s| {
            json!({"member": s.addr, "weight": s.weight,
                   "cost": if s.cost.is_finite() { json!(s.cost) } else { json!("inf") }})
        })
        .collect();
    if !weights.is_empty() {
        params.insert("members".into(), Value::Array(weights));
    }
    json!({
        "virtual_server": v.name,
        "algorithm": a.name(),
        "figure": a.figure(),
        "parameters": params,
        "affinity": v.affinity,
    })
}

/// Collects the load-share report.
pub struct LoadReport {
    interval: Option<Span>,
    /// Member addresses in report order (configured order of first appearance, then any new).
    pub members: Vec<Ipv4Addr>,
    /// Pool index → report order.
    index: Vec<Option<usize>>,
    /// Totals per member (report order).
    pub totals: Vec<Load>,
    /// Per interval, when asked.
    pub intervals: Vec<Interval>,
    /// Sessions by affinity outcome (by name; broken by reason as `broken: REASON`).
    pub affinity: BTreeMap<String, u64>,
    /// Algorithms and parameters, one per virtual server.
    pub algorithms: Vec<Value>,
    /// Kept only when asked (goldens): every decision.
    pub decisions: Option<Vec<Bound>>,
    names: Vec<String>,
    /// Translated packets of members not yet learned (pool index, time, IP bytes): the packet
    /// that binds a session comes before its `Bound` event, which names the member.
    pending: Vec<(usize, Timestamp, u64)>,
    /// Set when the load-shared traffic spans more than [`MAX_INTERVALS`] intervals: per-interval rows
    /// stopped there, and [`LoadReport::interval_error`] says so.
    intervals_overflowed: bool,
}

/// Intervals a report keeps at most: their rows grow with the capture's span divided by the
/// interval (`--interval 1ns` on a minute-long capture would need 6·10¹⁰).
pub const MAX_INTERVALS: usize = 100_000;

impl LoadReport {
    /// A report for `cfg`, with per-interval rows when `interval` is given; `keep_decisions`
    /// keeps every session's decision (memory grows with sessions: for goldens and tests).
    pub fn new(cfg: &EngineConfig, interval: Option<Span>, keep_decisions: bool) -> LoadReport {
        let mut members: Vec<Ipv4Addr> = Vec::new();
        for v in &cfg.virtual_servers {
            for m in &v.members {
                if !members.contains(m) {
                    members.push(*m);
                }
            }
        }
        LoadReport {
            interval: interval.filter(|s| s.0 > 0),
            totals: vec![Load::default(); members.len()],
            members,
            index: Vec::new(),
            intervals: Vec::new(),
            affinity: BTreeMap::new(),
            algorithms: cfg
                .virtual_servers
                .iter()
                .map(|v| algorithm_json(v, cfg))
                .collect(),
            decisions: keep_decisions.then(Vec::new),
            names: cfg.virtual_servers.iter().map(|v| v.name.clone()).collect(),
            pending: Vec::new(),
            intervals_overflowed: false,
        }
    }

    /// The error when the capture spanned more intervals than a report keeps
    /// ([`MAX_INTERVALS`]): the per-interval rows are then incomplete and may not be reported.
    pub fn interval_error(&self) -> Option<String> {
        let w = self.interval?;
        self.intervals_overflowed.then(|| {
            format!(
                "--interval {}s: the load-shared traffic spans more than {MAX_INTERVALS} intervals; give a longer interval",
                w.as_secs_f64()
            )
        })
    }

    fn slot_of_addr(&mut self, addr: [u8; 4]) -> usize {
        let a = Ipv4Addr::from(addr);
        match self.members.iter().position(|&m| m == a) {
            Some(i) => i,
            None => {
                self.members.push(a);
                self.totals.push(Load::default());
                for iv in &mut self.intervals {
                    iv.members.push(Load::default());
                }
                self.members.len() - 1
            }
        }
    }

    fn learn(&mut self, pool_index: u32, addr: [u8; 4]) -> usize {
        let i = pool_index as usize;
        if self.index.len() <= i {
            self.index.resize(i + 1, None);
        }
        match self.index[i] {
            Some(s) => s,
            None => {
                let s = self.slot_of_addr(addr);
                self.index[i] = Some(s);
                s
            }
        }
    }

    fn interval_at(&mut self, t: Timestamp) -> Option<&mut Interval> {
        let w = self.interval?.0;
        let start = Timestamp(t.0 / w * w);
        if self.intervals.last().is_none_or(|l| l.start < start) {
            // Fill the gap so the series has no holes.
            let mut next = self
                .intervals
                .last()
                .map_or(start, |l| Timestamp(l.start.0 + w));
            while next <= start {
                if self.intervals.len() >= MAX_INTERVALS {
                    self.intervals_overflowed = true;
                    return None;
                }
                self.intervals.push(Interval {
                    start: next,
                    members: vec![Load::default(); self.members.len()],
                });
                next = Timestamp(next.0 + w);
            }
        }
        // Time never goes back in the engine, but capture timestamps may: count late packets
        // in the newest interval.
        self.intervals.last_mut()
    }

    /// Counts one translated packet of the member in report slot `slot`.
    fn count(&mut self, slot: usize, ts: Timestamp, bytes: u64) {
        let l = &mut self.totals[slot];
        l.packets += 1;
        l.bytes += bytes;
        if let Some(iv) = self.interval_at(ts) {
            iv.members[slot].packets += 1;
            iv.members[slot].bytes += bytes;
        }
    }

    /// Sessions per member (report order).
    pub fn sessions(&self) -> Vec<u64> {
        self.totals.iter().map(|l| l.sessions).collect()
    }

    /// Bytes per member (report order).
    pub fn bytes(&self) -> Vec<u64> {
        self.totals.iter().map(|l| l.bytes).collect()
    }

    /// The `load` section of the JSON report.
    pub fn to_json(&self) -> Value {
        let total = self.totals.iter().fold(Load::default(), |a, l| Load {
            sessions: a.sessions + l.sessions,
            packets: a.packets + l.packets,
            bytes: a.bytes + l.bytes,
        });
        let share = |x: u64, t: u64| {
            if t == 0 {
                Value::Null
            } else {
                json!((x as f64 / t as f64 * 1e4).round() / 1e4)
            }
        };
        let members: Vec<Value> = self
            .members
            .iter()
            .zip(&self.totals)
            .map(|(m, l)| {
                json!({"member": m, "sessions": l.sessions, "session_share": share(l.sessions, total.sessions),
                   "packets": l.packets, "packet_share": share(l.packets, total.packets),
                   "bytes": l.bytes, "byte_share": share(l.bytes, total.bytes)})
            })
            .collect();
        let intervals: Vec<Value> = self
            .intervals
            .iter()
            .map(|iv| {
                json!({"start_ts_ns": iv.start.nanos(), "members": iv.members.iter().zip(&self.members).map(|(l, m)| json!({"member": m, "sessions": l.sessions, "packets": l.packets, "bytes": l.bytes})).collect::<Vec<_>>()})
            })
            .collect();
        json!({
            "algorithms": self.algorithms,
            "members": members,
            "fairness": self.fairness_json(),
            "affinity": self.affinity,
            "interval_s": self.interval.map(|s| s.as_secs_f64()),
            "intervals": intervals,
        })
    }

    /// Jain's index and max/min of sessions and bytes.
    pub fn fairness_json(&self) -> Value {
        let f = |x: Option<f64>| match x {
            None => Value::Null,
            Some(v) if v.is_infinite() => json!("inf"),
            Some(v) => json!((v * 1e4).round() / 1e4),
        };
        json!({
            "members": self.members.len(),
            "jain_sessions": f(jain(&self.sessions())),
            "jain_bytes": f(jain(&self.bytes())),
            "max_min_sessions": f(max_min(&self.sessions())),
            "max_min_bytes": f(max_min(&self.bytes())),
        })
    }

    /// The terminal rendering: members with shares, fairness, affinity, algorithms, and the
    /// interval table when asked. `width` fixes the table width (goldens).
    pub fn render(&self, width: Option<u16>) -> String {
        let mut out = String::new();
        // The summary's member table above it counts session records; this one every packet
        // translated, so the two differ by the ICMP errors about a member's sessions.
        let _ = writeln!(
            out,
            "load per member (every packet translated to or from it, ICMP errors about its \
             sessions included):"
        );
        let mut t = table(&[
            "member", "sessions", "share", "packets", "share", "bytes", "share",
        ]);
        let ts: u64 = self.totals.iter().map(|l| l.sessions).sum();
        let tp: u64 = self.totals.iter().map(|l| l.packets).sum();
        let tb: u64 = self.totals.iter().map(|l| l.bytes).sum();
        for (m, l) in self.members.iter().zip(&self.totals) {
            t.add_row(vec![
                m.to_string(),
                l.sessions.to_string(),
                pct(l.sessions, ts),
                l.packets.to_string(),
                pct(l.packets, tp),
                l.bytes.to_string(),
                pct(l.bytes, tb),
            ]);
        }
        right(&mut t, 1);
        fit(&mut t, width);
        let _ = writeln!(out, "{t}");
        let _ = writeln!(out, "{}", self.fairness_line());
        for a in &self.algorithms {
            let params = &a["parameters"];
            let _ = writeln!(
                out,
                "algorithm: {} {}{}{}",
                a["virtual_server"].as_str().unwrap_or(""),
                a["algorithm"].as_str().unwrap_or(""),
                match params.as_object() {
                    Some(p) if !p.is_empty() => format!(" {params}"),
                    _ => String::new(),
                },
                if a["affinity"].is_null() {
                    String::new()
                } else {
                    format!(" affinity {}", a["affinity"])
                }
            );
        }
        if !self.affinity.is_empty() {
            let parts: Vec<String> = self
                .affinity
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(out, "affinity: {}", parts.join(", "));
        }
        if let Some(w) = self.interval {
            let mut header = vec!["interval".to_string()];
            header.extend(self.members.iter().map(|m| format!("{m} sessions/bytes")));
            let mut t = table(&header);
            let start = self.intervals.first().map_or(0, |i| i.start.0);
            for iv in &self.intervals {
                let mut row = vec![format!(
                    "+{}s",
                    Span(iv.start.0 - start).as_secs_f64() + 0.0
                )];
                row.extend(
                    iv.members
                        .iter()
                        .map(|l| format!("{} / {}", l.sessions, l.bytes)),
                );
                t.add_row(row);
            }
            right(&mut t, 1);
            fit(&mut t, width);
            let _ = writeln!(out, "per {}s interval:", w.as_secs_f64());
            let _ = writeln!(out, "{t}");
        }
        out
    }

    /// One line: fairness of sessions and bytes.
    pub fn fairness_line(&self) -> String {
        let n = self.members.len();
        format!(
            "fairness over {n} member{}: Jain sessions {}, bytes {}; max/min sessions {}, bytes {}",
            if n == 1 { "" } else { "s" },
            fmt_fig(jain(&self.sessions())),
            fmt_fig(jain(&self.bytes())),
            fmt_fig(max_min(&self.sessions())),
            fmt_fig(max_min(&self.bytes())),
        )
    }

    /// Every decision, one line per session (goldens): number, time from `start`, virtual
    /// server, key, chosen member, affinity, and each candidate's figure and bound sessions.
    pub fn render_decisions(&self, start: Timestamp) -> String {
        let mut out = String::new();
        for b in self.decisions.iter().flatten() {
            let d = &b.decision;
            let rel = b.at.since(start);
            let _ = write!(
                out,
                "s{} +{}.{:06} {} {} {} -> {} {}",
                b.number,
                rel.0 / 1_000_000_000,
                (rel.0 % 1_000_000_000) / 1000,
                self.names.get(b.virtual_server).map_or("?", String::as_str),
                proto::name(b.key.protocol),
                b.key,
                Ipv4Addr::from(d.chosen_addr),
                d.algorithm.name(),
            );
            match d.affinity {
                AffinityOutcome::Off => {}
                AffinityOutcome::Broken(r) => {
                    let _ = write!(out, " affinity broken:{}", r.name());
                }
                a => {
                    let _ = write!(out, " affinity {}", a.name());
                }
            }
            if let Some(h) = d.hash {
                let _ = write!(out, " hash {h:016x}");
            }
            out.push_str(" [");
            for (i, e) in d.entries().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(
                    out,
                    "{}={}/{}",
                    Ipv4Addr::from(e.addr),
                    fmt_fig(Some(e.figure)),
                    e.bound
                );
            }
            out.push_str("]\n");
        }
        out
    }
}

/// A figure as text: up to 4 decimals, `inf`, `-` for none/NaN.
pub fn fmt_fig(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(v) if v.is_nan() => "-".into(),
        Some(v) if v.is_infinite() => "inf".into(),
        Some(v) => {
            let s = format!("{v:.4}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            s.to_string()
        }
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

impl LoadReport {
    /// A packet the router forwarded at `ts` (captured, or a held fragment released).
    fn outcome(&mut self, ts: Timestamp, o: &Outcome) {
        if o.verdict != Verdict::Translated {
            return;
        }
        let Some(member) = o.member else {
            return;
        };
        let bytes = u64::from(o.ip_bytes);
        match self.index.get(member).copied().flatten() {
            Some(slot) => self.count(slot, ts, bytes),
            None => {
                // Resolved by the `Bound` event that follows this packet.
                debug_assert!(self.pending.len() < 64, "packets of a member never bound");
                self.pending.push((member, ts, bytes));
            }
        }
    }
}

impl Observer for LoadReport {
    /// A member the timeline adds to a pool is one of the pool's members from then on, in the
    /// load table and the fairness figures, whether or not a session comes to it.
    fn pool_event(&mut self, event: &PoolEvent) {
        if matches!(event.kind, PoolEventKind::Added { .. }) {
            self.slot_of_addr(event.member.octets());
        }
    }

    fn packet(&mut self, meta: &PacketMeta, what: &Disposition) {
        if let Disposition::Engine(o) = what {
            self.outcome(meta.ts, o);
        }
    }

    fn emitted(&mut self, _origin: &PacketMeta, now: Timestamp, kind: &EmitKind) {
        if let EmitKind::HeldFragment { outcome, .. } = kind {
            self.outcome(now, outcome);
        }
    }

    fn event(&mut self, event: &Event) {
        let Event::Bound {
            number,
            at,
            virtual_server,
            member,
            member_addr,
            key,
            decision,
        } = event
        else {
            return;
        };
        for e in decision.entries() {
            self.learn(e.member, e.addr);
        }
        // The member the session went to: the algorithm's choice, or its backup (RFC 2391 §3).
        let slot = self.learn(*member as u32, *member_addr);
        self.totals[slot].sessions += 1;
        if let Some(iv) = self.interval_at(*at) {
            iv.members[slot].sessions += 1;
        }
        if !self.pending.is_empty() {
            let mut pending = std::mem::take(&mut self.pending);
            pending.retain(|&(member, ts, bytes)| {
                match self.index.get(member).copied().flatten() {
                    Some(slot) => {
                        self.count(slot, ts, bytes);
                        false
                    }
                    None => true,
                }
            });
            self.pending = pending;
        }
        match decision.affinity {
            AffinityOutcome::Off => {}
            AffinityOutcome::Broken(r) => {
                *self.affinity.entry("broken".into()).or_default() += 1;
                *self
                    .affinity
                    .entry(format!("broken: {}", r.name()))
                    .or_default() += 1;
            }
            a => *self.affinity.entry(a.name().into()).or_default() += 1,
        }
        if let Some(d) = self.decisions.as_mut() {
            d.push(Bound {
                number: *number,
                at: *at,
                virtual_server: *virtual_server,
                key: *key,
                decision: *decision,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fairness_figures() {
        assert_eq!(jain(&[5, 5, 5]), Some(1.0));
        assert_eq!(jain(&[9, 0, 0]), Some(1.0 / 3.0));
        assert_eq!(jain(&[0, 0]), None);
        // (1+3)^2 / (2 * (1+9)) = 16/20
        assert_eq!(jain(&[1, 3]), Some(0.8));
        assert_eq!(max_min(&[2, 6, 4]), Some(3.0));
        assert_eq!(max_min(&[2, 0]), Some(f64::INFINITY));
        assert_eq!(max_min(&[0, 0]), None);
        assert_eq!(fmt_fig(Some(0.8)), "0.8");
        assert_eq!(fmt_fig(Some(2.0)), "2");
        assert_eq!(fmt_fig(Some(f64::NAN)), "-");
    }
}
