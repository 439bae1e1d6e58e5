//! Link-layer demultiplexing: where the IPv4 header starts in a captured frame.
//!
//! Ethernet II (with any number of 802.1Q / 802.1ad / QinQ tags), Linux cooked SLL and SLL2
//! (whose packet type says whether the capturing host received or sent the frame), raw IP (12,
//! 14, 101, 228) and BSD null/loopback (0, 108). Anything else is refused by
//! [`check_supported`].
//!
//! Headers are read by hand from the frame bytes: a few bounds-checked loads, no allocation.
//! Ethernet frames that end with their FCS (the capture says so) have it recomputed here when
//! their bytes change ([`fcs_error`], [`set_fcs`], [`push_fcs`]).

use crate::capture::{CaptureDirection, LinkType};
use etherparse::EtherType;
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
    /// An IEEE 802.3 frame, whose type field is a length (1500 or less): LLC (IS-IS, STP, ...).
    Llc,
    /// Another EtherType (Ethernet, VLAN) or protocol number (Linux cooked SLL/SLL2).
    EtherType(u16),
    /// A BSD null/loopback frame of another address family.
    AddressFamily(u32),
    /// A raw IP datagram of another IP version (neither 4 nor 6).
    IpVersion(u8),
    /// A frame of a link type this tool does not read.
    UnsupportedLink,
}

impl fmt::Display for NotIpv4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotIpv4::Arp => f.write_str("arp"),
            NotIpv4::Ipv6 => f.write_str("ipv6"),
            NotIpv4::Llc => f.write_str("llc"),
            NotIpv4::EtherType(t) => write!(f, "ethertype-0x{t:04x}"),
            NotIpv4::AddressFamily(af) => write!(f, "address-family-{af}"),
            NotIpv4::IpVersion(v) => write!(f, "ip-version-{v}"),
            NotIpv4::UnsupportedLink => f.write_str("unsupported-link"),
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

/// `DLT_RAW` as BSD (12) and OpenBSD (14) wrote it into old pcap files.
const RAW_BSD: LinkType = LinkType(12);
const RAW_OPENBSD: LinkType = LinkType(14);

/// The link types [`locate`] reads, for messages.
const SUPPORTED: &str = "0 (NULL), 1 (ETHERNET), 12/14/101 (RAW), 108 (LOOP), 113 (LINUX_SLL), 228 (IPV4), 276 (LINUX_SLL2)";

/// `Err(message)` naming the link type when it is not one this tool reads.
pub fn check_supported(linktype: LinkType) -> Result<(), String> {
    match linktype {
        LinkType::NULL
        | LinkType::ETHERNET
        | RAW_BSD
        | RAW_OPENBSD
        | LinkType::RAW
        | LinkType::LOOP
        | LinkType::LINUX_SLL
        | LinkType::IPV4
        | LinkType::LINUX_SLL2 => Ok(()),
        LinkType(n) => {
            let name = linktype_name(n)
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            Err(format!(
                "unsupported link type {n}{name}; supported: {SUPPORTED}"
            ))
        }
    }
}

/// The tcpdump.org name of some common link types.
fn linktype_name(n: u32) -> Option<&'static str> {
    Some(match n {
        3 => "AX25",
        6 => "IEEE802_5",
        7 => "ARCNET_BSD",
        8 => "SLIP",
        9 => "PPP",
        10 => "FDDI",
        50 => "PPP_HDLC",
        51 => "PPP_ETHER",
        104 => "C_HDLC",
        105 => "IEEE802_11",
        107 => "FRELAY",
        119 => "IEEE802_11_PRISM",
        127 => "IEEE802_11_RADIOTAP",
        129 => "ARCNET_LINUX",
        138 => "APPLE_IP_OVER_IEEE1394",
        139 => "MTP2_WITH_PHDR",
        143 => "DOCSIS",
        147..=162 => "USER",
        163 => "IEEE802_11_AVS",
        187 => "BLUETOOTH_HCI_H4",
        189 => "USB_LINUX",
        192 => "PPI",
        195 => "IEEE802_15_4_WITHFCS",
        201 => "BLUETOOTH_HCI_H4_WITH_PHDR",
        215 => "IEEE802_15_4_NONASK_PHY",
        220 => "USB_LINUX_MMAPPED",
        227 => "CAN_SOCKETCAN",
        229 => "IPV6",
        239 => "NFLOG",
        249 => "USBPCAP",
        252 => "WIRESHARK_UPPER_PDU",
        _ => return None,
    })
}

