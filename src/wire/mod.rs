//! Packet views over captured bytes: read IPv4 / TCP / UDP / ICMP fields and rewrite them in
//! place with incremental checksum updates (RFC 1624). etherparse parses; it cannot mutate a
//! slice or update a checksum, so this small layer does (see `../shared/reference/rust.md`).

pub mod checksum;
pub mod ipv4;
pub mod tcp;

pub use ipv4::{Ipv4, L4};

/// IP protocol numbers the engine knows by name.
pub mod proto {
    /// ICMP (RFC 792).
    pub const ICMP: u8 = 1;
    /// TCP (RFC 793).
    pub const TCP: u8 = 6;
    /// UDP (RFC 768).
    pub const UDP: u8 = 17;
    /// GRE.
    pub const GRE: u8 = 47;
    /// ESP.
    pub const ESP: u8 = 50;

    /// A short name for a protocol number (`tcp`, `udp`, `icmp`, `gre`, `esp`, else the number).
    pub fn name(p: u8) -> std::borrow::Cow<'static, str> {
        match p {
            ICMP => "icmp".into(),
            TCP => "tcp".into(),
            UDP => "udp".into(),
            GRE => "gre".into(),
            ESP => "esp".into(),
            50.. | 0..=49 => format!("ip-proto-{p}").into(),
        }
    }

    /// Parses a protocol name or number.
    pub fn parse(s: &str) -> Option<u8> {
        match s.to_ascii_lowercase().as_str() {
            "icmp" => Some(ICMP),
            "tcp" => Some(TCP),
            "udp" => Some(UDP),
            "gre" => Some(GRE),
            "esp" => Some(ESP),
            "ah" => Some(51),
            "sctp" => Some(132),
            other => other
                .strip_prefix("ip-proto-")
                .unwrap_or(other)
                .parse()
                .ok(),
        }
    }
}

/// TCP flag bits.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// ICMP message types the engine distinguishes (RFC 792).
pub mod icmp_type {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACH: u8 = 3;
    /// Source quench.
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
    /// Timestamp request.
    pub const TIMESTAMP: u8 = 13;
    /// Timestamp reply.
    pub const TIMESTAMP_REPLY: u8 = 14;
    /// Information request.
    pub const INFO_REQUEST: u8 = 15;
    /// Information reply.
    pub const INFO_REPLY: u8 = 16;
    /// Address mask request.
    pub const MASK_REQUEST: u8 = 17;
    /// Address mask reply.
    pub const MASK_REPLY: u8 = 18;

    /// A query (carries an identifier that pairs request and reply, RFC 2391 §2.2).
    pub fn is_query(t: u8) -> bool {
        matches!(t, ECHO_REQUEST | TIMESTAMP | INFO_REQUEST | MASK_REQUEST)
    }
    /// A reply to a query.
    pub fn is_query_reply(t: u8) -> bool {
        matches!(t, ECHO_REPLY | TIMESTAMP_REPLY | INFO_REPLY | MASK_REPLY)
    }
    /// An error message quoting the datagram that caused it (RFC 3022 §4.3).
    pub fn is_error(t: u8) -> bool {
        matches!(
            t,
            DEST_UNREACH | SOURCE_QUENCH | TIME_EXCEEDED | PARAM_PROBLEM
        )
    }
}
