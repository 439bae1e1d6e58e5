//! `lsnat audit`: what a session-timeout policy would do to the traffic in a capture
//! (RFC 2391 §2.4: idle timeouts are heuristics — "often this assumption works, sometimes it
//! doesn't" — and should be configurable).
//!
//! Each policy is an exact engine replay of the capture with that policy's timeouts; the audit
//! only observes the replay's packet outcomes and session events (like `report/`, it never
//! reaches into the engine):
//!
//! - a TCP session the engine unbound by idle timeout (or retired when the table was full) whose
//!   next packet is dropped as `tcp-no-session` is **broken**;
//! - a UDP / ICMP / other session unbound that way whose next packet binds a new session is
//!   **rebound**, to the same member or (affinity lost) another; a member's reply that finds no
//!   session is an **orphaned reply**;
//! - a TCP session that ended closed (both FINs acknowledged, or an RST) whose next packet came
//!   after its grace period and found no session is **dropped after its close**: counted on its
//!   own, not as broken (the connection had ended, but its late packets, a retransmitted FIN
//!   or the ACK of one, are lost; RFC 7857 §2.1 keeps state 4 minutes after an RST for them);
//! - cost is the table's occupancy over capture time (from Bound/Ended events) and the memory it
//!   takes at its peak ([`crate::engine::Engine::bytes_per_session`]).
//!
//! The idle gaps ([`gaps`]) come from one more replay in which nothing expires; the compliance
//! verdicts ([`compliance`]) from the policy's numbers alone. [`sweep`] varies one timeout.

pub mod compliance;
pub mod gaps;
pub mod policy;
pub mod report;
pub mod svg;
pub mod sweep;

use crate::capture::PacketMeta;
use crate::engine::binding::session_reply_key;
use crate::engine::{
    DropReason, EndReason, Engine, EngineConfig, Event, PassReason, TcpState, Timeouts, Tuple,
    Verdict, View,
};
use crate::replay::{self, Disposition, Observer, ReplayError, ReplayJob};
use crate::time::{Span, Timestamp};
use crate::wire::proto;
use policy::Policy;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// At most this many unbound sessions are remembered to recognise their next packet; the
/// oldest are forgotten first (and counted in [`PolicyResult::forgotten`]).
pub const EXPIRED_MEMORY: usize = 1 << 20;

/// What broke a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    /// TCP: its next packet (not a SYN) found no session and was dropped.
    TcpDropped,
    /// Non-TCP: its next packet bound a new session to the same member.
    ReboundSameMember,
    /// Non-TCP: its next packet bound a new session to another member (affinity lost).
    ReboundOtherMember,
    /// Non-TCP: the member's next packet found no session (passed untranslated).
    OrphanedReply,
}

impl Effect {
    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            Effect::TcpDropped => "tcp-dropped",
            Effect::ReboundSameMember => "rebound-same-member",
            Effect::ReboundOtherMember => "rebound-other-member",
            Effect::OrphanedReply => "orphaned-reply",
        }
    }
}

/// One session a policy broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    /// Its session number in this policy's replay.
    pub session: u64,
    /// Its key (client → VIP).
    pub key: Tuple,
    /// The member it was bound to: its index in the pool ([`Engine::members`]).
    pub member: usize,
    /// That member's address.
    pub member_addr: [u8; 4],
    /// What it was doing when it expired (`tcp-established`, `udp`, ...).
    pub state: &'static str,
    /// From its last packet to the packet that found it gone.
    pub gap: Span,
    /// The timeout that cut it (for a retired session: how long it had been idle).
    pub timeout: Span,
    /// `idle-timeout` or `retired` (table full).
    pub cause: EndReason,
    /// What happened next.
    pub effect: Effect,
    /// The packet that found it gone (capture index).
    pub packet: u64,
}

/// A policy's replay, summarised.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyResult {
    /// The policy.
    pub policy: Policy,
    /// Compliance verdicts.
    pub checks: Vec<compliance::Check>,
    /// Every broken session, worst (longest gap) first.
    pub broken: Vec<Broken>,
    /// Sessions bound.
    pub sessions_bound: u64,
    /// Sessions unbound by idle timeout.
    pub idle_expired: u64,
    /// Sessions retired because the table was full.
    pub retired: u64,
    /// Most sessions bound at once.
    pub peak_sessions: u64,
    /// Σ over sessions of (unbound − bound): session-nanoseconds.
    pub session_ns: u128,
    /// Time-weighted mean sessions in the table: `session_ns / capture duration`.
    pub mean_sessions: f64,
    /// `peak_sessions × bytes_per_session`.
    pub peak_bytes: u64,
    /// Unbound sessions forgotten before their next packet could be checked (memory bound).
    pub forgotten: u64,
    /// TCP sessions closed (FIN or RST) whose next packet came after the grace period and
    /// found no session (dropped, or a member's passed untranslated).
    pub dropped_after_close: u64,
}

