//! TCP rewrites beyond addresses and ports, for an application level gateway (RFC 1631 §5,
//! RFC 3022 §4.3): sequence and acknowledgement numbers, SACK blocks (RFC 2018), and a
//! payload whose text changes length. Every checksum is updated incrementally (RFC 1624
//! eqn. 3), never recomputed, so a checksum that was wrong on input stays wrong by the same
//! amount.

use super::checksum::{fold, sum_words, update16};
use super::ipv4::Ipv4;

fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes the 32-bit field at `at` (in the TCP header that starts at `ip.ihl`) and updates the
/// TCP checksum, when it is captured.
fn set32(ip: &Ipv4, b: &mut [u8], at: usize, new: u32) {
    let old = get32(b, at);
    if old == new {
        return;
    }
    b[at..at + 4].copy_from_slice(&new.to_be_bytes());
    let c = ip.ihl + 16;
    if c + 2 <= ip.captured {
        let hc = u16::from_be_bytes([b[c], b[c + 1]]);
        let hc = update16(hc, (old >> 16) as u16, (new >> 16) as u16);
        let hc = update16(hc, old as u16, new as u16);
        b[c..c + 2].copy_from_slice(&hc.to_be_bytes());
    }
}

/// Rewrites the sequence number (RFC 793 §3.1, offset 4).
pub fn set_seq(ip: &Ipv4, b: &mut [u8], new: u32) {
    set32(ip, b, ip.ihl + 4, new);
}

/// Rewrites the acknowledgement number (offset 8).
pub fn set_ack(ip: &Ipv4, b: &mut [u8], new: u32) {
    set32(ip, b, ip.ihl + 8, new);
}

/// Applies `f` to both edges of every SACK block (RFC 2018 §3, option kind 5) among the
/// options of the TCP header (`header_len` bytes at `ip.ihl`) that are captured. Returns how
/// many blocks it changed.
pub fn map_sack(ip: &Ipv4, b: &mut [u8], header_len: usize, f: impl Fn(u32) -> u32) -> usize {
    let end = (ip.ihl + header_len).min(ip.captured);
    let mut at = ip.ihl + 20;
    let mut changed = 0;
    while at < end {
        match b[at] {
            0 => break,
            1 => at += 1,
            kind => {
                let Some(&len) = b.get(at + 1).filter(|_| at + 1 < end) else {
                    break;
                };
                let len = usize::from(len);
                if len < 2 || at + len > end {
                    break;
                }
                if kind == 5 {
                    let mut edge = at + 2;
                    while edge + 8 <= at + len {
                        for e in [edge, edge + 4] {
                            set32(ip, b, e, f(get32(b, e)));
                        }
                        changed += 1;
                        edge += 8;
                    }
                }
                at += len;
            }
        }
    }
    changed
}

/// The datagram `b` (its header `ip`, whole in the capture, TCP) with the `len` payload bytes
/// at `at` (counted from the start of the datagram) replaced by `text`, written to `out`: the
/// IP total length and header checksum, and the TCP checksum, updated for the change. The
/// TCP checksum is updated over the bytes from the even offset at or before `at` to the end,
/// whose place or value changed, plus the pseudo-header's length (RFC 1624 eqn. 3 with the
/// sums of those bytes before and after as `m` and `m'`).
pub fn splice_payload(
    ip: &mut Ipv4,
    b: &[u8],
    at: usize,
    len: usize,
    text: &[u8],
    out: &mut Vec<u8>,
) {
    let total = ip.total_len;
    let new_total = total - len + text.len();
    out.clear();
    out.extend_from_slice(&b[..at]);
    out.extend_from_slice(text);
    out.extend_from_slice(&b[at + len..total]);
    // IP header: total length (offset 2), checksum (offset 10). A total length of 0 (a TSO /
    // BIG TCP super-packet, whose length is the captured one: see `Ipv4::total_len`) stays 0,
    // and the header checksum with it.
    let field = u16::from_be_bytes([b[2], b[3]]);
    if field != 0 {
        out[2..4].copy_from_slice(&(new_total as u16).to_be_bytes());
        ip.checksum = update16(ip.checksum, field, new_total as u16);
        out[10..12].copy_from_slice(&ip.checksum.to_be_bytes());
    }
    // TCP checksum: the changed bytes from an even offset of the segment (the IP header's
    // length is a multiple of 4, so an even offset of the datagram is one of the segment).
    let from = at & !1;
    let c = ip.ihl + 16;
    let hc = u16::from_be_bytes([out[c], out[c + 1]]);
    let old = fold(sum_words(&b[from..total], 0));
    let new = fold(sum_words(&out[from..new_total], 0));
    let (old_len, new_len) = ((total - ip.ihl) as u16, (new_total - ip.ihl) as u16);
    let acc = u32::from(!hc)
        + u32::from(!old)
        + u32::from(new)
        + u32::from(!old_len)
        + u32::from(new_len);
    let hc = !fold(u64::from(acc));
    out[c..c + 2].copy_from_slice(&hc.to_be_bytes());
    ip.total_len = new_total;
    ip.captured = new_total;
}

