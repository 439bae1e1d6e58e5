//! Idle gaps observed in a capture: for each load-shared session, the time between consecutive
//! packets, classed by what the session was doing while idle (TCP opening / established /
//! closing / closed / reset, UDP, ICMP query, other), which is what decides the timeout that
//! applies (RFC 5382 §5, RFC 2391 §2.4). Also, for context, the gaps of every IPv4 flow in the
//! capture (load-shared or not), by protocol.
//!
//! A session's packets are those the engine refreshes it with: its own datagrams and segments
//! and their later fragments, not the ICMP errors translated for it (RFC 7857 §2.1: they
//! SHOULD NOT refresh it, and the engine's do not), which neither start nor end a gap nor
//! change its TCP state.
//!
//! A gap is the time since the session's packet before, except once the session has closed
//! (both FINs acknowledged, or an RST): it then ends a grace after the close whatever comes
//! after, so a later packet's gap is the time since the close.
//!
//! Measured once, on a replay in which nothing expires. A timeout longer than the largest gap
//! of its class breaks nothing in this capture (the engine unbinds when `last + timeout ≤ now`,
//! so a timeout equal to a gap already cuts it).

use crate::capture::PacketMeta;
use crate::engine::{Event, Outcome, TcpState, Tuple, Verdict};
use crate::replay::{Disposition, Observer};
use crate::time::{Span, Timestamp};
use crate::wire::proto;
use rustc_hash::FxHashMap;

/// What a session was doing while idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GapClass {
    /// TCP, handshake not completed.
    TcpOpening,
    /// TCP, established.
    TcpEstablished,
    /// TCP, a FIN seen.
    TcpClosing,
    /// TCP, both FINs acknowledged (the close grace applies).
    TcpClosed,
    /// TCP, after an RST.
    TcpReset,
    /// UDP.
    Udp,
    /// ICMP query.
    Icmp,
    /// Other protocols.
    Other,
}

impl GapClass {
    /// Every class, in report order.
    pub const ALL: [GapClass; 8] = [
        GapClass::TcpEstablished,
        GapClass::TcpOpening,
        GapClass::TcpClosing,
        GapClass::TcpClosed,
        GapClass::TcpReset,
        GapClass::Udp,
        GapClass::Icmp,
        GapClass::Other,
    ];

    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            GapClass::TcpOpening => "tcp-opening",
            GapClass::TcpEstablished => "tcp-established",
            GapClass::TcpClosing => "tcp-closing",
            GapClass::TcpClosed => "tcp-closed",
            GapClass::TcpReset => "tcp-reset",
            GapClass::Udp => "udp",
            GapClass::Icmp => "icmp",
            GapClass::Other => "other",
        }
    }

    /// The policy key (see [`super::policy::set_timeout`]) of the timeout that applies.
    pub fn timeout_key(self) -> &'static str {
        match self {
            GapClass::TcpOpening => "tcp-opening",
            GapClass::TcpEstablished => "tcp",
            GapClass::TcpClosing => "tcp-closing",
            GapClass::TcpClosed => "tcp-fin",
            GapClass::TcpReset => "tcp-rst",
            GapClass::Udp => "udp",
            GapClass::Icmp => "icmp",
            GapClass::Other => "other",
        }
    }

    fn of(protocol: u8, tcp: Option<TcpState>) -> GapClass {
        match protocol {
            proto::TCP => match tcp.unwrap_or_default() {
                TcpState::Opening => GapClass::TcpOpening,
                TcpState::Established => GapClass::TcpEstablished,
                TcpState::Closing => GapClass::TcpClosing,
                TcpState::Closed => GapClass::TcpClosed,
                TcpState::Reset => GapClass::TcpReset,
            },
            proto::UDP => GapClass::Udp,
            proto::ICMP => GapClass::Icmp,
            _ => GapClass::Other,
        }
    }
}

