//! The LSNAT engine: a sans-IO state machine (RFC 2391 §4).
//!
//! Fed `(capture timestamp, IPv4 datagram bytes)`, it decides each packet's flow, binds new
//! sessions to pool members ([`binding`], §4.1), looks up and translates packets of bound sessions
//! in place ([`lookup`], §4.2, RFC 3022 / RFC 1631 §5 for the header rewriting), and unbinds
//! sessions when they end or idle out ([`unbinding`], §4.3 and §2.4). Time comes only from the
//! timestamps it is given: timers fire in capture time, interleaved with packets. It reads no
//! clock and no file and uses no randomness, so the same input gives the same output anywhere.
//!
//! ```text
//!   handle(now, bytes) ─► expire timers ≤ now ─► parse ─► classify flow
//!        ─► inbound:  lookup key ─(miss)─► bind (load share) ─► translate dst VIP→member
//!        ─► outbound: lookup reply key ─► translate src member→VIP
//!        ─► Outcome (per packet) + Events (per session, drained with poll_event)
//! ```

pub mod affinity;
pub mod binding;
pub mod config;
pub mod decision;
pub mod event;
pub mod load_share;
pub mod lookup;
pub mod server_pool;
mod session;
pub mod unbinding;
mod virtual_server;

pub use config::{
    AffinityConfig, Algorithm, AlgorithmParams, CapacityReport, EngineConfig, HashKey,
    LoadTracking, MemberSettings, Timeouts, TrafficMeasure, View, VirtualServerConfig,
};
pub use decision::{AffinityBreak, AffinityOutcome, DECISION_LIST, Decision, DecisionEntry};
pub use event::{
    ChecksumFaults, DropReason, EndReason, Event, Flow, History, Outcome, PassReason,
    SessionRecord, Tuple, Verdict,
};
pub use server_pool::{Member, ServerPool};

use crate::time::Timestamp;
use rustc_hash::FxHashMap;
use session::Session;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use unbinding::FragmentTable;
use virtual_server::{VirtualServer, VirtualServers};

/// Counters the engine keeps about its own input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Packets whose timestamp was earlier than one already seen (time is held, not reversed).
    pub timestamps_backwards: u64,
    /// Sessions bound.
    pub sessions_bound: u64,
    /// Most sessions bound at once.
    pub peak_sessions: u64,
}

/// The engine.
pub struct Engine {
    timeouts: Timeouts,
    ttl_decrement: bool,
    max_sessions: Option<usize>,
    vss: VirtualServers,
    pool: ServerPool,
    /// Session storage; a slot is reused after its session is unbound.
    slots: Vec<Option<Session>>,
    free: Vec<u32>,
    live: usize,
    /// Session key (inbound) and reply key (outbound) → slot.
    flows: FxHashMap<Tuple, (u32, Flow)>,
    /// Lazy timer heap: (deadline, session number, slot). See [`unbinding`].
    timers: BinaryHeap<Reverse<(Timestamp, u64, u32)>>,
    /// Lazy longest-idle heap, kept only with a session-table limit: (last seen, number, slot).
    idle: BinaryHeap<Reverse<(Timestamp, u64, u32)>>,
    frags: FragmentTable,
    now: Timestamp,
    started: bool,
    next_number: u64,
    events: VecDeque<Event>,
    stats: EngineStats,
    /// Scratch for load-share candidates (no per-session allocation).
    candidates: Vec<load_share::Candidate>,
    /// Scratch for the figures an algorithm compares.
    scratch: load_share::Scratch,
    /// Client affinity (RSerPool requirements §5).
    affinity: affinity::AffinityTable,
    /// Member-reported capacities, applied as capture time passes them.
    capacity_reports: Vec<CapacityReport>,
    next_capacity: usize,
}

