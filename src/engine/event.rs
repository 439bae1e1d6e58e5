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
    /// The session table is full (its configured limit, or 2^30 sessions) and no session
    /// could be retired.
    TableFull,
    /// TTL was 1 or 0 on arrival; a router does not forward it (RFC 1812 §5.3.1).
    TtlExceeded,
    /// The IPv4 header is malformed.
    MalformedIpv4,
    /// A later fragment whose first fragment was not seen (or whose translation expired).
    FragmentWithoutFirst,
    /// An ICMP error quoting a datagram of no known session.
    IcmpErrorWithoutSession,
    /// A fragment held for its first fragment, which did not come within `fragment_timeout`.
    FragmentHoldTimeout,
    /// A fragment that came before its first fragment while the hold buffer was full.
    FragmentHoldFull,
    /// LS-NAPT or NAPT could not give a new session a TU port: every port of the pool for
    /// (router address, member or outside host, protocol) is held (RFC 2391 §3.3). The session
    /// is refused, never overlapped with another.
    NaptPortsExhausted,
    /// To a VIP that is the router's own address, on a port (or protocol) that is not a
    /// load-shared service: load sharing is restricted to the listed services and the router's
    /// own services are disabled on that address (RFC 2391 §3).
    ServiceRestricted,
    /// A new session's replies would arrive with the key of another live session's replies
    /// (LSNAT mode, no source translation: one client address and port to two virtual servers
    /// whose sessions land on the same member and port), so the router could not tell them
    /// apart. The new session is refused; the bound one keeps its replies.
    ReplyKeyInUse,
    /// A datagram the capture holds whole (no snapshot cut) whose first bytes of transport
    /// header stop before its checksum: a "tiny" first fragment whose header goes on in the
    /// next (RFC 1858 §3), or a datagram too short for its protocol's header. Without the
    /// ports and checksum together the router can neither key the packet nor keep its checksum
    /// right when it rewrites the addresses (it does not reassemble), so it does not forward
    /// it; its later fragments share its fate (RFC 3022 §4.1).
    TransportHeaderIncomplete,
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
            DropReason::FragmentHoldTimeout => "fragment-hold-timeout",
            DropReason::FragmentHoldFull => "fragment-hold-full",
            DropReason::NaptPortsExhausted => "napt-ports-exhausted",
            DropReason::ServiceRestricted => "router-vip-not-a-service",
            DropReason::ReplyKeyInUse => "reply-key-in-use",
            DropReason::TransportHeaderIncomplete => "transport-header-incomplete",
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
    /// A later fragment that came before its first fragment, held (hold number, 1-based). Its
    /// fate comes later as an [`Emitted`] with [`EmitKind::HeldFragment`] of the same number.
    Held(u64),
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

/// Where a TCP session stands (RFC 5382 §5 / RFC 7857 §2.1 "transitory" vs "established";
/// RFC 2391 §2.4 end of session). It chooses which idle timeout applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TcpState {
    /// SYN seen, the handshake not yet completed (member's SYN-ACK, then the client's ACK).
    #[default]
    Opening,
    /// Handshake completed, no FIN yet.
    Established,
    /// A FIN seen, not both acknowledged.
    Closing,
    /// Both FINs acknowledged: kept for the close grace.
    Closed,
    /// An RST seen: kept for the RST linger.
    Reset,
}

impl TcpState {
    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Opening => "opening",
            TcpState::Established => "established",
            TcpState::Closing => "closing",
            TcpState::Closed => "closed",
            TcpState::Reset => "reset",
        }
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
    /// For a translated TCP packet: its session's state after it.
    pub tcp_state: Option<TcpState>,
    /// IP total length of a translated packet as its member sent or received it (in the
    /// router view a reply the FTP gateway resized counts at its captured length, as the
    /// session's bytes do); 0 otherwise.
    pub ip_bytes: u16,
    /// What the FTP gateway did to it (RFC 1631 §5, RFC 3022 §4.3; see [`super::ftp`]).
    pub alg: AlgNote,
}

/// What the FTP application level gateway did to a packet of a control session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AlgNote {
    /// The command or reply it read: it rewrote its address or expects its data connection,
    /// unless `unfollowed` says why not.
    pub ftp: Option<super::ftp::FtpCommand>,
    /// Why the gateway neither rewrote `ftp` nor expects its data connection.
    pub unfollowed: Option<super::ftp::Unfollowed>,
    /// Bytes the datagram grew by (negative: shrank) when the text changed length. The
    /// datagram to forward is then [`super::Engine::resized`], not the bytes given.
    pub resized: i16,
    /// Added to its sequence number, for an earlier change of length in its direction.
    pub seq: i32,
    /// Added to its acknowledgement number (and SACK edges), for an earlier change of length
    /// in the other direction.
    pub ack: i32,
}