/// The distribution of one class's gaps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Distribution {
    /// How many gaps (consecutive packet pairs).
    pub count: u64,
    /// Sessions (or flows) with at least one gap of this class.
    pub sessions: u64,
    /// Nearest-rank percentiles 50, 90, 99 and the maximum.
    pub p50: Span,
    /// 90th percentile.
    pub p90: Span,
    /// 99th percentile.
    pub p99: Span,
    /// Largest gap.
    pub max: Span,
    /// The session key (client → VIP) or flow of the largest gap.
    pub max_at: Option<Tuple>,
    /// Gaps longer than 30 s.
    pub over_30s: u64,
}

impl Distribution {
    fn of(mut gaps: Vec<u64>, sessions: u64, max_at: Option<Tuple>) -> Distribution {
        gaps.sort_unstable();
        let rank = |p: u64| -> Span {
            if gaps.is_empty() {
                return Span(0);
            }
            let n = gaps.len() as u64;
            let r = (p * n).div_ceil(100).max(1);
            Span(gaps[(r - 1) as usize])
        };
        Distribution {
            count: gaps.len() as u64,
            sessions,
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
            max: Span(gaps.last().copied().unwrap_or(0)),
            max_at,
            over_30s: gaps.iter().filter(|&&g| g > 30_000_000_000).count() as u64,
        }
    }

    /// The smallest timeout that cuts none of these gaps: one nanosecond more than the largest.
    /// `None` when there is no gap.
    pub fn safe_timeout(&self) -> Option<Span> {
        (self.count > 0).then(|| Span(self.max.0 + 1))
    }
}

#[derive(Default)]
struct Series {
    gaps: Vec<u64>,
    max: u64,
    max_at: Option<Tuple>,
    keys_with_gaps: u64,
}

impl Series {
    fn push(&mut self, gap: u64, key: Tuple, first_gap_of_key: bool) {
        self.gaps.push(gap);
        if gap > self.max || self.max_at.is_none() {
            self.max = gap.max(self.max);
            self.max_at = Some(key);
        }
        if first_gap_of_key {
            self.keys_with_gaps += 1;
        }
    }
}

/// A live session, as far as its gaps go.
struct Track {
    key: Tuple,
    /// Its last packet.
    last: Timestamp,
    /// Its TCP state after that packet.
    state: Option<TcpState>,
    /// When it closed (both FINs acknowledged, or an RST): the close grace runs from then,
    /// whatever comes after (RFC 2391 §2.4, [`crate::engine::Timeouts::deadline`]).
    closed_at: Option<Timestamp>,
    /// The classes it had a gap in (one bit each).
    had: u8,
}

/// Collects gaps from a replay (observer).
#[derive(Default)]
pub struct GapObserver {
    /// session number → its gaps so far
    sessions: FxHashMap<u64, Track>,
    by_class: FxHashMap<GapClass, Series>,
    /// normalised flow → (last packet, had a gap)
    flows: FxHashMap<Tuple, (Timestamp, bool)>,
    by_proto: FxHashMap<u8, Series>,
}

/// A flow's direction-independent key: endpoints in order (ICMP: the identifier on both).
fn flow_key(t: &Tuple) -> Tuple {
    let a = (t.src, t.sport);
    let b = (t.dst, t.dport);
    let (a, b) = if t.protocol == proto::ICMP {
        ((t.src, t.sport), (t.dst, t.sport))
    } else {
        (a, b)
    };
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    Tuple {
        protocol: t.protocol,
        src: lo.0,
        sport: lo.1,
        dst: hi.0,
        dport: hi.1,
    }
}

/// Whether a packet translated for the session with `key` (client → VIP) is an ICMP error
/// quoting one of its datagrams rather than one of its own packets. The outcome's tuple of an
/// error is the outer ICMP header's: protocol ICMP, no identifier (`id 0`). So it is an error
/// when the session is not ICMP, or, for an ICMP query session, when the session's identifier
/// is not 0 (an LS-NAPT identifier is 1024 or more): an error about an ICMP session whose
/// client chose identifier 0 cannot be told from the session's own packets by the outcome, and
/// counts as activity. A later fragment of the session's own datagram has no ICMP header, so
/// its tuple has `id 0` too; it carries no transport checksum (an error always has its ICMP
/// checksum in the outcome), and counts as activity like the session's other packets.
fn is_icmp_error_of(key: &Tuple, o: &Outcome) -> bool {
    let before = &o.before;
    let later_fragment = o.l4_checksum.is_none();
    before.protocol == proto::ICMP
        && (key.protocol != proto::ICMP || (before.sport == 0 && key.sport != 0 && !later_fragment))
}

