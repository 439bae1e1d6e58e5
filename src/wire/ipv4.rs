//! IPv4 header view and in-place rewriting (RFC 791), with the transport header that follows
//! (RFC 793 TCP, RFC 768 UDP, RFC 792 ICMP).
//!
//! Parsing copies the few fields the engine needs into a small `Copy` struct; rewriting takes the
//! packet bytes again, mutably, and updates every checksum that covers the changed field with
//! RFC 1624 eqn. 3 ([`super::checksum`]).

use super::checksum::{self, update16, update32};
use super::{icmp_type, proto};

/// Why bytes are not a usable IPv4 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Fewer than 20 bytes, or fewer than the header length says when the datagram itself
    /// is that short.
    Short,
    /// The header's options run past the captured bytes (a snapshot length shorter than the
    /// header), in a datagram whose total length holds them: not malformed, only cut.
    HeaderCut,
    /// Version field is not 4.
    NotVersion4,
    /// Header length below 20 bytes.
    BadHeaderLength,
    /// Total length shorter than the header.
    BadTotalLength,
}

/// The fields of an IPv4 header, read once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4 {
    /// Header length in bytes.
    pub ihl: usize,
    /// Datagram length: the total-length field, or the captured length when that field is 0
    /// (a TSO / BIG TCP super-packet as captured on Linux).
    pub total_len: usize,
    /// Bytes of the datagram present in the capture (≤ `total_len` when snaplen-truncated).
    pub captured: usize,
    /// Identification.
    pub ident: u16,
    /// More-fragments flag.
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    /// Time to live.
    pub ttl: u8,
    /// Protocol.
    pub protocol: u8,
    /// Header checksum as carried.
    pub checksum: u16,
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
}

/// The transport header as far as the engine needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    /// TCP header (at least the first 14 bytes present, or its 4 bytes of ports in a quote
    /// read by [`Ipv4::quoted_l4`]; `checksum` when 18 are).
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Sequence number.
        seq: u32,
        /// Acknowledgement number.
        ack: u32,
        /// Flags (low 8 bits).
        flags: u8,
        /// Header length in bytes (0 when the data-offset byte is not captured).
        header_len: usize,
        /// Checksum, when captured.
        checksum: Option<u16>,
    },
    /// UDP header.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Checksum, when captured (0 = none, RFC 768).
        checksum: Option<u16>,
    },
    /// ICMP query or query reply: echo, timestamp, information, address mask.
    IcmpQuery {
        /// Type.
        icmp_type: u8,
        /// Query identifier.
        id: u16,
        /// Checksum.
        checksum: u16,
    },
    /// ICMP error quoting an earlier datagram.
    IcmpError {
        /// Type.
        icmp_type: u8,
        /// Code.
        code: u8,
        /// Checksum.
        checksum: u16,
    },
    /// Other ICMP (redirect, router advertisement, ...).
    IcmpOther {
        /// Type.
        icmp_type: u8,
    },
    /// Another protocol (RFC 2391 §2.2 "all other types of sessions").
    Other,
    /// A later fragment: no transport header.
    LaterFragment,
    /// The transport header is cut short by the capture's snaplen.
    Truncated,
}

impl Ipv4 {
    /// Reads the header at the start of `b`.
    pub fn parse(b: &[u8]) -> Result<Ipv4, Malformed> {
        if b.len() < 20 {
            return Err(Malformed::Short);
        }
        if b[0] >> 4 != 4 {
            return Err(Malformed::NotVersion4);
        }
        let ihl = usize::from(b[0] & 0x0f) * 4;
        if ihl < 20 {
            return Err(Malformed::BadHeaderLength);
        }
        let field_len = usize::from(u16::from_be_bytes([b[2], b[3]]));
        if b.len() < ihl {
            return Err(if field_len >= ihl {
                Malformed::HeaderCut
            } else {
                Malformed::Short
            });
        }
        let total_len = if field_len == 0 { b.len() } else { field_len };
        if total_len < ihl {
            return Err(Malformed::BadTotalLength);
        }
        let frag = u16::from_be_bytes([b[6], b[7]]);
        Ok(Ipv4 {
            ihl,
            total_len,
            captured: b.len().min(total_len),
            ident: u16::from_be_bytes([b[4], b[5]]),
            more_fragments: frag & 0x2000 != 0,
            frag_offset: frag & 0x1fff,
            ttl: b[8],
            protocol: b[9],
            checksum: u16::from_be_bytes([b[10], b[11]]),
            src: [b[12], b[13], b[14], b[15]],
            dst: [b[16], b[17], b[18], b[19]],
        })
    }