/// Overwrites the payload bytes at `at` (counted from the start of the datagram) with `text`
/// of the same length, updating the TCP checksum over the words they touch.
pub fn overwrite_payload(ip: &Ipv4, b: &mut [u8], at: usize, text: &[u8]) {
    let (from, to) = (at & !1, (at + text.len() + 1) & !1);
    let to = to.min(ip.total_len);
    let old = fold(sum_words(&b[from..to], 0));
    b[at..at + text.len()].copy_from_slice(text);
    let new = fold(sum_words(&b[from..to], 0));
    let c = ip.ihl + 16;
    let hc = u16::from_be_bytes([b[c], b[c + 1]]);
    b[c..c + 2].copy_from_slice(&update16(hc, old, new).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn segment(payload: &[u8], sack: bool) -> Vec<u8> {
        let mut builder = PacketBuilder::ipv4([203, 0, 113, 1], [198, 51, 100, 7], 64)
            .tcp(21, 40000, 1000, 64240)
            .ack(5000);
        if sack {
            builder = builder
                .options(&[
                    etherparse::TcpOptionElement::Noop,
                    etherparse::TcpOptionElement::Noop,
                    etherparse::TcpOptionElement::SelectiveAcknowledgement(
                        (7000, 7100),
                        [Some((7200, 7300)), None, None],
                    ),
                ])
                .unwrap();
        }
        let mut out = Vec::new();
        builder.write(&mut out, payload).unwrap();
        out
    }

    fn l4_error(b: &[u8]) -> Option<u16> {
        Ipv4::parse(b).unwrap().l4_checksum_error(b)
    }

    #[test]
    fn splice_keeps_both_checksums_right_whatever_the_length_change() {
        let text = b"227 Entering Passive Mode (203,0,113,1,195,80).\r\n";
        let at_numbers = 40 + 27;
        for (new, parity) in [
            (&b"198,18,0,100,195,80"[..], "longer"),
            (b"10,0,0,1,195,80", "shorter"),
            (b"203,0,113,2,195,80", "same"),
        ] {
            if new.len() == 18 {
                let mut b = segment(text, false);
                let ip = Ipv4::parse(&b).unwrap();
                overwrite_payload(&ip, &mut b, at_numbers, new);
                assert_eq!(l4_error(&b), Some(0));
                assert_eq!(&b[at_numbers..][..18], new);
            }
            for shift in 0..2 {
                // An odd start too: one byte more of text before the numbers.
                let mut p = Vec::new();
                if shift == 1 {
                    p.push(b' ');
                }
                p.extend_from_slice(text);
                let b = segment(&p, false);
                let mut ip = Ipv4::parse(&b).unwrap();
                let mut out = Vec::new();
                splice_payload(&mut ip, &b, at_numbers + shift, 18, new, &mut out);
                let again = Ipv4::parse(&out).unwrap();
                assert_eq!(again.total_len, b.len() - 18 + new.len(), "{parity}");
                assert_eq!(again.header_checksum_error(&out), 0, "{parity}");
                assert_eq!(l4_error(&out), Some(0), "{parity} shift {shift}");
                assert_eq!(&out[at_numbers + shift..][..new.len()], new);
            }
        }
    }

    #[test]
    fn splice_keeps_a_wrong_checksum_wrong_by_the_same_amount() {
        let mut b = segment(
            b"227 Entering Passive Mode (203,0,113,1,195,80).\r\n",
            false,
        );
        b[40 + 16] ^= 0x5a; // TCP checksum off by some amount
        let before = l4_error(&b);
        let mut ip = Ipv4::parse(&b).unwrap();
        let mut out = Vec::new();
        splice_payload(&mut ip, &b, 67, 18, b"198,18,0,100,195,80", &mut out);
        assert_ne!(before, Some(0));
        assert_eq!(l4_error(&out), before);
    }

    /// Fuzzing's checksum oracle (fuzz/ `engine_packets`) on a review of this function: a
    /// datagram whose total length field is 0 (a TSO super-packet, its length the captured one)
    /// got the new length written into that field with the header checksum updated from the
    /// datagram's length instead of from the 0 it held, so the header checksum went wrong.
    #[test]
    fn splice_keeps_a_zero_total_length_and_the_header_checksum_right() {
        let mut b = segment(
            b"227 Entering Passive Mode (203,0,113,1,195,80).\r\n",
            false,
        );
        // Total length 0, and the header checksum made right for it.
        let old = u16::from_be_bytes([b[2], b[3]]);
        let c = update16(u16::from_be_bytes([b[10], b[11]]), old, 0);
        b[2..4].copy_from_slice(&[0, 0]);
        b[10..12].copy_from_slice(&c.to_be_bytes());
        let mut ip = Ipv4::parse(&b).unwrap();
        assert_eq!((ip.total_len, ip.header_checksum_error(&b)), (b.len(), 0));
        assert_eq!(l4_error(&b), Some(0));
        let mut out = Vec::new();
        splice_payload(&mut ip, &b, 67, 18, b"198,18,0,100,195,80", &mut out);
        assert_eq!(&out[2..4], [0, 0], "still a super-packet");
        let again = Ipv4::parse(&out).unwrap();
        assert_eq!(again.total_len, b.len() + 1);
        assert_eq!(again.header_checksum_error(&out), 0);
        assert_eq!(l4_error(&out), Some(0));
    }

    #[test]
    fn sequence_numbers_and_sack_edges_keep_the_checksum_right() {
        let mut b = segment(b"hello", true);
        let ip = Ipv4::parse(&b).unwrap();
        set_seq(&ip, &mut b, 1001);
        set_ack(&ip, &mut b, 4999);
        let n = map_sack(&ip, &mut b, 40, |e| e.wrapping_sub(1));
        assert_eq!(n, 2);
        assert_eq!(get32(&b, 24), 1001);
        assert_eq!(get32(&b, 28), 4999);
        let edges: Vec<u32> = (0..4).map(|i| get32(&b, 40 + 4 + i * 4)).collect();
        assert_eq!(edges, [6999, 7099, 7199, 7299]);
        assert_eq!(l4_error(&b), Some(0));
    }
}