/// The protocol bucket for flows: TCP, UDP, ICMP, or 0 for the rest.
fn proto_bucket(p: u8) -> u8 {
    match p {
        proto::TCP | proto::UDP | proto::ICMP => p,
        _ => 0,
    }
}

/// Gap distributions by session class and by flow protocol.
#[derive(Clone, Debug, Default)]
pub struct Gaps {
    /// Load-shared sessions, by class (only classes with sessions).
    pub sessions: Vec<(GapClass, Distribution)>,
    /// Every IPv4 flow, by protocol name (`tcp`, `udp`, `icmp`, `other`).
    pub flows: Vec<(&'static str, Distribution)>,
}

impl GapObserver {
    /// The distributions.
    pub fn finish(mut self) -> Gaps {
        let mut g = Gaps::default();
        for c in GapClass::ALL {
            if let Some(s) = self.by_class.remove(&c) {
                g.sessions
                    .push((c, Distribution::of(s.gaps, s.keys_with_gaps, s.max_at)));
            }
        }
        for (p, name) in [
            (proto::TCP, "tcp"),
            (proto::UDP, "udp"),
            (proto::ICMP, "icmp"),
            (0, "other"),
        ] {
            if let Some(s) = self.by_proto.remove(&p) {
                g.flows
                    .push((name, Distribution::of(s.gaps, s.keys_with_gaps, s.max_at)));
            }
        }
        g
    }
}

impl Observer for GapObserver {
    fn packet(&mut self, meta: &PacketMeta, what: &Disposition) {
        let Disposition::Engine(o) = what else {
            return;
        };
        let fk = flow_key(&o.before);
        match self.flows.get_mut(&fk) {
            Some((last, had)) => {
                let gap = meta.ts.since(*last).0;
                let series = self.by_proto.entry(proto_bucket(fk.protocol)).or_default();
                series.push(gap, fk, !*had);
                *had = true;
                *last = (*last).max(meta.ts);
            }
            None => {
                self.flows.insert(fk, (meta.ts, false));
            }
        }
        if o.verdict != Verdict::Translated || o.session == 0 {
            return;
        }
        if let Some(t) = self.sessions.get_mut(&o.session) {
            if is_icmp_error_of(&t.key, o) {
                // Translated, but it neither refreshes the session (RFC 7857 §2.1: errors
                // SHOULD NOT) nor says anything about its TCP state.
                return;
            }
            // Closed or reset, the session ends a grace after its close, however busy it is
            // since: what a later packet needs is a grace longer than the time since the
            // close, which is its gap. Otherwise, the time since the packet before.
            let gap = meta.ts.since(t.closed_at.unwrap_or(t.last)).0;
            let class = GapClass::of(t.key.protocol, t.state);
            let bit = 1u8 << (class as u8);
            self.by_class
                .entry(class)
                .or_default()
                .push(gap, t.key, t.had & bit == 0);
            t.had |= bit;
            t.last = t.last.max(meta.ts);
            // A TCP segment says its state after it; a later fragment (None) keeps it.
            if o.tcp_state.is_some() {
                t.state = o.tcp_state;
            }
            if t.closed_at.is_none() && matches!(t.state, Some(TcpState::Closed | TcpState::Reset))
            {
                t.closed_at = Some(t.last);
            }
        }
    }

    fn event(&mut self, event: &Event) {
        match event {
            Event::Bound {
                number, at, key, ..
            } => {
                self.sessions.insert(
                    *number,
                    Track {
                        key: *key,
                        last: *at,
                        state: None,
                        closed_at: None,
                        had: 0,
                    },
                );
            }
            Event::Ended(r) => {
                self.sessions.remove(&r.number);
            }
        }
    }
}
