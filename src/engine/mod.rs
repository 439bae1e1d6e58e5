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
pub mod dead_host;
pub mod decision;
pub mod event;
pub mod flow_table;
pub mod fragments;
pub mod ftp;
pub mod load_share;
pub mod lookup;
mod napt;
pub mod pool_timeline;
pub mod server_pool;
mod session;
mod static_mapping;
pub mod time_exceeded;
mod timer_queue;
pub mod tu_port;
pub mod unbinding;
mod virtual_server;

pub use config::{
    AffinityConfig, Algorithm, AlgorithmParams, CapacityReport, DeadHostConfig, EngineConfig,
    HashKey, LoadTracking, MemberSettings, Mode, NaptConfig, StaticMapping, TimelineAction,
    TimelineAt, TimelineEntry, Timeouts, TrafficMeasure, View, VirtualServerConfig,
};
pub use decision::{AffinityBreak, AffinityOutcome, DECISION_LIST, Decision, DecisionEntry};
pub use event::{
    AlgNote, ChecksumFaults, DropReason, EmitKind, Emitted, EndReason, Event, Flow, History,
    Outcome, PassReason, PoolEvent, PoolEventKind, SessionRecord, TcpState, Tuple, Verdict,
};
pub use fragments::HoldLimits;
pub use lookup::Prefetch;
pub use server_pool::{Admin, Health, Member, ServerPool};

use crate::time::Timestamp;
use crate::wire;
use crate::wire::ipv4::{Ipv4, L4};
use dead_host::DeadHost;
use fragments::{FragmentHold, FragmentKey, FragmentTable};
use pool_timeline::Timeline;
use session::Session;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
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
    /// Sessions whose close was seen, unbound before the end of their grace period to make
    /// room in a full table (RFC 2391 §2.4; they end `fin` or `rst`, not `retired`).
    pub grace_cut_short: u64,
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
    flows: flow_table::FlowTable,
    /// Client-side view, LSNAT sessions: the key each session's replies leave its member with
    /// (member → client), which the capture never shows (its replies come from the VIP), kept
    /// so that two sessions never share it, as in the router view (see [`binding`]).
    member_side_replies: rustc_hash::FxHashSet<Tuple>,
    /// Lazy timer heap: (deadline, session number, slot). See [`unbinding`].
    timers: timer_queue::TimerQueue<(Timestamp, u64, u32)>,
    /// Lazy retirement heap, kept only with a session-table limit: (class, since, number,
    /// slot), [`binding::Retire`]: sessions closed and in their grace period first (by the
    /// time they closed), then live ones by the time they were last seen.
    idle: BinaryHeap<Reverse<(binding::Retire, Timestamp, u64, u32)>>,
    frags: FragmentTable,
    /// Later fragments waiting for their first fragment.
    hold: FragmentHold,
    icmp_time_exceeded: bool,
    /// Sources of the ICMP errors the router sends: toward clients, toward members.
    outside_address: Option<[u8; 4]>,
    inside_address: Option<[u8; 4]>,
    /// Packets emitted on the engine's own account (released fragments, ICMP errors), back to
    /// back, and their descriptions: drained with `poll_emitted`, reused.
    emit_buf: Vec<u8>,
    emit_queue: VecDeque<(EmitKind, usize, usize)>,
    now: Timestamp,
    started: bool,
    next_number: u64,
    events: VecDeque<Event>,
    stats: EngineStats,
    /// Scratch for load-share candidates (no per-session allocation).
    candidates: Vec<load_share::Candidate>,
    /// Where each candidate's session would go (its member or a backup).
    targets: Vec<static_mapping::Target>,
    /// Dead host detection (RFC 2391 §6).
    dead_host: DeadHost,
    /// Pool changes during the replay.
    timeline: Timeline,
    /// Pool member transitions, drained with [`Engine::poll_pool_event`].
    pool_events: VecDeque<PoolEvent>,
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
    /// Scratch for the figures an algorithm compares.
    scratch: load_share::Scratch,
    /// Client affinity (RSerPool requirements §5).
    affinity: affinity::AffinityTable,
    /// Member-reported capacities, applied as capture time passes them.
    capacity_reports: Vec<CapacityReport>,
    next_capacity: usize,
    /// While a packet given to [`Engine::handle_precomputed`] is processed: what the caller
    /// worked out of its bytes.
    given: Option<Precomputed>,
    /// The FTP application level gateway (RFC 1631 §5, RFC 3022 §4.3).
    ftp: ftp::Gateway,
    /// The last packet's datagram when the FTP gateway changed its length ([`Engine::resized`]).
    resized: Vec<u8>,
}

