//! What the engine is told at start: virtual servers, their pools and algorithms, timeouts.
//! Built by [`crate::config`] from a TOML file; the engine never reads files itself.

use super::event::{EndReason, TcpState};
use crate::time::{Span, Timestamp};
use crate::wire::proto;
use std::net::Ipv4Addr;

/// How the capture relates to the modelled router.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum View {
    /// The capture holds what arrives at the router from both sides: client → VIP and
    /// member → client (a capture on the router's interfaces, or a merge of two captures).
    #[default]
    Router,
    /// The capture was taken on the client side only (client ↔ VIP); replies from the VIP are
    /// attributed to the member the session is bound to, so the output shows what each member
    /// would have seen.
    ClientSide,
}

/// A load-share algorithm's configuration name (RFC 2391 §5). Each is one file in
/// [`super::load_share`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// §5.1 (1): round-robin.
    RoundRobin,
    /// §5.1 (2): least load first, fewest sessions bound.
    LeastLoad,
    /// §5.1 (3): least traffic first over a sliding window of capture time.
    LeastTraffic,
    /// §5.1 (4): least weighted load first: Σ session weights ÷ member weight.
    LeastWeightedLoad,
    /// §5.1 (5): most responsive member (smoothed first-reply time).
    MostResponsive,
    /// §5.1 active category: member-reported capacity.
    ReportedCapacity,
    /// §5.2 (1): weighted least load by access cost: cost × bound sessions.
    CostLeastLoad,
    /// §5.2 (2): weighted least traffic by access cost: cost × traffic over the window.
    CostLeastTraffic,
    /// Smooth weighted round-robin (nginx, IPVS `wrr`).
    WeightedRoundRobin,
    /// Source-address hash modulo the candidates (IPVS `sh`).
    SourceHash,
    /// Maglev consistent hashing (Eisenbud et al., NSDI 2016).
    Maglev,
}

impl Algorithm {
    /// Every configurable name.
    pub const NAMES: &'static [&'static str] = &[
        "round-robin",
        "least-load",
        "least-traffic",
        "least-weighted-load",
        "most-responsive",
        "reported-capacity",
        "cost-least-load",
        "cost-least-traffic",
        "weighted-round-robin",
        "source-hash",
        "maglev",
    ];

    /// Every algorithm, in [`Algorithm::NAMES`] order.
    pub const ALL: &'static [Algorithm] = &[
        Algorithm::RoundRobin,
        Algorithm::LeastLoad,
        Algorithm::LeastTraffic,
        Algorithm::LeastWeightedLoad,
        Algorithm::MostResponsive,
        Algorithm::ReportedCapacity,
        Algorithm::CostLeastLoad,
        Algorithm::CostLeastTraffic,
        Algorithm::WeightedRoundRobin,
        Algorithm::SourceHash,
        Algorithm::Maglev,
    ];

    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round-robin",
            Algorithm::LeastLoad => "least-load",
            Algorithm::LeastTraffic => "least-traffic",
            Algorithm::LeastWeightedLoad => "least-weighted-load",
            Algorithm::MostResponsive => "most-responsive",
            Algorithm::ReportedCapacity => "reported-capacity",
            Algorithm::CostLeastLoad => "cost-least-load",
            Algorithm::CostLeastTraffic => "cost-least-traffic",
            Algorithm::WeightedRoundRobin => "weighted-round-robin",
            Algorithm::SourceHash => "source-hash",
            Algorithm::Maglev => "maglev",
        }
    }

    /// What the algorithm compares (the figure in each decision), for reports.
    pub fn figure(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "turns until chosen",
            Algorithm::LeastLoad => "sessions bound",
            Algorithm::LeastTraffic => "traffic over the window",
            Algorithm::LeastWeightedLoad => "session weights / member weight",
            Algorithm::MostResponsive => "smoothed response time, ms",
            Algorithm::ReportedCapacity => "sessions bound / reported capacity",
            Algorithm::CostLeastLoad => "cost x sessions bound",
            Algorithm::CostLeastTraffic => "cost x traffic over the window",
            Algorithm::WeightedRoundRobin => "smooth weighted round-robin credit",
            Algorithm::SourceHash => "hash of the key modulo candidates",
            Algorithm::Maglev => "maglev table slot of the key",
        }
    }

    /// Parses a configuration name (or a common short name).
    pub fn parse(s: &str) -> Option<Algorithm> {
        match s {
            "round-robin" | "rr" => Some(Algorithm::RoundRobin),
            "least-load" | "least-load-first" | "lc" => Some(Algorithm::LeastLoad),
            "least-traffic" | "least-traffic-first" => Some(Algorithm::LeastTraffic),
            "least-weighted-load" | "least-weighted-load-first" | "wlc" => {
                Some(Algorithm::LeastWeightedLoad)
            }
            "most-responsive" => Some(Algorithm::MostResponsive),
            "reported-capacity" => Some(Algorithm::ReportedCapacity),
            "cost-least-load" => Some(Algorithm::CostLeastLoad),
            "cost-least-traffic" => Some(Algorithm::CostLeastTraffic),
            "weighted-round-robin" | "wrr" => Some(Algorithm::WeightedRoundRobin),
            "source-hash" | "sh" => Some(Algorithm::SourceHash),
            "maglev" | "mh" => Some(Algorithm::Maglev),
            _ => None,
        }
    }
}