    /// Part of a fragmented datagram.
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.frag_offset != 0
    }

    /// Whether the whole datagram is in the capture.
    pub fn is_complete(&self) -> bool {
        self.captured >= self.total_len
    }

    /// Reads the transport header that follows.
    pub fn l4(&self, b: &[u8]) -> L4 {
        if self.frag_offset != 0 {
            return L4::LaterFragment;
        }
        let t = &b[self.ihl..self.captured];
        let be16 = |i: usize| u16::from_be_bytes([t[i], t[i + 1]]);
        match self.protocol {
            proto::TCP => {
                if t.len() < 14 {
                    return L4::Truncated;
                }
                L4::Tcp {
                    sport: be16(0),
                    dport: be16(2),
                    seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
                    ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
                    header_len: usize::from(t[12] >> 4) * 4,
                    flags: t[13],
                    checksum: (t.len() >= 18).then(|| be16(16)),
                }
            }
            proto::UDP => {
                if t.len() < 4 {
                    return L4::Truncated;
                }
                L4::Udp {
                    sport: be16(0),
                    dport: be16(2),
                    checksum: (t.len() >= 8).then(|| be16(6)),
                }
            }
            proto::ICMP => {
                if t.len() < 4 {
                    return L4::Truncated;
                }
                let (ty, code, checksum) = (t[0], t[1], be16(2));
                if icmp_type::is_query(ty) || icmp_type::is_query_reply(ty) {
                    if t.len() < 6 {
                        return L4::Truncated;
                    }
                    L4::IcmpQuery {
                        icmp_type: ty,
                        id: be16(4),
                        checksum,
                    }
                } else if icmp_type::is_error(ty) {
                    L4::IcmpError {
                        icmp_type: ty,
                        code,
                        checksum,
                    }
                } else {
                    L4::IcmpOther { icmp_type: ty }
                }
            }
            _ => L4::Other,
        }
    }

    /// Reads the transport header of a datagram quoted in an ICMP error (RFC 792: the IP
    /// header and at least the first 64 bits of its data). As [`Ipv4::l4`], except that a TCP
    /// header is read as soon as its ports are there: the 8 bytes RFC 792 promises hold the
    /// ports and the sequence number, and neither the flags nor the checksum (offset 16) need
    /// be quoted. What is missing reads as 0 (`header_len` 0, `checksum` `None`).
    pub fn quoted_l4(&self, b: &[u8]) -> L4 {
        let t = b.get(self.ihl..self.captured).unwrap_or_default();
        if self.frag_offset != 0 || self.protocol != proto::TCP || t.len() >= 14 || t.len() < 4 {
            return self.l4(b);
        }
        let byte = |i: usize| t.get(i).copied().unwrap_or(0);
        let be32 = |i: usize| u32::from_be_bytes([byte(i), byte(i + 1), byte(i + 2), byte(i + 3)]);
        L4::Tcp {
            sport: u16::from_be_bytes([t[0], t[1]]),
            dport: u16::from_be_bytes([t[2], t[3]]),
            seq: if t.len() >= 8 { be32(4) } else { 0 },
            ack: if t.len() >= 12 { be32(8) } else { 0 },
            flags: 0,
            header_len: if t.len() >= 13 {
                usize::from(t[12] >> 4) * 4
            } else {
                0
            },
            checksum: None,
        }
    }

    /// Offset of the transport checksum field, when it is in the captured bytes and this
    /// datagram carries one (first fragment or unfragmented TCP/UDP/ICMP).
    pub fn l4_checksum_offset(&self) -> Option<usize> {
        if self.frag_offset != 0 {
            return None;
        }
        let at = self.ihl
            + match self.protocol {
                proto::TCP => 16,
                proto::UDP => 6,
                proto::ICMP => 2,
                _ => return None,
            };
        (at + 2 <= self.captured).then_some(at)
    }

    /// Whether the transport checksum covers the addresses (pseudo-header: TCP and UDP).
    fn pseudo_header_covers(&self) -> bool {
        matches!(self.protocol, proto::TCP | proto::UDP)
    }

    /// Verifies the header checksum: the one's-complement error (0 when right).
    pub fn header_checksum_error(&self, b: &[u8]) -> u16 {
        checksum::error_of(checksum::sum(&b[..self.ihl]))
    }

    /// Verifies the transport checksum over the whole datagram: `None` when it cannot be
    /// checked (fragment, truncated, no checksum, UDP checksum 0), else the error (0 when right).
    pub fn l4_checksum_error(&self, b: &[u8]) -> Option<u16> {
        if self.is_fragment() || !self.is_complete() {
            return None;
        }
        let seg = &b[self.ihl..self.total_len];
        let at = self.l4_checksum_offset()? - self.ihl;
        let carried = u16::from_be_bytes([seg[at], seg[at + 1]]);
        if self.protocol == proto::UDP && carried == 0 {
            return None;
        }
        let mut acc = checksum::sum_words(seg, 0);
        if self.pseudo_header_covers() {
            acc += checksum::pseudo_header(self.src, self.dst, self.protocol, seg.len() as u16);
        }
        let s = checksum::fold(acc);
        Some(checksum::error_of(s))
    }
}