/// Reads the link header of `frame`.
pub fn locate(linktype: LinkType, frame: &[u8]) -> LinkView {
    let mut direction = CaptureDirection::Unknown;
    let payload = match linktype {
        LinkType::ETHERNET => match be16(frame, 12) {
            Some(ethertype) => ether_payload(frame, ethertype, 14, true),
            None => Payload::Truncated,
        },
        LinkType::LINUX_SLL => match (be16(frame, 0), be16(frame, 14)) {
            (Some(packet_type), Some(protocol)) => {
                direction = sll_direction(packet_type);
                ether_payload(frame, protocol, 16, false)
            }
            _ => Payload::Truncated,
        },
        LinkType::LINUX_SLL2 => match (be16(frame, 0), frame.get(10)) {
            (Some(protocol), Some(&packet_type)) if frame.len() >= 20 => {
                direction = sll_direction(u16::from(packet_type));
                ether_payload(frame, protocol, 20, false)
            }
            _ => Payload::Truncated,
        },
        LinkType::RAW | LinkType::IPV4 | RAW_BSD | RAW_OPENBSD => match frame.first() {
            None => Payload::Truncated,
            Some(b) if b >> 4 == 4 => Payload::Ipv4 { offset: 0 },
            Some(b) if b >> 4 == 6 => Payload::NotIpv4(NotIpv4::Ipv6),
            Some(b) => Payload::NotIpv4(NotIpv4::IpVersion(b >> 4)),
        },
        LinkType::NULL => match frame.get(..4) {
            // Host byte order of the capturing machine: accept both.
            Some(&[a, b, c, d]) => {
                let (le, be) = (
                    u32::from_le_bytes([a, b, c, d]),
                    u32::from_be_bytes([a, b, c, d]),
                );
                let family = if le <= 0xffff { le } else { be };
                address_family(if le == AF_INET || be == AF_INET {
                    AF_INET
                } else {
                    family
                })
            }
            _ => Payload::Truncated,
        },
        LinkType::LOOP => match frame.get(..4) {
            Some(&[a, b, c, d]) => address_family(u32::from_be_bytes([a, b, c, d])),
            _ => Payload::Truncated,
        },
        _ => Payload::NotIpv4(NotIpv4::UnsupportedLink),
    };
    LinkView { payload, direction }
}

/// `AF_INET` on every system.
const AF_INET: u32 = 2;

/// The payload of a BSD loopback frame with this address family (header of 4 bytes).
fn address_family(family: u32) -> Payload {
    match family {
        AF_INET => Payload::Ipv4 { offset: 4 },
        // AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD/DragonFly, Darwin.
        10 | 24 | 28 | 30 => Payload::NotIpv4(NotIpv4::Ipv6),
        other => Payload::NotIpv4(NotIpv4::AddressFamily(other)),
    }
}

/// The payload after an EtherType whose data starts at `start`, skipping VLAN tags
/// (802.1Q 0x8100, 802.1ad 0x88a8, old QinQ 0x9100), each 4 bytes: TCI then the next EtherType.
/// On Ethernet (`ethernet`), a type of 1500 or less is an IEEE 802.3 length, the frame LLC; in
/// Linux cooked captures such values are protocol numbers of their own.
fn ether_payload(frame: &[u8], mut ethertype: u16, mut start: usize, ethernet: bool) -> Payload {
    while matches!(
        EtherType(ethertype),
        EtherType::VLAN_TAGGED_FRAME
            | EtherType::PROVIDER_BRIDGING
            | EtherType::VLAN_DOUBLE_TAGGED_FRAME
    ) {
        let Some(inner) = be16(frame, start + 2) else {
            return Payload::Truncated;
        };
        ethertype = inner;
        start += 4;
    }
    match EtherType(ethertype) {
        EtherType::IPV4 => Payload::Ipv4 { offset: start },
        EtherType::IPV6 => Payload::NotIpv4(NotIpv4::Ipv6),
        EtherType::ARP => Payload::NotIpv4(NotIpv4::Arp),
        _ if ethernet && ethertype <= 1500 => Payload::NotIpv4(NotIpv4::Llc),
        _ => Payload::NotIpv4(NotIpv4::EtherType(ethertype)),
    }
}

/// `PACKET_OUTGOING`, the SLL packet type of frames the capturing host sent.
const SLL_OUTGOING: u16 = 4;