impl PolicyResult {
    /// Sessions broken with this effect.
    pub fn count(&self, e: Effect) -> u64 {
        self.broken.iter().filter(|b| b.effect == e).count() as u64
    }
    /// All breaks.
    pub fn total_broken(&self) -> u64 {
        self.broken.len() as u64
    }
}

#[derive(Clone, Copy)]
struct Expired {
    number: u64,
    key: Tuple,
    reply: Tuple,
    member: usize,
    member_addr: [u8; 4],
    last: Timestamp,
    timeout: Span,
    cause: EndReason,
    state: &'static str,
}

/// A packet that found no session and no unbound session to blame yet. Timers fire lazily when
/// the engine handles a packet, and the replay hands observers the packet before the events it
/// caused: the session this packet finds gone may be unbound by its own arrival, its `Ended`
/// event still to come. Kept until the next packet.
#[derive(Clone, Copy)]
struct Unblamed {
    key: Tuple,
    at: Timestamp,
    effect: Effect,
    packet: u64,
}

fn state_name(protocol: u8, tcp: Option<TcpState>) -> &'static str {
    match protocol {
        proto::TCP => match tcp.unwrap_or_default() {
            TcpState::Opening => "tcp-opening",
            TcpState::Established => "tcp-established",
            TcpState::Closing => "tcp-closing",
            TcpState::Closed => "tcp-closed",
            TcpState::Reset => "tcp-reset",
        },
        proto::UDP => "udp",
        proto::ICMP => "icmp",
        _ => "other",
    }
}

/// Observes one policy's replay.
pub struct PolicyObserver {
    view: View,
    live: u64,
    peak: u64,
    /// Live sessions: when bound, and the member's address.
    bound_at: FxHashMap<u64, (Timestamp, [u8; 4])>,
    tcp_state: FxHashMap<u64, TcpState>,
    session_ns: u128,
    bound: u64,
    idle_expired: u64,
    retired: u64,
    expired: FxHashMap<Tuple, Expired>,
    order: VecDeque<(Tuple, u64)>,
    forgotten: u64,
    broken: Vec<Broken>,
    dropped_after_close: u64,
    /// The capture index of the packet last handed to [`Observer::packet`].
    packet: u64,
    unblamed: Option<Unblamed>,
}

impl PolicyObserver {
    /// A fresh observer for a replay in `view`.
    pub fn new(view: View) -> Self {
        PolicyObserver {
            view,
            live: 0,
            peak: 0,
            bound_at: FxHashMap::default(),
            tcp_state: FxHashMap::default(),
            session_ns: 0,
            bound: 0,
            idle_expired: 0,
            retired: 0,
            expired: FxHashMap::default(),
            order: VecDeque::new(),
            forgotten: 0,
            broken: Vec::new(),
            dropped_after_close: 0,
            packet: 0,
            unblamed: None,
        }
    }

    /// Takes an unbound session's entry (both its keys) when `key` is one of them.
    fn take(&mut self, key: &Tuple) -> Option<Expired> {
        let e = self.expired.remove(key)?;
        let other = if e.key == *key { e.reply } else { e.key };
        if self
            .expired
            .get(&other)
            .is_some_and(|x| x.number == e.number)
        {
            self.expired.remove(&other);
        }
        Some(e)
    }

    fn record(&mut self, e: Expired, at: Timestamp, effect: Effect, packet: u64) {
        if matches!(e.cause, EndReason::Fin | EndReason::Rst) {
            // Its connection had ended: a late packet lost, not a session broken.
            self.dropped_after_close += 1;
            return;
        }
        self.broken.push(Broken {
            session: e.number,
            key: e.key,
            member: e.member,
            member_addr: e.member_addr,
            state: e.state,
            gap: at.since(e.last),
            timeout: e.timeout,
            cause: e.cause,
            effect,
            packet,
        });
    }

    fn finish(mut self, policy: Policy, duration: Span) -> PolicyResult {
        self.broken.sort_by(|a, b| {
            b.gap
                .cmp(&a.gap)
                .then(a.session.cmp(&b.session))
                .then(a.packet.cmp(&b.packet))
        });
        let mean = if duration.0 == 0 {
            0.0
        } else {
            self.session_ns as f64 / duration.0 as f64
        };
        PolicyResult {
            checks: compliance::evaluate(&policy.timeouts),
            policy,
            broken: self.broken,
            sessions_bound: self.bound,
            idle_expired: self.idle_expired,
            retired: self.retired,
            peak_sessions: self.peak,
            session_ns: self.session_ns,
            mean_sessions: mean,
            peak_bytes: self.peak * Engine::bytes_per_session() as u64,
            forgotten: self.forgotten,
            dropped_after_close: self.dropped_after_close,
        }
    }
}

