//! Captures that hold each forwarded packet twice, with nothing to say which copy arrived.
//!
//! The router view replays what *arrives* at the router (README, "Inputs"). A capture taken on
//! the router itself holds every packet it forwards twice, as it arrived and as it left; SLL and
//! SLL2 packet types and pcapng direction flags tell the copies apart, and the replay leaves the
//! leaving ones out. A capture without them — `tcpdump -i eth0` and `-i eth1` without `-Q in`,
//! merged; `dumpcap` on two interfaces, which writes pcapng without `epb_flags` — cannot say,
//! and would be replayed with each forwarded packet twice: once as it arrived (translated), once
//! as the router sent it on (its translation already done, so it passes as unrelated).
//!
//! [`ForwardedCopies`] looks for that on the reader's side of the replay, outside the engine:
//! among the first [`EXAMINED`] IPv4 packets whose direction the capture does not record, a
//! packet that repeats one a few packets before it, as a router forwards it — the same
//! identification, length, fragment field, protocol and sequence numbers (what a NAT leaves
//! alone), one hop of TTL apart (RFC 1812 §5.3.1), whichever of the two comes first. Two such pairs make a warning; a capture
//! from one side of a router, or from an end host, has none (none of the bundled captures or
//! the corpus does).

use crate::capture::CaptureDirection;
use crate::wire::ipv4::Ipv4;

/// How many IPv4 packets of unknown direction are looked at: enough for a router capture to
/// show many pairs, few enough that the check costs nothing per packet after them.
pub const EXAMINED: u32 = 10_000;

/// How many packets of unknown direction may lie between the two copies (a router forwards
/// within microseconds; a merged capture interleaves other interfaces' packets between them).
const WINDOW: u32 = 256;

/// Slots of the table of recent packets (a power of two), by a hash of what a router leaves
/// unchanged (a packet overwrites an older one in its slot: a pair lost to that is no matter).
const SLOTS: usize = 1024;

/// Pairs needed for the warning: one could be a coincidence in a tiny capture, two are not.
const PAIRS_FOR_WARNING: u32 = 2;

/// What a router forwarding (and translating) a datagram leaves as it was.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Unchanged {
    protocol: u8,
    ident: u16,
    total_len: u16,
    /// More-fragments flag and offset.
    fragment: u16,
    /// TCP sequence and acknowledgement numbers, UDP length, ICMP type, code and sequence
    /// number: as many of those bytes as were captured (none in a later fragment).
    transport: [u8; 8],
    transport_len: u8,
}

#[derive(Clone, Copy)]
struct Seen {
    unchanged: Unchanged,
    ttl: u8,
    /// 1-based record number.
    index: u64,
    /// Its place among the packets examined (counted from 1).
    examined: u32,
}

/// The first pair found and how many there were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    /// Record numbers (1-based) of the two copies.
    pub arrived: u64,
    /// The copy with one hop less of TTL.
    pub left: u64,
    /// IP identification (the same in both).
    pub ident: u16,
    /// TTL of the arriving copy.
    pub ttl: u8,
}

/// Looks for pairs of copies of one forwarded datagram (see the module's documentation).
#[derive(Default)]
pub struct ForwardedCopies {
    /// Recent packets by [`slot`]; allocated with the first packet examined.
    recent: Vec<Option<Seen>>,
    examined: u32,
    pairs: u32,
    first: Option<Pair>,
}

impl ForwardedCopies {
    /// Whether packets are still looked at (the first [`EXAMINED`] IPv4 packets of unknown
    /// direction); after them [`ForwardedCopies::see`] does nothing.
    #[inline]
    pub fn looking(&self) -> bool {
        self.examined < EXAMINED
    }

    /// One captured packet: `index` its record number, `direction` what the capture says of
    /// it (pcapng flags or SLL packet type), `datagram` its IPv4 datagram when it carries one.
    #[inline(never)]
    pub fn see(&mut self, index: u64, direction: CaptureDirection, datagram: Option<&[u8]>) {
        if !self.looking() || direction != CaptureDirection::Unknown {
            return;
        }
        if let Some(d) = datagram {
            self.examine(index, d);
        }
    }