/// What "traffic" counts for the traffic algorithms (RFC 2391 §5.1 (3): "packet count or byte
/// count directed from or to each of the member hosts").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrafficMeasure {
    /// IP bytes (total-length fields), both directions.
    #[default]
    Bytes,
    /// Packets, both directions.
    Packets,
}

/// What the hashing algorithms hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashKey {
    /// The client address.
    Source,
    /// The whole session key: protocol, client address and port, VIP, service port.
    Session,
}

/// Per-virtual-server algorithm parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct AlgorithmParams {
    /// Packets or bytes, for the traffic algorithms.
    pub traffic: TrafficMeasure,
    /// What the hashing algorithms hash (default: source for source-hash, session for maglev).
    pub hash_key: Option<HashKey>,
}

impl Default for AlgorithmParams {
    fn default() -> Self {
        AlgorithmParams {
            traffic: TrafficMeasure::Bytes,
            hash_key: None,
        }
    }
}

/// Client affinity (RSerPool requirements §5): a client (address masked to `prefix` bits) goes
/// back to the member it used last while that member can take it, until `timeout` of capture
/// time has passed since its last session was bound or ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AffinityConfig {
    /// Prefix length the client address is masked to (32: one address).
    pub prefix: u8,
    /// How long affinity lasts after the client's last session.
    #[serde(serialize_with = "span_secs")]
    pub timeout: Span,
}

fn span_secs<S: serde::Serializer>(s: &Span, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_f64(s.as_secs_f64())
}

/// A pool member's settings (RFC 2391 §5.1 (4) member weight, §5.2 access cost). A member in
/// several virtual servers is one member: one weight, one cost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemberSettings {
    /// The member.
    pub addr: Ipv4Addr,
    /// Relative resourcefulness (default 1; 0 takes no new sessions under weighted algorithms).
    pub weight: u32,
    /// Access cost (default 1.0; infinity: unreachable, never chosen).
    pub cost: f64,
}

/// Load measurements the pool keeps for every member, shared by all virtual servers.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct LoadTracking {
    /// Length of the sliding traffic window (RFC 2391 §5.1 (3) "over a period of time").
    #[serde(serialize_with = "span_secs")]
    pub window: Span,
    /// EWMA smoothing factor of response times: new = α·sample + (1−α)·old.
    pub smoothing: f64,
}

impl Default for LoadTracking {
    fn default() -> Self {
        LoadTracking {
            window: Span::from_secs(10),
            smoothing: 0.3,
        }
    }
}