impl Observer for PolicyObserver {
    fn packet(&mut self, meta: &PacketMeta, what: &Disposition) {
        self.packet = meta.index;
        self.unblamed = None;
        let Disposition::Engine(o) = what else {
            return;
        };
        let effect = match o.verdict {
            Verdict::Translated => {
                if let Some(s) = o.tcp_state {
                    self.tcp_state.insert(o.session, s);
                }
                return;
            }
            Verdict::Drop(DropReason::NoSession) => Effect::TcpDropped,
            Verdict::Pass(PassReason::OutboundWithoutSession) => Effect::OrphanedReply,
            _ => return,
        };
        match self.take(&o.before) {
            Some(e) => self.record(e, meta.ts, effect, meta.index),
            // Its own arrival may have unbound the session: checked again at its Ended event.
            None => {
                self.unblamed = Some(Unblamed {
                    key: o.before,
                    at: meta.ts,
                    effect,
                    packet: meta.index,
                })
            }
        }
    }

    fn event(&mut self, event: &Event) {
        match event {
            Event::Bound {
                number,
                at,
                member,
                member_addr,
                key,
                ..
            } => {
                self.bound += 1;
                self.live += 1;
                self.peak = self.peak.max(self.live);
                self.bound_at.insert(*number, (*at, *member_addr));
                if let Some(e) = self.take(key)
                    && key.protocol != proto::TCP
                {
                    let effect = if e.member == *member {
                        Effect::ReboundSameMember
                    } else {
                        Effect::ReboundOtherMember
                    };
                    // the binding packet is the one just handed to `packet`
                    self.record(e, *at, effect, self.packet);
                }
            }
            Event::Ended(r) => {
                self.live = self.live.saturating_sub(1);
                let bound = self.bound_at.remove(&r.number);
                if let Some((b, _)) = bound {
                    self.session_ns += u128::from(r.ended_at.since(b).0);
                }
                let state = self.tcp_state.remove(&r.number);
                match r.end {
                    EndReason::IdleTimeout => self.idle_expired += 1,
                    EndReason::Retired => self.retired += 1,
                    EndReason::Fin | EndReason::Rst => {}
                    EndReason::Reopened | EndReason::OpenAtEnd => return,
                }
                let e = Expired {
                    number: r.number,
                    key: r.key,
                    reply: session_reply_key(&r.key, &r.translated, self.view),
                    member: r.member,
                    member_addr: bound.map_or(r.translated.dst, |(_, a)| a),
                    last: r.last,
                    timeout: r.ended_at.since(r.last),
                    cause: r.end,
                    state: state_name(r.key.protocol, state),
                };
                // The packet just handed to `packet` found no session: this one, if it is its
                // key and was unbound by then (by that packet's own arrival).
                if let Some(u) = self.unblamed
                    && (u.key == e.key || u.key == e.reply)
                    && r.ended_at <= u.at
                {
                    self.unblamed = None;
                    self.record(e, u.at, u.effect, u.packet);
                    return;
                }
                self.expired.insert(e.key, e);
                self.expired.insert(e.reply, e);
                self.order.push_back((e.key, e.number));
                while self.order.len() > EXPIRED_MEMORY {
                    if let Some((k, n)) = self.order.pop_front()
                        && self.expired.get(&k).is_some_and(|x| x.number == n)
                    {
                        self.take(&k);
                        self.forgotten += 1;
                    }
                }
            }
        }
    }
}

/// What to audit.
#[derive(Clone, Debug)]
pub struct AuditJob {
    /// The capture.
    pub capture: PathBuf,
    /// Its configuration file.
    pub config_path: PathBuf,
    /// The validated configuration (virtual servers, view; its timeouts are the `config` policy).
    pub config: EngineConfig,
    /// The policies, in report order.
    pub policies: Vec<Policy>,
    /// An optional sweep of one timeout.
    pub sweep: Option<sweep::Sweep>,
}

/// The capture's span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureSpan {
    /// Records read.
    pub packets: u64,
    /// First timestamp.
    pub first: Timestamp,
    /// Last timestamp.
    pub last: Timestamp,
}

impl CaptureSpan {
    /// Last − first.
    pub fn duration(&self) -> Span {
        self.last.since(self.first)
    }
}