impl Engine {
    /// Builds an engine. The configuration must already be validated (see [`crate::config`]).
    pub fn new(cfg: EngineConfig) -> Engine {
        let mut pool = ServerPool::new(cfg.load_tracking.window, cfg.load_tracking.smoothing);
        let list: Vec<VirtualServer> = cfg
            .virtual_servers
            .into_iter()
            .map(|v| VirtualServer::new(v, &mut pool))
            .collect();
        pool.count_traffic = list.iter().any(|v| {
            matches!(
                v.config.algorithm,
                Algorithm::LeastTraffic | Algorithm::CostLeastTraffic
            )
        });
        let statics = static_mapping::StaticMappings::new(&cfg.static_mappings, &mut pool);
        let mut list = list;
        for v in &mut list {
            for i in 0..v.members.len() {
                let addr = pool.member(v.members[i]).addr.octets();
                statics.register_backups(v, addr);
            }
        }
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
            flows: flow_table::FlowTable::default(),
            member_side_replies: Default::default(),
            timers: timer_queue::TimerQueue::default(),
            idle: BinaryHeap::new(),
            frags: FragmentTable::new(cfg.fragment_timeout),
            hold: FragmentHold::new(HoldLimits {
                max_fragments: cfg.fragment_hold_max,
                max_bytes: cfg.fragment_hold_bytes,
                timeout: cfg.fragment_timeout,
            }),
            icmp_time_exceeded: cfg.icmp_time_exceeded,
            outside_address: cfg.outside_address.map(|a| a.octets()),
            inside_address: cfg.inside_address.map(|a| a.octets()),
            emit_buf: Vec::new(),
            emit_queue: VecDeque::new(),
            now: Timestamp(0),
            started: false,
            next_number: 1,
            events: VecDeque::new(),
            stats: EngineStats::default(),
            candidates: Vec::new(),
            targets: Vec::new(),
            dead_host: DeadHost::new(cfg.dead_host),
            timeline: Timeline::new(cfg.timeline),
            pool_events: VecDeque::new(),
            mode: cfg.mode,
            napt_source: cfg.inside_address.map(|a| a.octets()),
            router_addresses,
            ports: tu_port::TuPorts::default(),
            napt,
            statics,
            scratch: load_share::Scratch::default(),
            affinity: affinity::AffinityTable::default(),
            capacity_reports,
            next_capacity: 0,
            given: None,
            ftp: ftp::Gateway {
                ports: cfg.ftp_ports,
                ..Default::default()
            },
            resized: Vec::new(),
        }
    }

    /// Handles one IPv4 datagram (`packet` starts at the IPv4 header and may be cut short by
    /// the capture's snaplen), rewriting it in place when it is translated.
    ///
    /// Packets the engine emits because of it (held fragments it releases, an ICMP time
    /// exceeded) are drained with [`Engine::poll_emitted`] before the next call.
    pub fn handle(&mut self, now: Timestamp, packet: &mut [u8]) -> Outcome {
        self.handle_inner(now, packet, None)
    }

    /// [`Engine::handle`] for a packet whose checksums were already verified, by
    /// [`precompute`] on the same bytes (the replay does it on its reader thread, where the
    /// bytes are still in cache). The outcome is the same as `handle`'s.
    pub fn handle_precomputed(
        &mut self,
        now: Timestamp,
        packet: &mut [u8],
        pre: &Precomputed,
    ) -> Outcome {
        self.handle_inner(now, packet, Some(*pre))
    }

    fn handle_inner(
        &mut self,
        now: Timestamp,
        packet: &mut [u8],
        given: Option<Precomputed>,
    ) -> Outcome {
        let now = self.advance(now);
        // A first fragment releases the later fragments that came before it: note its
        // datagram's identity as it arrived (only when something is held).
        let first = (self.hold.len() > 0)
            .then(|| Ipv4::parse(packet).ok())
            .flatten()
            .filter(|ip| ip.more_fragments && ip.frag_offset == 0)
            .map(|ip| FragmentKey::arrived(ip.src, ip.dst, &ip))
            .filter(|key| self.hold.holds(key));
        self.given = given;
        let out = self.process(now, packet);
        self.given = None;
        if out.verdict == Verdict::Drop(DropReason::TtlExceeded) && self.icmp_time_exceeded {
            self.answer_time_exceeded(packet, &out);
        }
        if let Some(key) = first {
            self.release(now, key, &out);
        }
        if !matches!(out.verdict, Verdict::Translated | Verdict::Held(_)) {
            self.note_first_fragment_fate(now, packet, out.verdict);
        }
        out
    }

    /// A first fragment that was passed or dropped leaves its verdict for the later fragments
    /// of its datagram (RFC 3022 §4.1: they share the first fragment's fate), as a translated
    /// one leaves its translation; without it they would wait in the hold for a first fragment
    /// that has already gone by.
    fn note_first_fragment_fate(&mut self, now: Timestamp, packet: &[u8], verdict: Verdict) {
        // Flags and fragment offset: more fragments set, offset 0.
        if packet
            .get(6..8)
            .is_none_or(|f| f[0] & 0x3f != 0x20 || f[1] != 0)
        {
            return;
        }
        let Ok(ip) = Ipv4::parse(packet) else {
            return;
        };
        if self.fragment_related(&ip) {
            let key = FragmentKey::arrived(ip.src, ip.dst, &ip);
            self.frags
                .insert(now, key, fragments::FragmentFate::Like(verdict));
        }
    }

    /// The datagram to forward for the packet just handled when the FTP gateway changed its
    /// length ([`AlgNote::resized`] non-zero in its outcome): the packet given is then left
    /// with its headers rewritten but its old payload, and must not be forwarded itself.
    /// Valid until the next call.
    pub fn resized(&self) -> &[u8] {
        &self.resized
    }

    /// The next packet the engine emitted on its own account, if any. Drain after every
    /// [`Engine::handle`], [`Engine::advance`] and [`Engine::finish`]: the bytes are valid until
    /// the next of those calls.
    pub fn poll_emitted(&mut self) -> Option<Emitted<'_>> {
        let (kind, at, len) = self.emit_queue.pop_front()?;
        Some(Emitted {
            kind,
            bytes: &self.emit_buf[at..at + len],
        })
    }

    /// Later fragments held now, waiting for their first fragment.
    pub fn held_fragments(&self) -> usize {
        self.hold.len()
    }

    fn emit(&mut self, kind: EmitKind, bytes: &[u8]) {
        let at = self.emit_buf.len();
        self.emit_buf.extend_from_slice(bytes);
        self.emit_queue.push_back((kind, at, bytes.len()));
    }

    /// Sends the ICMP time exceeded for a packet just dropped for its TTL (RFC 1812 §5.3.1),
    /// from the router's address on the side the packet came from: toward a client, the
    /// configured `outside_address` or else the virtual server's address it was sent to (what
    /// the client knows, and what Linux's NAT answers from); toward a member, `inside_address`
    /// or else `outside_address`.
    fn answer_time_exceeded(&mut self, packet: &[u8], out: &Outcome) {
        let Ok(ip) = Ipv4::parse(packet) else {
            return;
        };
        if !time_exceeded::may_answer(&ip, &ip.l4(packet)) {
            return;
        }
        let src = match out.flow {
            Flow::Inbound => self.outside_address.unwrap_or(out.before.dst),
            _ => match self.inside_address.or(self.outside_address) {
                Some(a) => a,
                None => return,
            },
        };
        let at = self.emit_buf.len();
        if let Some(len) = time_exceeded::build(&mut self.emit_buf, src, &packet[..ip.captured]) {
            let tuple = Tuple {
                protocol: wire::proto::ICMP,
                src,
                sport: 0,
                dst: ip.src,
                dport: 0,
            };
            let session = out.session;
            self.emit_queue
                .push_back((EmitKind::IcmpTimeExceeded { tuple, session }, at, len));
        }
    }

    /// Releases the fragments held for datagram `key`, whose first fragment just got `first`:
    /// translated like it when it was translated, passed or dropped like it otherwise.
    fn release(&mut self, now: Timestamp, key: FragmentKey, first: &Outcome) {
        while let Some(mut h) = self.hold.take(&key) {
            let outcome = match first.verdict {
                Verdict::Translated => match Ipv4::parse(&h.data) {
                    Ok(ip) => {
                        let mut out = lookup::base_outcome(&ip, &L4::LaterFragment, &h.data);
                        self.later_fragment(now, ip, &mut h.data, &mut out, false);
                        out
                    }
                    Err(_) => Outcome::new(Verdict::Drop(DropReason::MalformedIpv4)),
                },
                Verdict::Pass(r) => Self::held_outcome(&h.data, Verdict::Pass(r)),
                Verdict::Drop(r) => Self::held_outcome(&h.data, Verdict::Drop(r)),
                Verdict::Held(_) => {
                    Self::held_outcome(&h.data, Verdict::Drop(DropReason::FragmentWithoutFirst))
                }
            };
            let data = std::mem::take(&mut h.data);
            let forward = !matches!(outcome.verdict, Verdict::Drop(_));
            self.emit(
                EmitKind::HeldFragment {
                    hold: h.id,
                    outcome,
                },
                if forward { &data } else { &[] },
            );
            self.hold.recycle(data);
        }
    }

    fn held_outcome(data: &[u8], verdict: Verdict) -> Outcome {
        match Ipv4::parse(data) {
            Ok(ip) => {
                let mut o = lookup::base_outcome(&ip, &L4::LaterFragment, data);
                o.verdict = verdict;
                o
            }
            Err(_) => Outcome::new(verdict),
        }
    }

    /// Drops the held fragments whose first fragment did not come in time.
    fn expire_held(&mut self, now: Timestamp) {
        while let Some((h, _due)) = self.hold.take_expired(now) {
            self.drop_held(h, DropReason::FragmentHoldTimeout);
        }
    }

    /// Reports held fragment `h` dropped for `reason` and returns its buffer to the hold.
    fn drop_held(&mut self, h: fragments::Held, reason: DropReason) {
        let outcome = Self::held_outcome(&h.data, Verdict::Drop(reason));
        self.emit(
            EmitKind::HeldFragment {
                hold: h.id,
                outcome,
            },
            &[],
        );
        self.hold.recycle(h.data);
    }

    /// Capture time reaches `now` with a frame the engine is not given (not IPv4, a copy the
    /// capturing host sent): the capture's first frame starts its clock (pool-timeline times
    /// count from the capture's first packet, whatever it holds); a later one lets time run on
    /// to `now`, firing the timers due (never back: an earlier stamp changes nothing and is not
    /// counted as going backwards).
    pub fn pass_time(&mut self, now: Timestamp) {
        if !self.started || now > self.now {
            self.advance(now);
        }
    }

    /// Lets capture time pass to `now` without a packet, firing due timers.
    pub fn advance(&mut self, now: Timestamp) -> Timestamp {
        let now = if !self.started {
            self.started = true;
            self.timeline.resolve(now);
            now
        } else if now < self.now {
            self.stats.timestamps_backwards += 1;
            self.now
        } else {
            now
        };
        self.now = now;
        if self.emit_queue.is_empty() {
            self.emit_buf.clear();
        }
        self.apply_timeline(now);
        self.apply_capacity_reports(now);
        self.run_timers(now);
        self.expire_held(now);
        now
    }

    /// Fires the session timers and the dead-host deadlines due by `now`, in time order: a
    /// dead-host deadline reads the session it is about (answered by another member?), so the
    /// sessions ending before it end first, and those ending at its instant or later after it.
    fn run_timers(&mut self, now: Timestamp) {
        while let Some(due) = self.dead_host_next(now) {
            if let Some(before) = due.0.checked_sub(1) {
                self.expire(Timestamp(before));
            }
            self.dead_host_expire_at(due, now);
        }
        self.expire(now);
    }

    /// Applies every member-reported capacity (RFC 2391 §5.1, active category) due by `now`.
    /// A report from an address that is no member yet counts once the pool timeline adds it.
    fn apply_capacity_reports(&mut self, now: Timestamp) {
        while let Some(r) = self.capacity_reports.get(self.next_capacity) {
            if r.at > now {
                break;
            }
            self.pool.report_capacity(r.member.octets(), r.capacity);
            self.next_capacity += 1;
        }
    }

    /// Ends the replay at `end`: every session still bound is reported, as open or (if it had
    /// closed and was in its grace period) with its close reason.
    /// Fragments still held never saw their first fragment: they are dropped
    /// (`fragment-without-first`, drained with [`Engine::poll_emitted`]).
    pub fn finish(&mut self, end: Timestamp) {
        self.finish_fragments(end);
        self.finish_sessions(end, None);
    }

    /// The first half of [`Engine::finish`]: drops the fragments still held.
    pub fn finish_fragments(&mut self, end: Timestamp) {
        let end = end.max(self.now);
        self.expire_held(end);
        while let Some(h) = self.hold.take_any() {
            self.drop_held(h, DropReason::FragmentWithoutFirst);
        }
    }

    /// The second half of [`Engine::finish`]: unbinds every session still bound. With `f`,
    /// each session event is handed to it as it happens instead of queued, so the queue
    /// never holds the whole table's records at once.
    pub fn finish_sessions(&mut self, end: Timestamp, mut f: Option<&mut dyn FnMut(&Event)>) {
        let end = end.max(self.now);
        let mut open: Vec<(u64, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (s.number, i as u32)))
            .collect();
        open.sort_unstable();
        // Every session goes and no packet follows: the lookup table is dropped whole rather
        // than entry by entry (a random access each, for every session open at the end).
        self.flows = flow_table::FlowTable::default();
        self.timers.clear();
        for (_, slot) in open {
            let reason = self.slots[slot as usize]
                .as_ref()
                .and_then(|s| s.closed.map(|c| c.1))
                .unwrap_or(EndReason::OpenAtEnd);
            self.unbind(slot, reason, end);
            if let Some(f) = f.as_mut() {
                self.drain_events(&mut **f);
            }
        }
    }

    /// The next session event, if any. Drain after every [`Engine::handle`].
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Hands every queued session event to `f`, in order, and empties the queue: like
    /// [`Engine::poll_event`] in a loop, without copying each event out.
    pub fn drain_events(&mut self, mut f: impl FnMut(&Event)) {
        for ev in &self.events {
            f(ev);
        }
        self.events.clear();
    }

    /// The next pool member transition, if any (dead host detection, timeline). Drain after
    /// every [`Engine::handle`], like [`Engine::poll_event`].
    pub fn poll_pool_event(&mut self) -> Option<PoolEvent> {
        self.pool_events.pop_front()
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
            + 2 * flow_table::FlowTable::BYTES_PER_KEY
            + std::mem::size_of::<(Timestamp, u64, u32)>()
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

/// What the engine works out of a packet's bytes alone, before any state is involved: its
/// checksum errors as it arrived and the hash of its lookup key. The parts of handling a
/// packet that read every byte of it, or that must run a few packets ahead (the key, for
/// [`Engine::prefetch`]), so the replay computes it on its reader thread, where the bytes are
/// in cache ([`precompute`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Precomputed {
    /// The IPv4 header checksum error ([`Ipv4::header_checksum_error`]).
    ip_error: u16,
    /// The transport checksum error ([`Ipv4::l4_checksum_error`]).
    l4_error: Option<u16>,
    /// The flow-table hash of the packet's lookup key, when it has one a prefetch can use.
    key_hash: Option<u32>,
}

/// [`Precomputed`] for an IPv4 datagram (`packet` starts at its header); all empty when it
/// does not parse (the engine drops it before reading any of it).
pub fn precompute(packet: &[u8]) -> Precomputed {
    let Ok(ip) = Ipv4::parse(packet) else {
        return Precomputed::default();
    };
    Precomputed {
        ip_error: ip.header_checksum_error(packet),
        l4_error: ip.l4_checksum_error(packet),
        key_hash: lookup::quick_key(packet).map(|k| flow_table::hash(&k)),
    }
}

/// Starts loading every cache line of `bytes` (a packet's headers, some packets ahead of
/// handling it): a hint, like [`Engine::prefetch`].
#[inline]
pub fn prefetch_bytes(bytes: &[u8]) {
    prefetch_lines::<[u8]>(bytes);
}

/// Starts loading every cache line of `v` (a hint; see [`Engine::prefetch`]).
#[inline]
fn prefetch_lines<T: ?Sized>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let p = (v as *const T).cast::<i8>();
        for off in (0..std::mem::size_of_val(v)).step_by(64) {
            // SAFETY: `p + off` lies within `*v`; prefetching reads nothing observable.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.add(off));
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hold_tests;
