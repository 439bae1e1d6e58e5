//! What the engine tells its caller: a per-packet [`Outcome`] and per-session [`Event`]s.
//! Reports are built from these alone.

use crate::time::Timestamp;
use std::fmt;
use std::net::Ipv4Addr;

/// Which way a packet flows relative to its session (RFC 2391 §2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flow {
    /// Not part of a load-shared session.
    #[default]
    None,
    /// Client → virtual server.
    Inbound,
    /// Pool member (or the VIP, in the client-side view) → client.
    Outbound,
}

/// Why the modelled router did not forward a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// A TCP packet without SYN (or with SYN+ACK) and no session bound: RFC 2391 §2.3 says only
    /// a SYN without ACK starts a session, so nothing can translate it.
    NoSession,
    /// No pool member could take a new session.
    NoMemberAvailable,
    /// The session table is full and no session could be retired.
    TableFull,
    /// TTL was 1 or 0 on arrival; a router does not forward it (RFC 1812 §5.3.1).
    TtlExceeded,
    /// The IPv4 header is malformed.
    MalformedIpv4,
    /// A later fragment whose first fragment was not seen (or whose translation expired).
    FragmentWithoutFirst,
    /// An ICMP error quoting a datagram of no known session.
    IcmpErrorWithoutSession,
}

impl DropReason {
    /// Stable kebab-case name used in reports and goldens.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::NoSession => "tcp-no-session",
            DropReason::NoMemberAvailable => "no-member-available",
            DropReason::TableFull => "table-full",
            DropReason::TtlExceeded => "ttl-exceeded",
            DropReason::MalformedIpv4 => "malformed-ipv4",
            DropReason::FragmentWithoutFirst => "fragment-without-first",
            DropReason::IcmpErrorWithoutSession => "icmp-error-no-session",
        }
    }
}

/// Why a packet went through unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PassReason {
    /// Neither to a virtual server nor from a pool member's service.
    Unrelated,
    /// To a VIP, but not a load-shared service (protocol or port not configured).
    NotAService,
    /// From a pool member but belonging to no session: a session the member started, or a
    /// reply whose session is gone. RFC 2391 §3.1 leaves outbound sessions untranslated.
    OutboundWithoutSession,
    /// Snaplen cut the packet before the ports: it cannot be matched to a session.
    Truncated,
}

impl PassReason {
    /// Stable kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            PassReason::Unrelated => "unrelated",
            PassReason::NotAService => "vip-not-a-service",
            PassReason::OutboundWithoutSession => "outbound-no-session",
            PassReason::Truncated => "truncated-headers",
        }
    }
}

/// What happened to one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Translated and forwarded.
    Translated,
    /// Not forwarded.
    Drop(DropReason),
    /// Forwarded unchanged.
    Pass(PassReason),
}

/// A packet's addressing: protocol, source and destination with their ports (ICMP query: the
/// identifier as source port, 0 as destination port; other protocols: zeros).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub struct Tuple {
    /// IP protocol.
    pub protocol: u8,
    /// Source address.
    pub src: [u8; 4],
    /// Source port / ICMP identifier.
    pub sport: u16,
    /// Destination address.
    pub dst: [u8; 4],
    /// Destination port.
    pub dport: u16,
}

impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, d) = (Ipv4Addr::from(self.src), Ipv4Addr::from(self.dst));
        match self.protocol {
            6 | 17 => write!(f, "{s}:{} > {d}:{}", self.sport, self.dport),
            1 => write!(f, "{s} > {d} id {}", self.sport),
            _ => write!(f, "{s} > {d}"),
        }
    }
}

/// Input checksum errors, as one's-complement amounts (0 = correct). A rewrite keeps each error
/// exactly (RFC 1624 updates), so the output is wrong by the same amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChecksumFaults {
    /// IPv4 header checksum error.
    pub ip: u16,
    /// Transport checksum error; `None` when not verifiable (fragment, truncated, UDP zero).
    pub l4: Option<u16>,
}

impl ChecksumFaults {
    /// Whether any checksum was wrong on input.
    pub fn any(&self) -> bool {
        self.ip != 0 || self.l4.is_some_and(|e| e != 0)
    }
}