/// Everything an audit found.
#[derive(Clone, Debug)]
pub struct Audit {
    /// The capture file.
    pub capture: PathBuf,
    /// The configuration file.
    pub config_path: PathBuf,
    /// The capture's span.
    pub span: CaptureSpan,
    /// Warnings from reading the capture.
    pub warnings: Vec<String>,
    /// Idle gaps.
    pub gaps: gaps::Gaps,
    /// One result per policy.
    pub results: Vec<PolicyResult>,
    /// The sweep, if asked: the swept key and one result per point.
    pub sweep: Option<(sweep::Sweep, Vec<PolicyResult>)>,
    /// [`Engine::bytes_per_session`].
    pub bytes_per_session: usize,
}

/// The `config` policy: the configuration file's own timeouts and table limit.
pub fn config_policy(cfg: &EngineConfig) -> Policy {
    Policy {
        name: "config".into(),
        source: "config",
        timeouts: cfg.timeouts,
        max_sessions: cfg.max_sessions,
    }
}

fn run_one(
    job: &AuditJob,
    timeouts: Timeouts,
    max_sessions: Option<usize>,
    observers: &mut [&mut dyn Observer],
) -> Result<replay::ReplayTotals, ReplayError> {
    let mut config = job.config.clone();
    config.timeouts = timeouts;
    config.max_sessions = max_sessions;
    let r = ReplayJob {
        input: job.capture.clone(),
        config_path: job.config_path.clone(),
        config,
        output: None,
        member_dir: None,
    };
    replay::run(&r, observers)
}

/// Replays the capture once under `policy` and summarises what it did.
pub fn evaluate(job: &AuditJob, policy: &Policy) -> Result<PolicyResult, ReplayError> {
    let mut obs = PolicyObserver::new(job.config.view);
    let totals = run_one(job, policy.timeouts, policy.max_sessions, &mut [&mut obs])?;
    let span = totals
        .last_ts
        .unwrap_or_default()
        .since(totals.first_ts.unwrap_or_default());
    Ok(obs.finish(policy.clone(), span))
}

/// Runs the audit: the gap replay, then one replay per policy and per sweep point.
pub fn run(job: &AuditJob) -> Result<Audit, ReplayError> {
    // Nothing expires in ten years of capture time: every gap is seen inside one session.
    let never = Span::from_secs(10 * 365 * 86400);
    let forever = Timeouts {
        tcp: never,
        udp: never,
        icmp: never,
        other: never,
        tcp_close_grace: never,
        tcp_opening: None,
        tcp_closing: None,
        tcp_rst: None,
    };
    let mut g = gaps::GapObserver::default();
    let totals = run_one(job, forever, None, &mut [&mut g])?;
    let span = CaptureSpan {
        packets: totals.packets,
        first: totals.first_ts.unwrap_or_default(),
        last: totals.last_ts.unwrap_or_default(),
    };
    let mut results = Vec::new();
    for p in &job.policies {
        results.push(evaluate(job, p)?);
    }
    let sweep = match &job.sweep {
        Some(s) => {
            let mut points = Vec::new();
            for p in s.policies() {
                points.push(evaluate(job, &p)?);
            }
            Some((s.clone(), points))
        }
        None => None,
    };
    Ok(Audit {
        capture: job.capture.clone(),
        config_path: job.config_path.clone(),
        span,
        warnings: totals.all_warnings(),
        gaps: g.finish(),
        results,
        sweep,
        bytes_per_session: Engine::bytes_per_session(),
    })
}

/// Resolves a `--policy` argument: a preset, `config`, a `[[policy]]` of the configuration file,
/// or a spec (`tcp=2h,udp=5m`, on top of the configuration's timeouts).
pub fn resolve(arg: &str, cfg: &EngineConfig, file_policies: &[Policy]) -> Result<Policy, String> {
    let base = config_policy(cfg);
    if arg == "config" {
        return Ok(base);
    }
    if let Some(p) = file_policies.iter().find(|p| p.name == arg) {
        return Ok(p.clone());
    }
    if let Some(p) = policy::preset(arg) {
        return Ok(p);
    }
    if arg.contains('=') {
        return policy::parse_spec(arg, &base);
    }
    let mut known: Vec<String> = policy::PRESETS.iter().map(|s| s.to_string()).collect();
    known.push("config".into());
    known.extend(file_policies.iter().map(|p| p.name.clone()));
    Err(format!(
        "unknown policy `{arg}` (a preset or [[policy]] name: {}; or KEY=VALUE,... e.g. tcp=2h,udp=5m)",
        known.join(", ")
    ))
}

/// The `[[policy]]` tables of the configuration file at `path`.
pub fn file_policies(path: &Path, cfg: &EngineConfig) -> Result<Vec<Policy>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read configuration: {e}", path.display()))?;
    policy::from_config_file(path, &text, &config_policy(cfg))
}
