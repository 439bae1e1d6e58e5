//! The ICMP time exceeded a router sends when it drops a datagram whose TTL ran out (RFC 792
//! type 11 code 0; RFC 1812 §5.3.1 "time to live exceeded in transit", §4.3.2.3 contents,
//! §4.3.2.5 precedence, §4.3.2.7 when not to send one).
//!
//! The datagram built here is what the modelled router sends back toward the packet's source:
//!
//! - IPv4 header: TOS = precedence 6 (internetwork control, 0xc0) with the dropped packet's TOS
//!   bits (RFC 1812 §4.3.2.5, as Linux does), identification 0 (the engine has no counter a
//!   real router's would match), no flags, TTL 64, protocol 1, checksum computed.
//! - ICMP: type 11, code 0, checksum, 4 unused zero bytes, then the dropped datagram as it
//!   arrived: "as much of the original datagram as possible without the length of the ICMP
//!   datagram exceeding 576 bytes" (RFC 1812 §4.3.2.3; at least its IP header and 8 bytes,
//!   RFC 792), limited to what the capture holds.

use crate::wire::checksum;
use crate::wire::ipv4::{Ipv4, L4};

/// The largest ICMP error datagram RFC 1812 §4.3.2.3 allows: 576 bytes.
pub const MAX_DATAGRAM: usize = 576;
/// The TTL of the datagrams the router originates (Linux's `ip_default_ttl`).
pub const TTL: u8 = 64;

/// Whether RFC 1812 §4.3.2.7 allows an ICMP error about this datagram: not about an ICMP
/// error, not about a later fragment, not to or from a broadcast, multicast, loopback or
/// unspecified address.
pub fn may_answer(ip: &Ipv4, l4: &L4) -> bool {
    let special = |a: [u8; 4]| a == [0; 4] || a[0] == 127 || a[0] >= 224;
    let group = |a: [u8; 4]| a == [255; 4] || (224..=239).contains(&a[0]);
    let first = ip.frag_offset == 0;
    let error = matches!(l4, L4::IcmpError { .. });
    first && !error && !special(ip.src) && !group(ip.dst)
}

/// Appends to `out` the time exceeded from `src` answering `dropped`, the captured bytes of a
/// datagram that arrived with TTL ≤ 1 (starting at its IPv4 header), and returns its length.
/// `None` (nothing appended) when `dropped` is not a parsable IPv4 header.
pub fn build(out: &mut Vec<u8>, src: [u8; 4], dropped: &[u8]) -> Option<usize> {
    let ip = Ipv4::parse(dropped).ok()?;
    let quote = &dropped[..ip.captured.min(MAX_DATAGRAM - 28)];
    let total = 28 + quote.len();
    let base = out.len();
    out.extend_from_slice(&[
        0x45,
        0xc0 | (dropped[1] & 0x1e),
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0,
        0,
        TTL,
        crate::wire::proto::ICMP,
        0,
        0,
    ]);
    out.extend_from_slice(&src);
    out.extend_from_slice(&ip.src);
    let o = &mut out[base..];
    let ip_sum = !checksum::sum(&o[..20]);
    o[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    out.extend_from_slice(&[11, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(quote);
    let o = &mut out[base..];
    let icmp_sum = !checksum::sum(&o[20..]);
    o[22..24].copy_from_slice(&icmp_sum.to_be_bytes());
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Icmpv4Type, PacketBuilder, SlicedPacket, TransportSlice};

    fn ping_ttl1(payload: usize) -> Vec<u8> {
        let mut p = Vec::new();
        PacketBuilder::ipv4([198, 51, 100, 7], [198, 18, 0, 100], 1)
            .icmpv4_echo_request(0x6ed0, 1)
            .write(&mut p, &vec![0x5a; payload])
            .unwrap();
        p
    }

    #[test]
    fn checksums_verified_by_etherparse() {
        let dropped = ping_ttl1(56);
        let mut out = Vec::new();
        build(&mut out, [198, 18, 0, 100], &dropped).unwrap();
        assert_eq!(out.len(), 20 + 8 + 84);
        let parsed = SlicedPacket::from_ip(&out).unwrap();
        let net = parsed.net.unwrap();
        let etherparse::NetSlice::Ipv4(v4) = net else {
            panic!("not IPv4")
        };
        let h = v4.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert_eq!(h.time_to_live, 64);
        assert_eq!(h.dscp.value(), 48); // CS6: precedence 6
        assert_eq!(h.source, [198, 18, 0, 100]);
        assert_eq!(h.destination, [198, 51, 100, 7]);
        let Some(TransportSlice::Icmpv4(icmp)) = parsed.transport else {
            panic!("not ICMP")
        };
        assert_eq!(
            icmp.icmp_type(),
            Icmpv4Type::TimeExceeded(etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit)
        );
        let recomputed = icmp.header().icmp_type.calc_checksum(icmp.payload());
        assert_eq!(icmp.checksum(), recomputed);
        assert_eq!(icmp.payload(), &dropped[..]);
    }

    #[test]
    fn quote_is_limited_to_576_bytes() {
        let dropped = ping_ttl1(1400);
        let mut out = Vec::new();
        build(&mut out, [203, 0, 113, 254], &dropped).unwrap();
        assert_eq!(out.len(), MAX_DATAGRAM);
        assert_eq!(&out[28..], &dropped[..548]);
        assert_eq!(checksum::sum(&out[20..]), 0xffff);
        assert_eq!(checksum::sum(&out[..20]), 0xffff);
    }

    #[test]
    fn never_about_errors_later_fragments_or_broadcasts() {
        let p = ping_ttl1(8);
        let ip = Ipv4::parse(&p).unwrap();
        let l4 = ip.l4(&p);
        assert!(may_answer(&ip, &l4));
        let later = Ipv4 {
            frag_offset: 10,
            ..ip
        };
        assert!(!may_answer(&later, &L4::LaterFragment));
        let err = L4::IcmpError {
            icmp_type: 3,
            code: 3,
            checksum: 0,
        };
        assert!(!may_answer(&ip, &err));
        let bcast = Ipv4 {
            dst: [255; 4],
            ..ip
        };
        assert!(!may_answer(&bcast, &l4));
        let zero_src = Ipv4 { src: [0; 4], ..ip };
        assert!(!may_answer(&zero_src, &l4));
    }
}
