//! Checksum errors of an IPv4 datagram recomputed in full by etherparse, independently of
//! lsnat's own checksum code: the tests' oracle (`tests/common`) and the fuzz targets'
//! (`fuzz/src/lib.rs` includes this file by path), one piece of code for both.

/// The one's-complement difference carried ⊖ correct, normalised so that 0 means right.
pub fn delta(carried: u16, correct: u16) -> u16 {
    let mut s = u32::from(carried) + u32::from(!correct);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    let d = s as u16;
    if d == 0xffff { 0 } else { d }
}

/// Checksum errors of an IPv4 datagram: (IPv4 header, transport), `None` where not checkable
/// (no parse; a fragment, a cut datagram or a UDP datagram without checksum for the
/// transport).
pub fn ipv4_checksum_errors(ip: &[u8]) -> Option<(u16, Option<u16>)> {
    use etherparse::{Icmpv4Slice, Ipv4HeaderSlice, TcpHeaderSlice, UdpHeaderSlice};
    let h = Ipv4HeaderSlice::from_slice(ip).ok()?;
    let hdr = h.to_header();
    let ip_err = delta(h.header_checksum(), hdr.calc_header_checksum());
    let total = usize::from(h.total_len());
    let ihl = h.slice().len();
    if h.is_fragmenting_payload() || ip.len() < total || total < ihl {
        return Some((ip_err, None));
    }
    let payload = &ip[ihl..total];
    let l4 = match h.protocol() {
        etherparse::IpNumber::TCP => TcpHeaderSlice::from_slice(payload).ok().and_then(|t| {
            let th = t.to_header();
            let c = th
                .calc_checksum_ipv4(&hdr, &payload[t.slice().len()..])
                .ok()?;
            Some(delta(t.checksum(), c))
        }),
        etherparse::IpNumber::UDP => UdpHeaderSlice::from_slice(payload).ok().and_then(|u| {
            if u.checksum() == 0 {
                return None;
            }
            let c = u.to_header().calc_checksum_ipv4(&hdr, &payload[8..]).ok()?;
            Some(delta(u.checksum(), c))
        }),
        etherparse::IpNumber::ICMP => Icmpv4Slice::from_slice(payload).ok().map(|s| {
            let c = s.header().icmp_type.calc_checksum(s.payload());
            delta(s.checksum(), c)
        }),
        _ => None,
    };
    Some((ip_err, l4))
}