fn get16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Updates the transport checksum at `at` for a 16-bit change, honouring RFC 768's zero rule.
fn l4_update16(ip: &Ipv4, b: &mut [u8], old: u16, new: u16) {
    if let Some(at) = ip.l4_checksum_offset() {
        let hc = get16(b, at);
        if ip.protocol == proto::UDP {
            if hc != 0 {
                put16(b, at, checksum::udp_nonzero(update16(hc, old, new)));
            }
        } else {
            put16(b, at, update16(hc, old, new));
        }
    }
}

fn l4_update32(ip: &Ipv4, b: &mut [u8], old: [u8; 4], new: [u8; 4]) {
    if !ip.pseudo_header_covers() {
        return;
    }
    if let Some(at) = ip.l4_checksum_offset() {
        let hc = get16(b, at);
        if ip.protocol == proto::UDP {
            if hc != 0 {
                put16(b, at, checksum::udp_nonzero(update32(hc, old, new)));
            }
        } else {
            put16(b, at, update32(hc, old, new));
        }
    }
}

/// The window field of the TCP header that starts at `l4` in `b` (RFC 793 §3.1), when captured.
#[inline]
pub fn tcp_window(b: &[u8], l4: usize) -> Option<u16> {
    let w = b.get(l4 + 14..l4 + 16)?;
    Some(u16::from_be_bytes([w[0], w[1]]))
}

/// What a SYN's options say of window scaling (RFC 7323 §2.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WindowScale {
    /// No window scale option.
    #[default]
    Absent,
    /// The option, with its shift count.
    Shift(u8),
    /// The options run past the captured bytes before the option or the end of options.
    NotCaptured,
}

/// The window scale option (RFC 7323 §2.2, kind 3) among the options of the TCP header that
/// starts at `l4` in `b` and is `header_len` bytes long.
#[cold]
pub fn tcp_window_scale(b: &[u8], l4: usize, header_len: usize) -> WindowScale {
    let end = l4 + header_len;
    let mut at = l4 + 20;
    while at < end {
        let Some(&kind) = b.get(at) else {
            return WindowScale::NotCaptured;
        };
        match kind {
            0 => return WindowScale::Absent,
            1 => at += 1,
            kind => {
                let Some(&len) = b.get(at + 1) else {
                    return WindowScale::NotCaptured;
                };
                let len = usize::from(len);
                if len < 2 {
                    return WindowScale::Absent;
                }
                if kind == 3 && len == 3 {
                    return b
                        .get(at + 2)
                        .filter(|_| at + 3 <= end)
                        .map_or(WindowScale::NotCaptured, |&s| WindowScale::Shift(s));
                }
                at += len;
            }
        }
    }
    WindowScale::Absent
}

/// Rewrites the source address; updates the header checksum and, through the pseudo-header,
/// the TCP/UDP checksum (first fragment only: later fragments carry no transport header).
pub fn set_src(ip: &mut Ipv4, b: &mut [u8], new: [u8; 4]) {
    let old = ip.src;
    b[12..16].copy_from_slice(&new);
    ip.checksum = update32(ip.checksum, old, new);
    put16(b, 10, ip.checksum);
    l4_update32(ip, b, old, new);
    ip.src = new;
}

/// Rewrites the destination address (see [`set_src`]).
pub fn set_dst(ip: &mut Ipv4, b: &mut [u8], new: [u8; 4]) {
    let old = ip.dst;
    b[16..20].copy_from_slice(&new);
    ip.checksum = update32(ip.checksum, old, new);
    put16(b, 10, ip.checksum);
    l4_update32(ip, b, old, new);
    ip.dst = new;
}

/// Rewrites the TCP/UDP source port (offset 0 of the transport header).
pub fn set_sport(ip: &Ipv4, b: &mut [u8], new: u16) {
    let at = ip.ihl;
    let old = get16(b, at);
    put16(b, at, new);
    l4_update16(ip, b, old, new);
}