    fn examine(&mut self, index: u64, d: &[u8]) {
        let Ok(ip) = Ipv4::parse(d) else {
            return;
        };
        self.examined += 1;
        let t = d.get(ip.ihl..).unwrap_or(&[]);
        let first_fragment = ip.frag_offset == 0;
        let offsets: &[usize] = match ip.protocol {
            _ if !first_fragment => &[],
            6 => &[4, 5, 6, 7, 8, 9, 10, 11],
            17 => &[4, 5],
            1 => &[0, 1, 6, 7],
            _ => &[],
        };
        let mut transport = [0u8; 8];
        let mut n = 0;
        for &b in offsets.iter().map_while(|&i| t.get(i)) {
            transport[n] = b;
            n += 1;
        }
        let unchanged = Unchanged {
            protocol: ip.protocol,
            ident: ip.ident,
            total_len: ip.total_len as u16,
            fragment: u16::from(ip.more_fragments) << 13 | ip.frag_offset,
            transport,
            transport_len: n as u8,
        };
        if self.recent.is_empty() {
            self.recent = vec![None; SLOTS];
        }
        let slot = &mut self.recent[slot(&unchanged)];
        if let Some(s) = slot
            && s.unchanged == unchanged
            && self.examined - s.examined <= WINDOW
        {
            // Either copy may come first: a capture merged by time has the arriving one
            // first, but dumpcap writes each interface's packets in runs of their own.
            let pair = if ip.ttl < 255 && s.ttl == ip.ttl + 1 {
                Some((s.index, index, s.ttl))
            } else if s.ttl < 255 && ip.ttl == s.ttl + 1 {
                Some((index, s.index, ip.ttl))
            } else {
                None
            };
            if let Some((arrived, left, ttl)) = pair {
                self.pairs += 1;
                self.first.get_or_insert(Pair {
                    arrived,
                    left,
                    ident: ip.ident,
                    ttl,
                });
            }
        }
        *slot = Some(Seen {
            unchanged,
            ttl: ip.ttl,
            index,
            examined: self.examined,
        });
    }

    /// The first pair and the number of pairs, when there were enough for a warning.
    pub fn found(&self) -> Option<(Pair, u32)> {
        self.first
            .filter(|_| self.pairs >= PAIRS_FOR_WARNING)
            .map(|p| (p, self.pairs))
    }

    /// The warning for the replay's summary and report, when there is one.
    pub fn warning(&self) -> Option<String> {
        let (p, n) = self.found()?;
        Some(format!(
            "packet {} (TTL {}) and packet {} (TTL {}) look like one datagram as it arrived at a \
             router and as the router sent it on (IP ID {:#06x}), and so do {} more pairs in the \
             first {} IPv4 packets: the capture seems to hold both directions of the router's interfaces \
             with nothing to tell them apart, so each forwarded packet is replayed twice; the \
             router view wants only what arrives (tcpdump -Q in on each interface, or -i any, \
             whose packet types lsnat reads, or pcapng with direction flags)",
            p.arrived,
            p.ttl,
            p.left,
            p.ttl - 1,
            p.ident,
            n - 1,
            self.examined,
        ))
    }
}