impl AlgNote {
    /// Whether the gateway did anything.
    pub fn any(&self) -> bool {
        *self != AlgNote::default()
    }
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
            tcp_state: None,
            ip_bytes: 0,
            alg: AlgNote::default(),
        }
    }

    /// Translated by NAPT for a session an inside host started (RFC 2391 §3.2): translated,
    /// but of no load-shared session.
    pub fn is_napt(&self) -> bool {
        self.verdict == Verdict::Translated && self.session == 0
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
    /// Retired as the longest idle when the session table was full (a live session: a closed
    /// one in its grace period retires first, and ends with its close reason).
    Retired,
    /// A FIN seen, not both acknowledged, when a new connection's SYN came on the same tuple
    /// (RFC 2391 §2.3: that SYN starts a new session).
    Reopened,
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
            EndReason::Reopened => "reopened",
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
    /// An FTP data connection: its control session's number (bound to that session's member
    /// by the FTP gateway, not by the load-share algorithm).
    pub ftp_data_of: Option<u64>,
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
        /// Member index: the member the session is bound to (after any static mapping to a
        /// backup, RFC 2391 §3), which may differ from `decision.chosen`.
        member: usize,
        /// That member's address.
        member_addr: [u8; 4],
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
    letters: [u8; 18],
    len: u8,
    seen: u32,
}

impl History {
    const ORDER: &'static [u8] = b"shadfrcqi";

    /// Records `letter` (one of `shadfrcqi`) for the originator (`true`) or responder, once.
    /// Nine letters twice fit in the 18 places.
    pub fn mark(&mut self, letter: u8, originator: bool) {
        let Some(i) = Self::ORDER.iter().position(|&l| l == letter) else {
            return;
        };
        let bit = 1u32 << (i + if originator { 0 } else { 16 });
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

/// What happened to a pool member (RFC 2391 §6 dead host detection; §3, §4.1 and RSerPool §3–4
/// pool changes). One [`PoolEvent`] per transition, with its evidence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoolEventKind {
    /// Declared dead: `unanswered` (bound at `bound_at`) got no answer in time and the member
    /// answered no newly assigned session since. `probe`: it was the retry probe.
    Dead {
        /// The session that went unanswered.
        unanswered: u64,
        /// When it was bound.
        bound_at: Timestamp,
        /// The member's last answer before, if any.
        last_answer: Option<Timestamp>,
        /// Whether the unanswered session was a retry probe.
        probe: bool,
    },
    /// The retry pause is over: the next new session will be its probe.
    ProbeDue,
    /// One new session assigned to a dead member to try it again (the algorithm is bypassed).
    Probe {
        /// The probe session.
        session: u64,
    },
    /// Declared alive again: it answered after the probe was assigned.
    Alive {
        /// The probe session.
        probe: u64,
        /// The session whose answer revived it (0: a session of the recorded router that lsnat
        /// had bound elsewhere).
        answered: u64,
    },
    /// The probe's answer came from another member (the recorded router chose that one): no
    /// evidence either way; the next new session probes again.
    ProbeInconclusive {
        /// The probe session.
        probe: u64,
        /// The member that answered it.
        answered_by: Ipv4Addr,
    },
    /// A session lsnat bound to this member was answered by another member in the capture:
    /// evidence against the recorded router's choice, not against this member.
    RecordedChoiceDiffers {
        /// The session.
        session: u64,
        /// The member that answered it in the capture.
        answered_by: Ipv4Addr,
    },
    /// Added to a virtual server's pool (timeline).
    Added {
        /// Virtual server index.
        virtual_server: usize,
    },
    /// Draining (timeline): `sessions` are still bound and continue.
    Draining,
    /// The last session of a draining member ended.
    Drained,
    /// Removed (timeline): `sessions` are still bound; they are not moved (RFC 2391 §2.5).
    Removed,
    /// A session still bound to its member when the member was removed has ended.
    RemovedSessionEnded {
        /// The session.
        session: u64,
        /// Its packets after the removal: [client → member, member → client].
        packets_after: [u64; 2],
    },
    /// Weight changed (timeline).
    Weight {
        /// Before.
        from: u32,
        /// After.
        to: u32,
    },
    /// Cost changed (timeline).
    Cost {
        /// Before.
        from: f64,
        /// After.
        to: f64,
    },
    /// New sessions chosen for it go to `backup` (timeline); bound sessions stay.
    Remapped {
        /// The backup.
        backup: Ipv4Addr,
    },
}

/// A pool member's transition, with its timestamp and evidence.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolEvent {
    /// When (capture time).
    pub at: Timestamp,
    /// The member.
    pub member: Ipv4Addr,
    /// What happened.
    pub kind: PoolEventKind,
    /// The sessions concerned, in ascending order: for `dead`, those bound to it since its last
    /// answer (sent to it before it was found dead); for `draining` and `removed`, those still
    /// bound; for `probe`, `probe-inconclusive`, `recorded-choice-differs` and
    /// `removed-session-ended`, the session the event is about; for `alive`, the probe and the
    /// session whose answer revived it (when another). Empty for the others.
    pub sessions: Vec<u64>,
}