/// Rewrites the TCP/UDP destination port (offset 2 of the transport header).
pub fn set_dport(ip: &Ipv4, b: &mut [u8], new: u16) {
    let at = ip.ihl + 2;
    let old = get16(b, at);
    put16(b, at, new);
    l4_update16(ip, b, old, new);
}

/// Rewrites an ICMP query identifier (offset 4 of the ICMP header); the ICMP checksum has no
/// pseudo-header, so only it changes.
pub fn set_icmp_id(ip: &Ipv4, b: &mut [u8], new: u16) {
    let at = ip.ihl + 4;
    let old = get16(b, at);
    put16(b, at, new);
    l4_update16(ip, b, old, new);
}

/// Decrements the TTL by one as a forwarding router does (RFC 1812 §5.3.1), updating the
/// header checksum over the TTL/protocol word.
pub fn decrement_ttl(ip: &mut Ipv4, b: &mut [u8]) {
    let old = get16(b, 8);
    b[8] = b[8].wrapping_sub(1);
    let new = get16(b, 8);
    ip.checksum = update16(ip.checksum, old, new);
    put16(b, 10, ip.checksum);
    ip.ttl = b[8];
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn udp_packet(csum: bool) -> Vec<u8> {
        let builder = PacketBuilder::ipv4([198, 51, 100, 7], [198, 18, 0, 100], 64).udp(40000, 53);
        let payload = b"hello world";
        let mut out = Vec::new();
        builder.write(&mut out, payload).unwrap();
        if !csum {
            out[26] = 0;
            out[27] = 0;
        }
        out
    }

    fn tcp_packet() -> Vec<u8> {
        let builder = PacketBuilder::ipv4([198, 51, 100, 7], [198, 18, 0, 100], 64)
            .tcp(2745, 80, 1000, 65535)
            .syn();
        let mut out = Vec::new();
        builder.write(&mut out, &[]).unwrap();
        out
    }

    #[test]
    fn rewrite_keeps_checksums_exact() {
        for mut p in [udp_packet(true), tcp_packet()] {
            let mut ip = Ipv4::parse(&p).unwrap();
            assert_eq!(ip.header_checksum_error(&p), 0);
            assert_eq!(ip.l4_checksum_error(&p), Some(0));
            set_dst(&mut ip, &mut p, [203, 0, 113, 1]);
            set_src(&mut ip, &mut p, [203, 0, 113, 99]);
            set_sport(&ip, &mut p, 7001);
            decrement_ttl(&mut ip, &mut p);
            let again = Ipv4::parse(&p).unwrap();
            assert_eq!(again.ttl, 63);
            assert_eq!(again.dst, [203, 0, 113, 1]);
            assert_eq!(again.header_checksum_error(&p), 0);
            assert_eq!(again.l4_checksum_error(&p), Some(0));
        }
    }

    #[test]
    fn zero_udp_checksum_stays_zero() {
        let mut p = udp_packet(false);
        let mut ip = Ipv4::parse(&p).unwrap();
        set_dst(&mut ip, &mut p, [203, 0, 113, 1]);
        assert_eq!(&p[26..28], &[0, 0]);
        assert_eq!(ip.l4_checksum_error(&p), None);
    }

    #[test]
    fn computed_zero_udp_checksum_is_sent_as_ffff() {
        // Search for a destination that makes the updated checksum come out as 0.
        let base = udp_packet(true);
        let ip0 = Ipv4::parse(&base).unwrap();
        let hc = get16(&base, 26);
        let mut found = false;
        for x in 0..=u16::MAX {
            let new = [203, 0, (x >> 8) as u8, x as u8];
            if update32(hc, ip0.dst, new) == 0 {
                let mut p = base.clone();
                let mut ip = ip0;
                set_dst(&mut ip, &mut p, new);
                assert_eq!(get16(&p, 26), 0xffff);
                assert_eq!(ip.l4_checksum_error(&p), Some(0));
                found = true;
                break;
            }
        }
        assert!(found, "no address gave a zero checksum");
    }

    #[test]
    fn parses_fragments_and_rejects_garbage() {
        assert_eq!(Ipv4::parse(&[0x45; 10]), Err(Malformed::Short));
        let mut p = udp_packet(true);
        p[0] = 0x65;
        assert_eq!(Ipv4::parse(&p), Err(Malformed::NotVersion4));
        let mut p = udp_packet(true);
        p[6] = 0x00;
        p[7] = 0x10; // offset 16*8
        let ip = Ipv4::parse(&p).unwrap();
        assert!(ip.is_fragment());
        assert_eq!(ip.l4(&p), L4::LaterFragment);
        assert_eq!(ip.l4_checksum_offset(), None);
    }
}