/// The slot of [`ForwardedCopies::recent`] for `u`: identification, length and the first
/// transport bytes, mixed by a multiplication whose high bits every input bit reaches.
fn slot(u: &Unchanged) -> usize {
    let t = u64::from(u32::from_le_bytes([
        u.transport[0],
        u.transport[1],
        u.transport[2],
        u.transport[3],
    ]));
    let x = (u64::from(u.ident) << 48 | u64::from(u.total_len) << 32 | t)
        ^ u64::from(u.protocol) << 40
        ^ u64::from(u.fragment) << 20;
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SLOTS.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20-byte IPv4 header with a TCP header behind it: `ttl`, `ident`, addresses, sequence.
    fn tcp(ttl: u8, ident: u16, dst: [u8; 4], seq: u32) -> Vec<u8> {
        let mut d = vec![0u8; 40];
        d[0] = 0x45;
        d[2..4].copy_from_slice(&40u16.to_be_bytes());
        d[4..6].copy_from_slice(&ident.to_be_bytes());
        d[6] = 0x40;
        d[8] = ttl;
        d[9] = 6;
        d[12..16].copy_from_slice(&[198, 51, 100, 7]);
        d[16..20].copy_from_slice(&dst);
        d[24..28].copy_from_slice(&seq.to_be_bytes());
        d
    }

    const VIP: [u8; 4] = [198, 18, 0, 100];
    const MEMBER: [u8; 4] = [203, 0, 113, 1];

    #[test]
    fn a_translated_copy_one_hop_on_pairs_with_its_original() {
        let mut f = ForwardedCopies::default();
        let u = CaptureDirection::Unknown;
        f.see(1, u, Some(&tcp(64, 7, VIP, 1000)));
        f.see(2, u, Some(&tcp(63, 7, MEMBER, 1000)));
        assert_eq!(f.found(), None, "one pair is not enough");
        f.see(3, u, Some(&tcp(64, 8, VIP, 1001)));
        f.see(4, u, Some(&tcp(64, 9, VIP, 1001)));
        f.see(5, u, Some(&tcp(63, 8, MEMBER, 1001)));
        let (p, n) = f.found().expect("two pairs");
        assert_eq!((p.arrived, p.left, p.ident, p.ttl, n), (1, 2, 7, 64, 2));
        let w = f.warning().expect("a warning");
        assert!(
            w.starts_with("packet 1 (TTL 64) and packet 2 (TTL 63) look like one datagram"),
            "{w}"
        );
        assert!(w.contains("sent it on (IP ID 0x0007), and so do"), "{w}");
        assert!(
            w.contains("1 more pairs in the first 5 IPv4 packets"),
            "{w}"
        );
    }

    #[test]
    fn copies_that_differ_or_whose_direction_is_known_do_not_pair() {
        let mut f = ForwardedCopies::default();
        let u = CaptureDirection::Unknown;
        // A retransmission (same TTL), another sequence number, two hops either way.
        f.see(1, u, Some(&tcp(64, 7, VIP, 1000)));
        f.see(2, u, Some(&tcp(64, 7, VIP, 1000)));
        f.see(3, u, Some(&tcp(63, 7, MEMBER, 2000)));
        f.see(4, u, Some(&tcp(62, 7, MEMBER, 1000)));
        f.see(5, u, Some(&tcp(64, 7, MEMBER, 1000)));
        // Copies the capture says went out (SLL type 4, pcapng outbound) are not looked at.
        f.see(
            6,
            CaptureDirection::Outbound,
            Some(&tcp(63, 7, MEMBER, 1000)),
        );
        f.see(
            7,
            CaptureDirection::Inbound,
            Some(&tcp(63, 7, MEMBER, 1000)),
        );
        f.see(8, u, None);
        assert_eq!(f.pairs, 0);
        assert_eq!(f.examined, 5);
    }

    /// dumpcap on two interfaces writes each interface's packets in runs: the copy that left
    /// may come before the one that arrived.
    #[test]
    fn the_leaving_copy_may_come_first() {
        let mut f = ForwardedCopies::default();
        let u = CaptureDirection::Unknown;
        f.see(4, u, Some(&tcp(63, 0xbb9e, VIP, 1000)));
        f.see(7, u, Some(&tcp(63, 0xce77, MEMBER, 2000)));
        f.see(8, u, Some(&tcp(64, 0xbb9e, MEMBER, 1000)));
        f.see(9, u, Some(&tcp(64, 0xce77, VIP, 2000)));
        let (p, n) = f.found().expect("two pairs");
        assert_eq!(
            (p.arrived, p.left, p.ident, p.ttl, n),
            (8, 4, 0xbb9e, 64, 2)
        );
    }

    #[test]
    fn copies_too_far_apart_do_not_pair() {
        let mut f = ForwardedCopies::default();
        let u = CaptureDirection::Unknown;
        f.see(1, u, Some(&tcp(64, 7, VIP, 1000)));
        for i in 0..WINDOW {
            f.see(u64::from(i) + 2, u, Some(&tcp(64, 9, VIP, 5000 + i)));
        }
        f.see(300, u, Some(&tcp(63, 7, MEMBER, 1000)));
        assert_eq!(f.pairs, 0);
        // Another datagram, and its copy just inside the window.
        f.see(301, u, Some(&tcp(64, 7, VIP, 3000)));
        for i in 0..WINDOW - 1 {
            f.see(u64::from(i) + 302, u, Some(&tcp(64, 9, VIP, 9000 + i)));
        }
        f.see(600, u, Some(&tcp(63, 7, MEMBER, 3000)));
        assert_eq!(f.pairs, 1);
        assert_eq!(f.first.map(|p| (p.arrived, p.left)), Some((301, 600)));
    }

    #[test]
    fn only_the_first_packets_are_examined() {
        let mut f = ForwardedCopies::default();
        let u = CaptureDirection::Unknown;
        for i in 0..u64::from(EXAMINED) {
            f.see(i + 1, u, Some(&tcp(64, i as u16, VIP, i as u32)));
        }
        f.see(1_000_000, u, Some(&tcp(63, 1, MEMBER, 1)));
        f.see(1_000_001, u, Some(&tcp(64, 1, VIP, 5)));
        f.see(1_000_002, u, Some(&tcp(63, 1, MEMBER, 5)));
        assert_eq!(f.pairs, 0);
        assert_eq!(f.examined, EXAMINED);
    }
}