/// Direction from a Linux SLL packet type: "outgoing" (4) was sent by the capturing host;
/// to-us, broadcast, multicast and to-other-host (0-3) arrived at it.
fn sll_direction(packet_type: u16) -> CaptureDirection {
    match packet_type {
        SLL_OUTGOING => CaptureDirection::Outbound,
        0..=3 => CaptureDirection::Inbound, // HOST, BROADCAST, MULTICAST, OTHERHOST
        _ => CaptureDirection::Unknown,
    }
}

/// The big-endian u16 at `at`, if the frame is long enough.
fn be16(frame: &[u8], at: usize) -> Option<u16> {
    match frame.get(at..at.checked_add(2)?) {
        Some(&[a, b]) => Some(u16::from_be_bytes([a, b])),
        _ => None,
    }
}

/// The length of Ethernet's frame check sequence, the only FCS this tool rewrites.
pub const FCS_LEN: u8 = 4;

/// `Err(message)` when frames of `linktype` end with an FCS of `fcs_len` bytes this tool cannot
/// keep right: only Ethernet's 4-byte CRC-32 (IEEE 802.3 §3.2.9) is recomputed when a frame is
/// rewritten.
pub fn check_fcs(linktype: LinkType, fcs_len: u8) -> Result<(), String> {
    match (linktype, fcs_len) {
        (_, 0) | (LinkType::ETHERNET, FCS_LEN) => Ok(()),
        (LinkType(n), len) => {
            let name = linktype_name(n)
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            Err(format!(
                "frames of link type {n}{name} end with a {len}-byte FCS; only Ethernet's \
                 4-byte FCS can be kept right when frames are rewritten"
            ))
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it), a byte at a time.
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// How wrong the Ethernet FCS that ends `frame` is: the FCS carried XOR the one its bytes call
/// for (0 when right); `None` when the frame is too short to end with one. The FCS is the
/// CRC-32 of the frame before it, least significant byte first (IEEE 802.3 §3.2.9).
pub fn fcs_error(frame: &[u8]) -> Option<u32> {
    let at = frame.len().checked_sub(usize::from(FCS_LEN))?;
    let carried = u32::from_le_bytes(frame[at..].try_into().ok()?);
    Some(carried ^ crc32(&frame[..at]))
}

/// Rewrites the Ethernet FCS that ends `frame` for its bytes as they are now, wrong by the
/// same `error` as before ([`fcs_error`]): a right FCS stays right, a wrong one stays wrong by
/// the same amount (CRC-32 is affine in the frame's bits).
pub fn set_fcs(frame: &mut [u8], error: u32) {
    if let Some(at) = frame.len().checked_sub(usize::from(FCS_LEN)) {
        let fcs = crc32(&frame[..at]) ^ error;
        frame[at..].copy_from_slice(&fcs.to_le_bytes());
    }
}

/// Appends to `out` the right Ethernet FCS of the frame that starts at `start`.
pub fn push_fcs(out: &mut Vec<u8>, start: usize) {
    let fcs = crc32(&out[start..]);
    out.extend_from_slice(&fcs.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_header() -> Vec<u8> {
        let mut ip = vec![0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0];
        ip.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        ip
    }

    fn ethernet(types: &[u16], payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        for (i, t) in types.iter().enumerate() {
            if i > 0 {
                f.extend_from_slice(&[0xa0, 0x05]); // TCI: PCP 5, VLAN 5
            }
            f.extend_from_slice(&t.to_be_bytes());
        }
        f.extend_from_slice(payload);
        f
    }

    fn view(lt: LinkType, f: &[u8]) -> Payload {
        locate(lt, f).payload
    }

    #[test]
    fn ethernet_and_vlan_tags() {
        let ip = ipv4_header();
        assert_eq!(
            view(LinkType::ETHERNET, &ethernet(&[0x0800], &ip)),
            Payload::Ipv4 { offset: 14 }
        );
        assert_eq!(
            view(LinkType::ETHERNET, &ethernet(&[0x8100, 0x0800], &ip)),
            Payload::Ipv4 { offset: 18 }
        );
        assert_eq!(
            view(
                LinkType::ETHERNET,
                &ethernet(&[0x88a8, 0x8100, 0x0800], &ip)
            ),
            Payload::Ipv4 { offset: 22 }
        );
        assert_eq!(
            view(
                LinkType::ETHERNET,
                &ethernet(&[0x9100, 0x8100, 0x8100, 0x0800], &ip)
            ),
            Payload::Ipv4 { offset: 26 }
        );
        assert_eq!(
            view(LinkType::ETHERNET, &ethernet(&[0x0806], &[0; 28])),
            Payload::NotIpv4(NotIpv4::Arp)
        );
        assert_eq!(
            view(LinkType::ETHERNET, &ethernet(&[0x8100, 0x86dd], &[0; 40])),
            Payload::NotIpv4(NotIpv4::Ipv6)
        );
        assert_eq!(
            view(LinkType::ETHERNET, &ethernet(&[0x8847], &[0; 8])),
            Payload::NotIpv4(NotIpv4::EtherType(0x8847))
        );
        assert_eq!(
            locate(LinkType::ETHERNET, &ethernet(&[0x0800], &ip)).direction,
            CaptureDirection::Unknown
        );
    }

    #[test]
    fn ethernet_truncation() {
        assert_eq!(view(LinkType::ETHERNET, &[]), Payload::Truncated);
        assert_eq!(view(LinkType::ETHERNET, &[0; 13]), Payload::Truncated);
        // A tag whose inner EtherType is cut off.
        let f = ethernet(&[0x8100], &[0xa0]);
        assert_eq!(view(LinkType::ETHERNET, &f), Payload::Truncated);
        let f = ethernet(&[0x8100], &[0xa0, 0x05, 0x08]);
        assert_eq!(view(LinkType::ETHERNET, &f), Payload::Truncated);
        // Header complete, IPv4 payload empty: the IPv4 parser will say it is short.
        assert_eq!(
            view(LinkType::ETHERNET, &ethernet(&[0x0800], &[])),
            Payload::Ipv4 { offset: 14 }
        );
    }

    fn sll(packet_type: u16, protocol: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = packet_type.to_be_bytes().to_vec();
        f.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
        f.extend_from_slice(&6u16.to_be_bytes());
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
        f.extend_from_slice(&protocol.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn sll2(packet_type: u8, protocol: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = protocol.to_be_bytes().to_vec();
        f.extend_from_slice(&[0, 0]); // reserved
        f.extend_from_slice(&3u32.to_be_bytes()); // interface index
        f.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
        f.push(packet_type);
        f.push(6);
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn linux_sll() {
        assert_eq!(
            u16::from(etherparse::LinuxSllPacketType::OUTGOING),
            SLL_OUTGOING
        );
        let ip = ipv4_header();
        let v = locate(LinkType::LINUX_SLL, &sll(4, 0x0800, &ip));
        assert_eq!(
            v,
            LinkView {
                payload: Payload::Ipv4 { offset: 16 },
                direction: CaptureDirection::Outbound
            }
        );
        for t in 0..4 {
            let v = locate(LinkType::LINUX_SLL, &sll(t, 0x0800, &ip));
            assert_eq!(v.direction, CaptureDirection::Inbound, "type {t}");
        }
        assert_eq!(
            locate(LinkType::LINUX_SLL, &sll(5, 0x0800, &ip)).direction,
            CaptureDirection::Unknown
        );
        assert_eq!(
            view(LinkType::LINUX_SLL, &sll(0, 0x86dd, &[0; 40])),
            Payload::NotIpv4(NotIpv4::Ipv6)
        );
        assert_eq!(
            view(LinkType::LINUX_SLL, &sll(0, 0x8100, &[0, 5, 8, 0])),
            Payload::Ipv4 { offset: 20 }
        );
        assert_eq!(
            view(LinkType::LINUX_SLL, &sll(0, 0x0004, &[0; 10])),
            Payload::NotIpv4(NotIpv4::EtherType(4))
        );
        assert_eq!(
            view(LinkType::LINUX_SLL, &sll(0, 0x0800, &[])[..15]),
            Payload::Truncated
        );
    }

    #[test]
    fn linux_sll2() {
        let ip = ipv4_header();
        let v = locate(LinkType::LINUX_SLL2, &sll2(4, 0x0800, &ip));
        assert_eq!(
            v,
            LinkView {
                payload: Payload::Ipv4 { offset: 20 },
                direction: CaptureDirection::Outbound
            }
        );
        let v = locate(LinkType::LINUX_SLL2, &sll2(0, 0x0806, &[0; 28]));
        assert_eq!(
            v,
            LinkView {
                payload: Payload::NotIpv4(NotIpv4::Arp),
                direction: CaptureDirection::Inbound
            }
        );
        assert_eq!(
            locate(LinkType::LINUX_SLL2, &sll2(3, 0x0800, &ip)).direction,
            CaptureDirection::Inbound
        );
        assert_eq!(
            view(LinkType::LINUX_SLL2, &sll2(0, 0x0800, &[])[..19]),
            Payload::Truncated
        );
    }

    #[test]
    fn raw_ip() {
        let ip = ipv4_header();
        for lt in [LinkType::RAW, LinkType::IPV4, LinkType(12), LinkType(14)] {
            assert_eq!(view(lt, &ip), Payload::Ipv4 { offset: 0 });
            assert_eq!(view(lt, &[0x60, 0, 0, 0]), Payload::NotIpv4(NotIpv4::Ipv6));
            assert_eq!(view(lt, &[0x10]), Payload::NotIpv4(NotIpv4::IpVersion(1)));
            assert_eq!(view(lt, &[]), Payload::Truncated);
        }
    }

    #[test]
    fn null_and_loop() {
        let ip = ipv4_header();
        let with = |af: [u8; 4]| [&af[..], &ip].concat();
        assert_eq!(
            view(LinkType::NULL, &with(2u32.to_le_bytes())),
            Payload::Ipv4 { offset: 4 }
        );
        assert_eq!(
            view(LinkType::NULL, &with(2u32.to_be_bytes())),
            Payload::Ipv4 { offset: 4 }
        );
        assert_eq!(
            view(LinkType::NULL, &with(30u32.to_le_bytes())),
            Payload::NotIpv4(NotIpv4::Ipv6)
        );
        assert_eq!(
            view(LinkType::NULL, &with(24u32.to_be_bytes())),
            Payload::NotIpv4(NotIpv4::Ipv6)
        );
        assert_eq!(
            view(LinkType::NULL, &with(7u32.to_le_bytes())),
            Payload::NotIpv4(NotIpv4::AddressFamily(7))
        );
        assert_eq!(view(LinkType::NULL, &[2, 0, 0]), Payload::Truncated);
        assert_eq!(
            view(LinkType::LOOP, &with(2u32.to_be_bytes())),
            Payload::Ipv4 { offset: 4 }
        );
        assert_eq!(
            view(LinkType::LOOP, &with(28u32.to_be_bytes())),
            Payload::NotIpv4(NotIpv4::Ipv6)
        );
        assert_ne!(
            view(LinkType::LOOP, &with(2u32.to_le_bytes())),
            Payload::Ipv4 { offset: 4 }
        );
    }

    #[test]
    fn supported_link_types() {
        for lt in [0, 1, 12, 14, 101, 108, 113, 228, 276] {
            assert_eq!(check_supported(LinkType(lt)), Ok(()), "{lt}");
        }
        let msg = check_supported(LinkType(9)).unwrap_err();
        assert!(
            msg.starts_with("unsupported link type 9 (PPP); supported: 0 (NULL), 1 (ETHERNET)"),
            "{msg}"
        );
        let msg = check_supported(LinkType(4242)).unwrap_err();
        assert!(
            msg.starts_with("unsupported link type 4242; supported:"),
            "{msg}"
        );
        assert_eq!(
            view(LinkType(9), &[0xff, 0x03, 0, 0x21, 0x45]),
            Payload::NotIpv4(NotIpv4::UnsupportedLink)
        );
    }

    #[test]
    fn fcs_stays_right_or_wrong_by_the_same_amount() {
        // The CRC-32 check value (IEEE 802.3 / zlib).
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        let mut frame = ethernet(&[0x0800], &ipv4_header());
        push_fcs(&mut frame, 0);
        assert_eq!(fcs_error(&frame), Some(0));
        let mut bad = frame.clone();
        bad[20] ^= 0x40; // a bit flipped on the wire
        let err = fcs_error(&bad).unwrap();
        assert_ne!(err, 0);
        for f in [&mut frame, &mut bad] {
            f[30] ^= 0x11; // rewritten
        }
        let (e_right, e_wrong) = (fcs_error(&frame).unwrap(), fcs_error(&bad).unwrap());
        set_fcs(&mut frame, 0);
        set_fcs(&mut bad, err);
        assert_eq!((fcs_error(&frame), fcs_error(&bad)), (Some(0), Some(err)));
        assert_ne!((e_right, e_wrong), (0, err), "the rewrite did change them");
        assert_eq!(fcs_error(&[1, 2, 3]), None);
        assert!(check_fcs(LinkType::ETHERNET, 4).is_ok() && check_fcs(LinkType::RAW, 0).is_ok());
        let e = check_fcs(LinkType(9), 2).unwrap_err();
        assert!(
            e.contains("link type 9 (PPP)") && e.contains("2-byte FCS"),
            "{e}"
        );
    }
}
