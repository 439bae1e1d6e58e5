//! Link-layer demultiplexing: where the IPv4 header starts in a captured frame.
//!
//! Ethernet II (with 802.1Q / 802.1ad / QinQ tags), Linux cooked SLL and SLL2 (whose packet type
//! says whether the capturing host received or sent the frame), raw IPv4 (101, 228) and BSD
//! null/loopback (0, 108). Anything else is refused by [`check_supported`].
//!
//! (to be written)

use crate::capture::{CaptureDirection, LinkType};
use std::fmt;

/// What the link layer carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// An IPv4 packet starting at this byte offset of the frame.
    Ipv4 {
        /// Offset of the IPv4 header.
        offset: usize,
    },
    /// Not IPv4: passed through unchanged and counted.
    NotIpv4(NotIpv4),
    /// The frame is too short to hold its own link header.
    Truncated,
}

/// Kinds of non-IPv4 payload, for the pass-through counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotIpv4 {
    /// ARP.
    Arp,
    /// IPv6.
    Ipv6,
    /// Another EtherType / protocol number.
    Other(u16),
}

impl fmt::Display for NotIpv4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotIpv4::Arp => f.write_str("arp"),
            NotIpv4::Ipv6 => f.write_str("ipv6"),
            NotIpv4::Other(t) => write!(f, "ethertype-0x{t:04x}"),
        }
    }
}

/// A frame's link-layer reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkView {
    /// What it carries.
    pub payload: Payload,
    /// Direction from the SLL/SLL2 packet type (Outbound for type 4, "sent by us").
    pub direction: CaptureDirection,
}

/// `Err(message)` naming the link type when it is not one this tool reads.
pub fn check_supported(linktype: LinkType) -> Result<(), String> {
    let _ = linktype;
    Ok(())
}

/// Reads the link header of `frame`.
pub fn locate(linktype: LinkType, frame: &[u8]) -> LinkView {
    let _ = (linktype, frame);
    LinkView {
        payload: Payload::Truncated,
        direction: CaptureDirection::Unknown,
    }
}