impl Engine {
    /// Builds an engine. The configuration must already be validated (see [`crate::config`]).
    pub fn new(cfg: EngineConfig) -> Engine {
        let mut pool = ServerPool::new(cfg.load_tracking.window, cfg.load_tracking.smoothing);
        let list = cfg
            .virtual_servers
            .into_iter()
            .map(|v| VirtualServer::new(v, &mut pool))
            .collect();
        for s in &cfg.member_settings {
            let i = pool.intern(s.addr);
            let m = pool.member_mut(i);
            m.weight = s.weight;
            m.cost = s.cost;
        }
        let mut capacity_reports = cfg.capacity_reports;
        capacity_reports.sort_by_key(|r| r.at);
        Engine {
            timeouts: cfg.timeouts,
            ttl_decrement: cfg.ttl_decrement,
            max_sessions: cfg.max_sessions,
            vss: VirtualServers {
                list,
                view: cfg.view,
            },
            pool,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            flows: FxHashMap::default(),
            timers: BinaryHeap::new(),
            idle: BinaryHeap::new(),
            frags: FragmentTable::new(cfg.fragment_timeout),
            now: Timestamp(0),
            started: false,
            next_number: 1,
            events: VecDeque::new(),
            stats: EngineStats::default(),
            candidates: Vec::new(),
            scratch: load_share::Scratch::default(),
            affinity: affinity::AffinityTable::default(),
            capacity_reports,
            next_capacity: 0,
        }
    }

    /// Handles one IPv4 datagram (`packet` starts at the IPv4 header and may be cut short by
    /// the capture's snaplen), rewriting it in place when it is translated.
    pub fn handle(&mut self, now: Timestamp, packet: &mut [u8]) -> Outcome {
        let now = self.advance(now);
        self.process(now, packet)
    }

    /// Lets capture time pass to `now` without a packet, firing due timers.
    pub fn advance(&mut self, now: Timestamp) -> Timestamp {
        let now = if !self.started {
            self.started = true;
            now
        } else if now < self.now {
            self.stats.timestamps_backwards += 1;
            self.now
        } else {
            now
        };
        self.now = now;
        self.expire(now);
        self.apply_capacity_reports(now);
        now
    }

    /// Applies every member-reported capacity (RFC 2391 §5.1, active category) due by `now`.
    /// Reports for addresses that are not pool members are ignored.
    fn apply_capacity_reports(&mut self, now: Timestamp) {
        while let Some(r) = self.capacity_reports.get(self.next_capacity) {
            if r.at > now {
                break;
            }
            if let Some(m) = self.pool.find(r.member.octets()) {
                self.pool.member_mut(m).capacity = Some(r.capacity);
            }
            self.next_capacity += 1;
        }
    }

    /// Ends the replay at `end`: every session still bound is reported, as open or (if it had
    /// closed and was in its grace period) with its close reason.
    pub fn finish(&mut self, end: Timestamp) {
        let end = end.max(self.now);
        let mut open: Vec<(u64, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (s.number, i as u32)))
            .collect();
        open.sort_unstable();
        for (_, slot) in open {
            let reason = self.slots[slot as usize]
                .as_ref()
                .and_then(|s| s.closed.map(|c| c.1))
                .unwrap_or(EndReason::OpenAtEnd);
            self.unbind(slot, reason, end);
        }
    }

    /// The next session event, if any. Drain after every [`Engine::handle`].
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The pool members (index = `SessionRecord::member`).
    pub fn members(&self) -> &[Member] {
        self.pool.members()
    }

    /// Counters about the input.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Sessions bound now.
    pub fn live_sessions(&self) -> usize {
        self.live
    }

    /// Bytes of engine state per bound session (slot, two flow-table entries, timer entry):
    /// the figure table-memory estimates are made from.
    pub fn bytes_per_session() -> usize {
        std::mem::size_of::<Option<Session>>()
            + 2 * (std::mem::size_of::<(Tuple, (u32, Flow))>() + 1)
            + std::mem::size_of::<Reverse<(Timestamp, u64, u32)>>()
    }

    fn session(&self, slot: u32) -> &Session {
        self.slots[slot as usize]
            .as_ref()
            .expect("flow table points at a live slot")
    }

    fn session_mut(&mut self, slot: u32) -> &mut Session {
        self.slots[slot as usize]
            .as_mut()
            .expect("flow table points at a live slot")
    }
}

#[cfg(test)]
mod tests;
