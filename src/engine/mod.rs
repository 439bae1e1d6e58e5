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

pub mod binding;
pub mod config;
pub mod event;
pub mod load_share;
pub mod lookup;
mod napt;
pub mod server_pool;
mod session;
mod static_mapping;
pub mod tu_port;
pub mod unbinding;
mod virtual_server;

pub use config::{
    Algorithm, EngineConfig, Mode, NaptConfig, StaticMapping, Timeouts, View, VirtualServerConfig,
};
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
    /// LSNAT or LS-NAPT (RFC 2391 §3.1–3.3).
    mode: Mode,
    /// LS-NAPT: the source address sessions get toward members (`None`: the VIP).
    napt_source: Option<[u8; 4]>,
    /// Addresses the router owns (VIPs among them restrict service, §3).
    router_addresses: Vec<[u8; 4]>,
    /// TU ports held by LS-NAPT and NAPT sessions.
    ports: tu_port::TuPorts,
    /// NAPT of inside-initiated sessions (§3.2).
    napt: Option<napt::Napt>,
    /// Static mappings of members to backups (§4.1).
    statics: static_mapping::StaticMappings,
}

impl Engine {
    /// Builds an engine. The configuration must already be validated (see [`crate::config`]).
    pub fn new(cfg: EngineConfig) -> Engine {
        let mut pool = ServerPool::default();
        let list: Vec<VirtualServer> = cfg
            .virtual_servers
            .into_iter()
            .map(|v| VirtualServer::new(v, &mut pool))
            .collect();
        let statics = static_mapping::StaticMappings::new(&cfg.static_mappings, &mut pool);
        let mut router_addresses: Vec<[u8; 4]> = cfg
            .router_addresses
            .iter()
            .chain(cfg.inside_address.iter())
            .chain(cfg.outside_address.iter())
            .map(|a| a.octets())
            .collect();
        if cfg.mode == Mode::LsNapt {
            // RFC 2391 §3.3: in LS-NAPT the virtual server address is the router's own.
            router_addresses.extend(list.iter().map(|v| v.vip));
        }
        let napt = match (&cfg.napt, cfg.outside_address) {
            (Some(n), Some(addr)) => Some(napt::Napt::new(&n.inside, addr)),
            _ => None,
        };
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
            mode: cfg.mode,
            napt_source: cfg.inside_address.map(|a| a.octets()),
            router_addresses,
            ports: tu_port::TuPorts::default(),
            napt,
            statics,
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
        now
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
