//! What the engine is told at start: virtual servers, their pools and algorithms, timeouts.
//! Built by [`crate::config`] from a TOML file; the engine never reads files itself.

use crate::time::Span;
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

/// A load-share algorithm's configuration name (RFC 2391 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// §5.1 (1): round-robin.
    RoundRobin,
    /// §5.1 (2): least load first, fewest sessions bound.
    LeastLoad,
}

impl Algorithm {
    /// Every configurable name.
    pub const NAMES: &'static [&'static str] = &["round-robin", "least-load"];

    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round-robin",
            Algorithm::LeastLoad => "least-load",
        }
    }

    /// Parses a configuration name.
    pub fn parse(s: &str) -> Option<Algorithm> {
        match s {
            "round-robin" | "rr" => Some(Algorithm::RoundRobin),
            "least-load" | "least-load-first" | "lc" => Some(Algorithm::LeastLoad),
            _ => None,
        }
    }
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
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: Span::from_secs(24 * 3600),
            udp: Span::from_secs(60),
            icmp: Span::from_secs(60),
            other: Span::from_secs(60),
            tcp_close_grace: Span::from_secs(2),
        }
    }
}

/// One virtual server: a VIP, a protocol, its service ports and its server pool (RFC 2391 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Input view.
    pub view: View,
    /// Decrement TTL on forwarded packets (and drop those arriving with TTL ≤ 1).
    pub ttl_decrement: bool,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Session-table limit: when full, the longest-idle session is retired (RFC 2391 §2.4).
    pub max_sessions: Option<usize>,
    /// How long the translation of a fragmented datagram is kept for its later fragments.
    pub fragment_timeout: Span,
    /// Virtual servers.
    pub virtual_servers: Vec<VirtualServerConfig>,
    /// LSNAT or LS-NAPT (router-wide).
    pub mode: Mode,
    /// The router's inside address: in LS-NAPT the source address sessions get toward the
    /// members (`None`: the VIP itself, as in RFC 2391 figure 3).
    pub inside_address: Option<Ipv4Addr>,
    /// The router's outside address: the address NAPT gives outbound sessions (§3.2).
    pub outside_address: Option<Ipv4Addr>,
    /// Further addresses owned by the router. A VIP that is one of the router's addresses (or
    /// any VIP in LS-NAPT) restricts service (§3): packets to its other ports are dropped.
    pub router_addresses: Vec<Ipv4Addr>,
    /// NAPT of inside-initiated sessions (§3.2); `None`: untranslated (§3.1).
    pub napt: Option<NaptConfig>,
    /// Static mappings of members to backups (§3, §4.1).
    pub static_mappings: Vec<StaticMapping>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            view: View::Router,
            ttl_decrement: true,
            timeouts: Timeouts::default(),
            max_sessions: None,
            fragment_timeout: Span::from_secs(30),
            virtual_servers: Vec::new(),
            mode: Mode::Lsnat,
            inside_address: None,
            outside_address: None,
            router_addresses: Vec::new(),
            napt: None,
            static_mappings: Vec::new(),
        }
    }
}