/// The per-packet result of [`super::Engine::handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// What happened.
    pub verdict: Verdict,
    /// Packet flow relative to its session.
    pub flow: Flow,
    /// Session number (1-based binding order); 0 when none.
    pub session: u64,
    /// This packet bound a new session.
    pub bound: bool,
    /// The pool member (index into [`super::Engine::members`]) of its session.
    pub member: Option<usize>,
    /// Addressing as it arrived.
    pub before: Tuple,
    /// Addressing as forwarded.
    pub after: Tuple,
    /// IPv4 header checksum before and after.
    pub ip_checksum: [u16; 2],
    /// Transport checksum before and after, when captured.
    pub l4_checksum: Option<[u16; 2]>,
    /// TTL before and after.
    pub ttl: [u8; 2],
    /// Input checksum errors (only checked for packets the engine translates).
    pub faults: ChecksumFaults,
    /// IP total length of a translated packet (0 otherwise).
    pub ip_bytes: u16,
}

impl Outcome {
    pub(crate) fn new(verdict: Verdict) -> Outcome {
        Outcome {
            verdict,
            flow: Flow::None,
            session: 0,
            bound: false,
            member: None,
            before: Tuple::default(),
            after: Tuple::default(),
            ip_checksum: [0; 2],
            l4_checksum: None,
            ttl: [0; 2],
            faults: ChecksumFaults::default(),
            ip_bytes: 0,
        }
    }
}

/// How a session ended (RFC 2391 §2.4, §4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// Both FINs acknowledged, then the grace period passed.
    Fin,
    /// An RST, then the grace period passed.
    Rst,
    /// Idle longer than its protocol's timeout.
    IdleTimeout,
    /// Retired as the longest idle when the session table was full.
    Retired,
    /// Still bound when the capture ended.
    OpenAtEnd,
}

impl EndReason {
    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::IdleTimeout => "idle-timeout",
            EndReason::Retired => "retired",
            EndReason::OpenAtEnd => "open-at-end",
        }
    }
}

/// Everything known about a session when it is unbound: the record reports are made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// 1-based binding order.
    pub number: u64,
    /// Index of its virtual server in the configuration.
    pub virtual_server: usize,
    /// Index of its member in the pool (see [`super::Engine::members`]).
    pub member: usize,
    /// The session key (RFC 2391 §2.2) as the client sent it: client → VIP.
    pub key: Tuple,
    /// The same session as translated toward the member.
    pub translated: Tuple,
    /// First packet.
    pub first: Timestamp,
    /// Last packet.
    pub last: Timestamp,
    /// First packet from the member, if any.
    pub first_reply: Option<Timestamp>,
    /// Packets client → member.
    pub orig_packets: u64,
    /// IP bytes client → member (total-length fields).
    pub orig_bytes: u64,
    /// Packets member → client.
    pub resp_packets: u64,
    /// IP bytes member → client.
    pub resp_bytes: u64,
    /// Packets with a wrong checksum on input.
    pub checksum_faults: u64,
    /// Zeek-style history: uppercase from the client, lowercase from the member
    /// (s SYN, h SYN-ACK, a ACK, d data, f FIN, r RST, c bad checksum).
    pub history: History,
    /// How it ended.
    pub end: EndReason,
    /// When it was unbound (for timeouts: the instant the timer fired).
    pub ended_at: Timestamp,
}

/// A session-level event. `Bound` carries its fixed-size [`super::Decision`] (no allocation per
/// session); events are drained after every packet, so the queue stays a few entries long.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A session was bound to a member (RFC 2391 §4.1).
    Bound {
        /// Session number.
        number: u64,
        /// When.
        at: Timestamp,
        /// Virtual server index.
        virtual_server: usize,
        /// Member index.
        member: usize,
        /// Session key.
        key: Tuple,
        /// Why this member: the algorithm, the figures it compared, affinity.
        decision: super::decision::Decision,
    },
    /// A session was unbound (RFC 2391 §4.3).
    Ended(SessionRecord),
}

/// A short, allocation-free history string (Zeek conn.log `history`).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct History {
    letters: [u8; 16],
    len: u8,
    seen: u16,
}

impl History {
    const ORDER: &'static [u8] = b"shadfrc";

    /// Records `letter` (one of `shadfrc`) for the originator (`true`) or responder, once.
    pub fn mark(&mut self, letter: u8, originator: bool) {
        let Some(i) = Self::ORDER.iter().position(|&l| l == letter) else {
            return;
        };
        let bit = 1u16 << (i + if originator { 0 } else { 8 });
        if self.seen & bit != 0 || usize::from(self.len) >= self.letters.len() {
            return;
        }
        self.seen |= bit;
        self.letters[usize::from(self.len)] = if originator {
            letter.to_ascii_uppercase()
        } else {
            letter
        };
        self.len += 1;
    }

    /// The letters, in order of first occurrence.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.letters[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