/// One member-reported capacity (RFC 2391 §5.1, active category), applied when capture time
/// reaches `at`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CapacityReport {
    /// When the report arrives.
    pub at: crate::time::Timestamp,
    /// The reporting member.
    pub member: Ipv4Addr,
    /// Its spare capacity (0 = full, takes no new sessions; larger = more room).
    pub capacity: f64,
}

/// Idle timeouts and the TCP close grace (RFC 2391 §2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP sessions idle this long are unbound (RFC 2391: "say, 24 hours").
    pub tcp: Span,
    /// UDP sessions (RFC 2391: non-TCP "say, 1 minute").
    pub udp: Span,
    /// ICMP query sessions.
    pub icmp: Span,
    /// Other protocols.
    pub other: Span,
    /// How long a TCP session is kept after both FINs are acknowledged or an RST
    /// (RFC 2391: "a couple of seconds").
    pub tcp_close_grace: Span,
    /// Idle timeout of a TCP session still opening (SYN seen, handshake not completed);
    /// `None`: the TCP timeout (RFC 2391 has one TCP idle timeout). RFC 5382 REQ-5 / RFC 7857
    /// §2.1 call it transitory (≥ 4 min).
    pub tcp_opening: Option<Span>,
    /// Idle timeout of a TCP session closing (a FIN seen, not both acknowledged); `None`: the
    /// TCP timeout.
    pub tcp_closing: Option<Span>,
    /// How long a TCP session is kept after an RST; `None`: `tcp_close_grace`. RFC 7857 §2.1
    /// says 4 min.
    pub tcp_rst: Option<Span>,
}

impl Timeouts {
    /// The idle timeout of a TCP session in the opening state.
    pub fn opening(&self) -> Span {
        self.tcp_opening.unwrap_or(self.tcp)
    }
    /// The idle timeout of a TCP session in the closing state.
    pub fn closing(&self) -> Span {
        self.tcp_closing.unwrap_or(self.tcp)
    }
    /// How long a TCP session is kept after an RST.
    pub fn rst(&self) -> Span {
        self.tcp_rst.unwrap_or(self.tcp_close_grace)
    }

    /// The idle timeout of a session of `protocol` in TCP state `state` (RFC 5382 §5, RFC 7857
    /// §2.1: opening, established, closing; the state counts for TCP only).
    pub fn idle(&self, protocol: u8, state: TcpState) -> Span {
        match protocol {
            proto::TCP => match state {
                TcpState::Opening => self.opening(),
                TcpState::Closing => self.closing(),
                _ => self.tcp,
            },
            proto::UDP => self.udp,
            proto::ICMP => self.icmp,
            _ => self.other,
        }
    }

    /// When a session of `protocol` in TCP state `state`, last seen at `last`, is due to end,
    /// and why: `tcp_rst` after an RST, `tcp_close_grace` after both FINs were acknowledged
    /// (`closed`: when, and which), else its idle timeout (RFC 2391 §2.4, §4.3). Load-shared
    /// and NAPT sessions end alike.
    pub fn deadline(
        &self,
        protocol: u8,
        state: TcpState,
        last: Timestamp,
        closed: Option<(Timestamp, EndReason)>,
    ) -> (Timestamp, EndReason) {
        match closed {
            Some((at, EndReason::Rst)) => (at.add(self.rst()), EndReason::Rst),
            Some((at, reason)) => (at.add(self.tcp_close_grace), reason),
            None => (last.add(self.idle(protocol, state)), EndReason::IdleTimeout),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: Span::from_secs(24 * 3600),
            udp: Span::from_secs(60),
            icmp: Span::from_secs(60),
            other: Span::from_secs(60),
            tcp_close_grace: Span::from_secs(2),
            tcp_opening: None,
            tcp_closing: None,
            tcp_rst: None,
        }
    }
}