impl PoolEventKind {
    /// Stable kebab-case name.
    pub fn name(&self) -> &'static str {
        match self {
            PoolEventKind::Dead { .. } => "dead",
            PoolEventKind::ProbeDue => "probe-due",
            PoolEventKind::Probe { .. } => "probe",
            PoolEventKind::Alive { .. } => "alive",
            PoolEventKind::ProbeInconclusive { .. } => "probe-inconclusive",
            PoolEventKind::RecordedChoiceDiffers { .. } => "recorded-choice-differs",
            PoolEventKind::Added { .. } => "added",
            PoolEventKind::Draining => "draining",
            PoolEventKind::Drained => "drained",
            PoolEventKind::Removed => "removed",
            PoolEventKind::RemovedSessionEnded { .. } => "removed-session-ended",
            PoolEventKind::Weight { .. } => "weight",
            PoolEventKind::Cost { .. } => "cost",
            PoolEventKind::Remapped { .. } => "remapped",
        }
    }
}

impl PoolEvent {
    /// The evidence in words; `time` renders a timestamp (relative or absolute, the report
    /// chooses), `vs` names a virtual server.
    pub fn evidence(
        &self,
        time: &dyn Fn(Timestamp) -> String,
        vs: &dyn Fn(usize) -> String,
    ) -> String {
        match self.kind {
            PoolEventKind::Dead {
                unanswered,
                bound_at,
                last_answer,
                probe,
            } => format!(
                "{} s{unanswered} bound at {} not answered by {}; last answer {}",
                if probe { "probe" } else { "session" },
                time(bound_at),
                time(self.at),
                last_answer.map_or("never".into(), time)
            ),
            PoolEventKind::ProbeDue => "retry pause over".into(),
            PoolEventKind::Probe { session } => {
                format!("s{session} assigned to it without consulting the algorithm")
            }
            PoolEventKind::Alive { probe, answered } => match answered {
                0 => {
                    format!("answered a session the recorded router gave it, after probe s{probe}")
                }
                a if a == probe => format!("probe s{probe} answered"),
                a => format!("s{a} answered after probe s{probe}"),
            },
            PoolEventKind::ProbeInconclusive { probe, answered_by } => {
                format!("probe s{probe} was answered by {answered_by} (the recorded choice)")
            }
            PoolEventKind::RecordedChoiceDiffers {
                session,
                answered_by,
            } => format!(
                "s{session} answered by {answered_by} in the capture: evidence against the recorded choice, not this member"
            ),
            PoolEventKind::Added { virtual_server } => format!("to {}", vs(virtual_server)),
            PoolEventKind::Draining => "no new sessions; bound sessions continue".into(),
            PoolEventKind::Drained => "last bound session ended".into(),
            PoolEventKind::Removed => "no new sessions; bound sessions are not moved".into(),
            PoolEventKind::RemovedSessionEnded {
                session,
                packets_after,
            } => format!(
                "s{session} ended; {} packets to it and {} from it after the removal",
                packets_after[0], packets_after[1]
            ),
            PoolEventKind::Weight { from, to } => format!("weight {from} -> {to}"),
            PoolEventKind::Cost { from, to } => format!("cost {from} -> {to}"),
            PoolEventKind::Remapped { backup } => format!("new sessions go to {backup}"),
        }
    }
}

/// What a packet the engine emits on its own (not the packet just handled) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitKind {
    /// The fate of fragment `hold` (see [`Verdict::Held`]): released with its first fragment
    /// (translated or passed: the bytes are the datagram to forward) or dropped (no bytes:
    /// timeout, end of the replay, or the first fragment was dropped).
    HeldFragment {
        /// Hold number.
        hold: u64,
        /// Its outcome, as if it had just been handled.
        outcome: Outcome,
    },
    /// An ICMP time exceeded (type 11 code 0) the modelled router sends in answer to the packet
    /// just handled, which arrived with TTL ≤ 1 (RFC 792, RFC 1812 §4.3.2.3, §5.3.1).
    IcmpTimeExceeded {
        /// Its addressing: router address → the dropped packet's source.
        tuple: Tuple,
        /// The session of the dropped packet, 0 when none.
        session: u64,
    },
}

/// A packet the engine emits: what it is, and its IPv4 datagram (valid until the engine is
/// called again). Drain with [`super::Engine::poll_emitted`] after every call that passes time.
#[derive(Clone, Copy, Debug)]
pub struct Emitted<'a> {
    /// What it is.
    pub kind: EmitKind,
    /// The IPv4 datagram to send (empty for a dropped held fragment).
    pub bytes: &'a [u8],
}