/// One virtual server: a VIP, a protocol, its service ports and its server pool (RFC 2391 §3).
#[derive(Clone, Debug, PartialEq)]
pub struct VirtualServerConfig {
    /// Name, for reports.
    pub name: String,
    /// Virtual server address.
    pub vip: Ipv4Addr,
    /// IP protocol number.
    pub protocol: u8,
    /// TU service ports (TCP/UDP); empty means none for TCP/UDP and is ignored for others.
    pub ports: Vec<u16>,
    /// Load-share algorithm.
    pub algorithm: Algorithm,
    /// Pool members, in configured order (the deterministic tie-break order).
    pub members: Vec<Ipv4Addr>,
    /// The weight of one session of this service (RFC 2391 §5.1 (4): "FTP 5, telnet 1").
    pub session_weight: u32,
    /// Algorithm parameters.
    pub params: AlgorithmParams,
    /// Client affinity, if on.
    pub affinity: Option<AffinityConfig>,
}

impl Default for VirtualServerConfig {
    fn default() -> Self {
        VirtualServerConfig {
            name: String::new(),
            vip: Ipv4Addr::UNSPECIFIED,
            protocol: 0,
            ports: Vec::new(),
            algorithm: Algorithm::RoundRobin,
            members: Vec::new(),
            session_weight: 1,
            params: AlgorithmParams::default(),
            affinity: None,
        }
    }
}

/// Dead host detection (RFC 2391 §6): see [`super::dead_host`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadHostConfig {
    /// Off by default: a replay then binds exactly as before.
    pub enabled: bool,
    /// A member that does not answer a newly assigned session within this is declared dead
    /// (RFC 2391: "If no response is detected in a few seconds").
    pub answer_within: Span,
    /// After this pause a dead member is tried again with one new session (RFC 2391: "after a
    /// long pause (say, in the order of a few minutes)").
    pub retry_after: Span,
}

impl Default for DeadHostConfig {
    fn default() -> Self {
        DeadHostConfig {
            enabled: false,
            answer_within: Span::from_secs(3),
            retry_after: Span::from_secs(180),
        }
    }
}

/// The router's mode (RFC 2391 §3.1–3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// LSNAT (§3.1, §3.2): only the destination (VIP → member) of inbound sessions changes.
    #[default]
    Lsnat,
    /// LS-NAPT (§3.3): the VIP is the router's own address; besides the destination, the
    /// client's address and TU port are replaced by the router's address and a TU port it
    /// allocates. Only TCP, UDP and ICMP query sessions can be load-shared.
    LsNapt,
}

impl Mode {
    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Lsnat => "lsnat",
            Mode::LsNapt => "ls-napt",
        }
    }
}

/// When a timeline entry applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimelineAt {
    /// At this capture timestamp.
    Absolute(Timestamp),
    /// This long after the capture's first packet.
    Relative(Span),
}

/// What a timeline entry does to a member (RFC 2391 §3, §4.1; RSerPool §3–4).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimelineAction {
    /// Add the member to a virtual server's pool (index into `virtual_servers`); a draining
    /// or removed member added again becomes active.
    Add {
        /// The virtual server.
        virtual_server: usize,
    },
    /// No new sessions; bound sessions continue to their end.
    Drain,
    /// Out of the pool: no new sessions; bound sessions are not moved (RFC 2391 §2.5).
    Remove,
    /// Set its weight.
    Weight(u32),
    /// Set its cost.
    Cost(f64),
    /// New sessions chosen for it go to `backup` instead (static remap); bound sessions stay.
    Remap {
        /// The backup member.
        backup: Ipv4Addr,
    },
}

/// One timeline entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimelineEntry {
    /// When.
    pub at: TimelineAt,
    /// Which member.
    pub member: Ipv4Addr,
    /// What.
    pub action: TimelineAction,
}

/// NAPT of sessions that inside hosts start toward the outside (RFC 2391 §3.2, RFC 3022 §2.2).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NaptConfig {
    /// The inside networks (address, prefix length) whose outbound sessions are translated.
    pub inside: Vec<(Ipv4Addr, u8)>,
}

/// A static mapping of a member (or one TU service port of it) to a backup (RFC 2391 §3,
/// §4.1): new sessions bound to `member` (on `port`) go to `backup` (on `backup_port`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticMapping {
    /// The member being replaced.
    pub member: Ipv4Addr,
    /// Only sessions to this service port (TCP/UDP); `None`: every session.
    pub port: Option<u16>,
    /// The backup.
    pub backup: Ipv4Addr,
    /// The backup's port for that service; `None`: the same port.
    pub backup_port: Option<u16>,
}

/// The engine's whole configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// Input view.
    pub view: View,
    /// Decrement TTL on forwarded packets (and drop those arriving with TTL ≤ 1).
    pub ttl_decrement: bool,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Session-table limit: when full, the longest-idle session is retired (RFC 2391 §2.4).
    pub max_sessions: Option<usize>,
    /// How long the translation of a fragmented datagram is kept for its later fragments, and
    /// how long a later fragment that came first waits for its first fragment.
    pub fragment_timeout: Span,
    /// Most later fragments held at once while waiting for their first fragment (0: none are
    /// held; they are dropped as `fragment-without-first`).
    pub fragment_hold_max: usize,
    /// Most bytes of such fragments held at once.
    pub fragment_hold_bytes: usize,
    /// Answer a packet dropped for TTL ≤ 1 with an ICMP time exceeded (RFC 1812 §4.3.2.3).
    pub icmp_time_exceeded: bool,
    /// TCP service ports whose sessions are FTP control connections, followed by the FTP
    /// gateway (RFC 1631 §5, RFC 3022 §4.3; [`super::ftp`]). Default: 21.
    pub ftp_ports: Vec<u16>,
    /// Virtual servers.
    pub virtual_servers: Vec<VirtualServerConfig>,
    /// Dead host detection (RFC 2391 §6).
    pub dead_host: DeadHostConfig,
    /// Pool changes during the replay, in configuration order (applied in time order).
    pub timeline: Vec<TimelineEntry>,
    /// LSNAT or LS-NAPT (router-wide).
    pub mode: Mode,
    /// The router's inside address: in LS-NAPT the source address sessions get toward the
    /// members (`None`: the VIP itself, as in RFC 2391 figure 3); the source of the ICMP errors
    /// it sends toward members (`None`: `outside_address`; with neither, none is sent).
    pub inside_address: Option<Ipv4Addr>,
    /// The router's outside address: the address NAPT gives outbound sessions (§3.2), and the
    /// source of the ICMP errors it sends toward clients (`None`: the VIP the client sent to).
    pub outside_address: Option<Ipv4Addr>,
    /// Further addresses owned by the router. A VIP that is one of the router's addresses (or
    /// any VIP in LS-NAPT) restricts service (§3): packets to its other ports are dropped.
    pub router_addresses: Vec<Ipv4Addr>,
    /// NAPT of inside-initiated sessions (§3.2); `None`: untranslated (§3.1).
    pub napt: Option<NaptConfig>,
    /// Static mappings of members to backups (§3, §4.1).
    pub static_mappings: Vec<StaticMapping>,
    /// Member weights and costs different from the defaults (weight 1, cost 1).
    pub member_settings: Vec<MemberSettings>,
    /// Traffic window and response-time smoothing.
    pub load_tracking: LoadTracking,
    /// Member-reported capacities, in arrival order (parsed from files by [`crate::capacity`]).
    pub capacity_reports: Vec<CapacityReport>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            view: View::Router,
            ttl_decrement: true,
            timeouts: Timeouts::default(),
            max_sessions: None,
            fragment_timeout: Span::from_secs(30),
            fragment_hold_max: 64,
            fragment_hold_bytes: 256 * 1024,
            icmp_time_exceeded: false,
            ftp_ports: vec![21],
            virtual_servers: Vec::new(),
            dead_host: DeadHostConfig::default(),
            timeline: Vec::new(),
            mode: Mode::Lsnat,
            inside_address: None,
            outside_address: None,
            router_addresses: Vec::new(),
            napt: None,
            static_mappings: Vec::new(),
            member_settings: Vec::new(),
            load_tracking: LoadTracking::default(),
            capacity_reports: Vec::new(),
        }
    }
}
