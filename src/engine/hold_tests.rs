//! Engine tests of the fragment hold buffer and the ICMP time exceeded (hand-built packets,
//! one behaviour each; the real captures are in `tests/kernel.rs`).

use super::*;
use crate::wire::checksum;
use etherparse::PacketBuilder;
use std::net::Ipv4Addr;

const CLIENT: [u8; 4] = [198, 51, 100, 7];
const VIP: [u8; 4] = [198, 18, 0, 100];
const M: [u8; 4] = [203, 0, 113, 1];

fn config() -> EngineConfig {
    EngineConfig {
        virtual_servers: vec![VirtualServerConfig {
            name: "udp".into(),
            vip: VIP.into(),
            protocol: 17,
            ports: vec![53],
            algorithm: Algorithm::RoundRobin,
            members: vec![M.into()],
            ..VirtualServerConfig::default()
        }],
        ..EngineConfig::default()
    }
}

fn t(ms: u64) -> Timestamp {
    Timestamp(ms * 1_000_000)
}

/// A UDP datagram with a 40-byte payload cut in three fragments (16 + 16 + 16 bytes of the
/// 48-byte UDP datagram), with valid checksums, and the whole datagram.
fn fragments(ttl: u8) -> (Vec<Vec<u8>>, Vec<u8>) {
    fragments_of((CLIENT, 40000), (VIP, 53), ttl)
}

/// [`fragments`] of a datagram from `src` to `dst` (address, port).
fn fragments_of(src: ([u8; 4], u16), dst: ([u8; 4], u16), ttl: u8) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut whole = Vec::new();
    PacketBuilder::ipv4(src.0, dst.0, ttl)
        .udp(src.1, dst.1)
        .write(&mut whole, &[7u8; 40])
        .unwrap();
    let l4 = &whole[20..];
    let frags = (0..3)
        .map(|i| {
            let part = &l4[i * 16..(i + 1) * 16];
            let mut h = whole[..20].to_vec();
            let total = (20 + part.len()) as u16;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
            let flags = if i < 2 { 0x2000 } else { 0 } | (i as u16 * 2);
            h[6..8].copy_from_slice(&flags.to_be_bytes());
            h[10..12].copy_from_slice(&[0, 0]);
            let c = !checksum::sum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            h.extend_from_slice(part);
            h
        })
        .collect();
    (frags, whole)
}

fn emitted(e: &mut Engine) -> Vec<(EmitKind, Vec<u8>)> {
    std::iter::from_fn(|| e.poll_emitted().map(|x| (x.kind, x.bytes.to_vec()))).collect()
}

fn held_outcome(kind: &EmitKind) -> (u64, Outcome) {
    match *kind {
        EmitKind::HeldFragment { hold, outcome } => (hold, outcome),
        other => panic!("not a held fragment: {other:?}"),
    }
}

#[test]
fn later_fragments_first_are_held_then_released_translated_in_arrival_order() {
    let mut e = Engine::new(config());
    let (mut f, whole) = fragments(64);
    assert_eq!(e.handle(t(0), &mut f[2]).verdict, Verdict::Held(1));
    assert_eq!(e.handle(t(1), &mut f[1]).verdict, Verdict::Held(2));
    assert!(emitted(&mut e).is_empty());
    assert_eq!(e.held_fragments(), 2);
    let first = e.handle(t(2), &mut f[0]);
    assert_eq!((first.verdict, first.bound), (Verdict::Translated, true));
    let out = emitted(&mut e);
    assert_eq!(out.len(), 2);
    let mut datagram = f[0][20..].to_vec();
    let mut parts = vec![Vec::new(); 2];
    for (n, (kind, bytes)) in out.iter().enumerate() {
        let (hold, o) = held_outcome(kind);
        assert_eq!(hold, n as u64 + 1, "released in arrival order");
        assert_eq!(
            (o.verdict, o.flow, o.session),
            (Verdict::Translated, Flow::Inbound, 1)
        );
        let ip = Ipv4::parse(bytes).unwrap();
        assert_eq!((ip.dst, ip.src, ip.ttl), (M, CLIENT, 63));
        assert_eq!(checksum::sum(&bytes[..20]), 0xffff, "IP header checksum");
        parts[usize::from(ip.frag_offset) / 2 - 1] = bytes[20..].to_vec();
    }
    assert_eq!(e.held_fragments(), 0);
    // The reassembled translated datagram has a valid UDP checksum (carried by the first).
    for p in parts {
        datagram.extend_from_slice(&p);
    }
    assert_eq!(datagram.len(), whole.len() - 20);
    let pseudo = checksum::pseudo_header(CLIENT, M, 17, datagram.len() as u16);
    assert_eq!(
        checksum::fold(checksum::sum_words(&datagram, pseudo)),
        0xffff
    );
}

/// Client-side view (RFC 2391 §3.1): replies are captured coming from the VIP, so a later
/// fragment of a reply that arrives before its first is held, then released translated like
/// it (from the member), not passed unchanged while its first fragment is rewritten.
#[test]
fn client_side_early_reply_fragment_is_held_and_released_translated() {
    let mut e = Engine::new(EngineConfig {
        view: View::ClientSide,
        ..config()
    });
    let mut q = Vec::new();
    PacketBuilder::ipv4(CLIENT, VIP, 64)
        .udp(40000, 53)
        .write(&mut q, b"query")
        .unwrap();
    assert_eq!(e.handle(t(0), &mut q).verdict, Verdict::Translated);
    let (mut f, _) = fragments_of((VIP, 53), (CLIENT, 40000), 64);
    assert_eq!(e.handle(t(1), &mut f[2]).verdict, Verdict::Held(1));
    assert_eq!(e.handle(t(2), &mut f[1]).verdict, Verdict::Held(2));
    let first = e.handle(t(3), &mut f[0]);
    assert_eq!(
        (first.verdict, first.flow, first.session),
        (Verdict::Translated, Flow::Outbound, 1)
    );
    assert_eq!(Ipv4::parse(&f[0]).unwrap().src, M);
    let out = emitted(&mut e);
    assert_eq!(out.len(), 2);
    for (kind, bytes) in &out {
        let (_, o) = held_outcome(kind);
        assert_eq!(
            (o.verdict, o.flow, o.session),
            (Verdict::Translated, Flow::Outbound, 1)
        );
        let ip = Ipv4::parse(bytes).unwrap();
        // Client-side view: shown as the member sent it, before the router (TTL kept).
        assert_eq!((ip.src, ip.dst, ip.ttl), (M, CLIENT, 64));
        assert_eq!(checksum::sum(&bytes[..20]), 0xffff, "IP header checksum");
    }
    e.finish(t(4));
    let ended: Vec<SessionRecord> = std::iter::from_fn(|| e.poll_event())
        .filter_map(|ev| match ev {
            Event::Ended(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!((ended[0].orig_packets, ended[0].resp_packets), (1, 3));
}

/// LSNAT with NAPT (RFC 2391 §3.2): inside 10.0.0.0/8 leaves from 198.51.100.1.
fn napt_config() -> EngineConfig {
    EngineConfig {
        outside_address: Some(Ipv4Addr::from(NAPT_OUT)),
        napt: Some(NaptConfig {
            inside: vec![(Ipv4Addr::new(10, 0, 0, 0), 8)],
        }),
        ..config()
    }
}

const NAPT_OUT: [u8; 4] = [198, 51, 100, 1];
const INSIDE: [u8; 4] = [10, 0, 0, 5];
const OUTSIDE: [u8; 4] = [192, 0, 2, 53];

/// Asserts that translated fragments `parts` (first one first) reassemble into a UDP datagram
/// from `src` to `dst` with a valid checksum, each with a valid IP header checksum.
fn assert_reassembles(parts: &[&[u8]], src: [u8; 4], dst: [u8; 4]) {
    let mut datagram = Vec::new();
    for p in parts {
        let ip = Ipv4::parse(p).unwrap();
        assert_eq!((ip.src, ip.dst), (src, dst));
        assert_eq!(checksum::sum(&p[..20]), 0xffff, "IP header checksum");
        datagram.extend_from_slice(&p[20..]);
    }
    let pseudo = checksum::pseudo_header(src, dst, 17, datagram.len() as u16);
    assert_eq!(
        checksum::fold(checksum::sum_words(&datagram, pseudo)),
        0xffff
    );
}

/// NAPT sessions' later fragments get their first fragment's translation (RFC 3022 §4.1),
/// both ways: the inside host's leave from the outside address (its private address does not
/// leak), the outside host's reply reaches the inside host.
#[test]
fn napt_later_fragments_are_translated_like_their_first() {
    let mut e = Engine::new(napt_config());
    let (mut f, _) = fragments_of((INSIDE, 40000), (OUTSIDE, 53), 64);
    for (i, p) in f.iter_mut().enumerate() {
        let o = e.handle(t(i as u64), p);
        assert_eq!(
            (o.verdict, o.flow, o.session),
            (Verdict::Translated, Flow::Outbound, 0),
            "fragment {i}"
        );
        assert!(o.is_napt());
    }
    let parts: Vec<&[u8]> = f.iter().map(Vec::as_slice).collect();
    assert_reassembles(&parts, NAPT_OUT, OUTSIDE);
    assert!(f.iter().all(|p| Ipv4::parse(p).unwrap().ttl == 63));

    let (mut r, _) = fragments_of((OUTSIDE, 53), (NAPT_OUT, 40000), 64);
    for (i, p) in r.iter_mut().enumerate() {
        let o = e.handle(t(10 + i as u64), p);
        assert_eq!(
            (o.verdict, o.flow, o.session),
            (Verdict::Translated, Flow::Inbound, 0),
            "reply fragment {i}"
        );
    }
    let parts: Vec<&[u8]> = r.iter().map(Vec::as_slice).collect();
    assert_reassembles(&parts, OUTSIDE, INSIDE);
}

/// Later fragments of a NAPT datagram that come before their first are held (not passed
/// with the inside host's private address, nor as unrelated to the outside address) and
/// released with its translation.
#[test]
fn napt_later_fragments_before_their_first_are_held_and_released_translated() {
    let mut e = Engine::new(napt_config());
    let (mut f, _) = fragments_of((INSIDE, 40000), (OUTSIDE, 53), 64);
    assert_eq!(e.handle(t(0), &mut f[2]).verdict, Verdict::Held(1));
    assert_eq!(e.handle(t(1), &mut f[1]).verdict, Verdict::Held(2));
    assert_eq!(e.handle(t(2), &mut f[0]).verdict, Verdict::Translated);
    let out = emitted(&mut e);
    assert_eq!(out.len(), 2);
    for (kind, _) in &out {
        let (_, o) = held_outcome(kind);
        assert_eq!(
            (o.verdict, o.flow, o.session),
            (Verdict::Translated, Flow::Outbound, 0)
        );
    }
    assert_reassembles(&[&f[0], &out[1].1, &out[0].1], NAPT_OUT, OUTSIDE);

    let (mut r, _) = fragments_of((OUTSIDE, 53), (NAPT_OUT, 40000), 64);
    assert_eq!(e.handle(t(3), &mut r[1]).verdict, Verdict::Held(3));
    assert_eq!(e.handle(t(4), &mut r[0]).verdict, Verdict::Translated);
    let out = emitted(&mut e);
    let (_, o) = held_outcome(&out[0].0);
    assert_eq!((o.verdict, o.flow), (Verdict::Translated, Flow::Inbound));
    assert_eq!(e.handle(t(5), &mut r[2]).verdict, Verdict::Translated);
    assert_reassembles(&[&r[0], &out[0].1, &r[2]], OUTSIDE, INSIDE);
}

#[test]
fn a_held_fragment_times_out_and_is_reported() {
    let mut e = Engine::new(config());
    let (mut f, _) = fragments(64);
    assert_eq!(e.handle(t(0), &mut f[1]).verdict, Verdict::Held(1));
    e.advance(t(29_999));
    assert!(emitted(&mut e).is_empty());
    e.advance(t(30_000));
    let out = emitted(&mut e);
    assert_eq!(out.len(), 1);
    let (hold, o) = held_outcome(&out[0].0);
    assert_eq!(hold, 1);
    assert_eq!(o.verdict, Verdict::Drop(DropReason::FragmentHoldTimeout));
    assert!(out[0].1.is_empty(), "a dropped fragment has no bytes");
    // Its first fragment, too late, is translated alone.
    assert_eq!(e.handle(t(30_001), &mut f[0]).verdict, Verdict::Translated);
    assert!(emitted(&mut e).is_empty());
}

#[test]
fn the_buffer_is_bounded_and_never_evicts() {
    let cfg = EngineConfig {
        fragment_hold_max: 1,
        ..config()
    };
    let mut e = Engine::new(cfg);
    let (mut f, _) = fragments(64);
    assert_eq!(e.handle(t(0), &mut f[2]).verdict, Verdict::Held(1));
    assert_eq!(
        e.handle(t(1), &mut f[1]).verdict,
        Verdict::Drop(DropReason::FragmentHoldFull)
    );
    let cfg = EngineConfig {
        fragment_hold_bytes: 30,
        ..config()
    };
    let mut e = Engine::new(cfg);
    assert_eq!(
        e.handle(t(0), &mut f[2].clone()).verdict,
        Verdict::Drop(DropReason::FragmentHoldFull)
    );
    let cfg = EngineConfig {
        fragment_hold_max: 0,
        ..config()
    };
    let mut e = Engine::new(cfg);
    assert_eq!(
        e.handle(t(0), &mut f[2].clone()).verdict,
        Verdict::Drop(DropReason::FragmentWithoutFirst)
    );
}

#[test]
fn held_fragments_share_a_dropped_first_fragments_fate_and_end_of_replay() {
    let mut e = Engine::new(config());
    let (mut f, _) = fragments(1);
    assert_eq!(e.handle(t(0), &mut f[1]).verdict, Verdict::Held(1));
    assert_eq!(
        e.handle(t(1), &mut f[0]).verdict,
        Verdict::Drop(DropReason::TtlExceeded)
    );
    let out = emitted(&mut e);
    assert_eq!(
        held_outcome(&out[0].0).1.verdict,
        Verdict::Drop(DropReason::TtlExceeded)
    );
    // A later fragment after its dropped first fragment: dropped at once, for the same reason.
    assert_eq!(
        e.handle(t(2), &mut f[2].clone()).verdict,
        Verdict::Drop(DropReason::TtlExceeded)
    );
    // A datagram whose first fragment never comes: dropped as such at the end.
    let mut other = f[2].clone();
    other[4..6].copy_from_slice(&0x1235u16.to_be_bytes());
    other[10..12].copy_from_slice(&[0, 0]);
    let c = !checksum::sum(&other[..20]);
    other[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(e.handle(t(2), &mut other).verdict, Verdict::Held(2));
    e.finish(t(3));
    let out = emitted(&mut e);
    assert_eq!(
        held_outcome(&out[0].0).1.verdict,
        Verdict::Drop(DropReason::FragmentWithoutFirst)
    );
}

fn ttl1_query() -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv4(CLIENT, VIP, 1)
        .udp(40000, 53)
        .write(&mut p, b"query")
        .unwrap();
    p
}

#[test]
fn time_exceeded_comes_from_the_vip_or_the_configured_address() {
    let quiet = Engine::new(config()).handle(t(0), &mut ttl1_query());
    assert_eq!(quiet.verdict, Verdict::Drop(DropReason::TtlExceeded));
    let cfg = EngineConfig {
        icmp_time_exceeded: true,
        ..config()
    };
    for (address, src) in [(None, VIP), (Some([198, 51, 100, 1]), [198, 51, 100, 1])] {
        let mut e = Engine::new(EngineConfig {
            outside_address: address.map(Ipv4Addr::from),
            ..cfg.clone()
        });
        let p = ttl1_query();
        let o = e.handle(t(0), &mut p.clone());
        assert_eq!(
            (o.verdict, o.bound),
            (Verdict::Drop(DropReason::TtlExceeded), false)
        );
        assert_eq!(e.live_sessions(), 0, "a TTL-1 packet binds no session");
        let out = emitted(&mut e);
        assert_eq!(out.len(), 1);
        let EmitKind::IcmpTimeExceeded { tuple, session } = out[0].0 else {
            panic!("{:?}", out[0].0)
        };
        assert_eq!((tuple.src, tuple.dst, session), (src, CLIENT, 0));
        let b = &out[0].1;
        assert_eq!((b[9], b[20], b[21]), (1, 11, 0));
        assert_eq!(&b[12..16], &src);
        assert_eq!(&b[28..], &p[..], "quotes the datagram as it arrived");
    }
}

#[test]
fn no_time_exceeded_toward_a_member_without_an_inside_address() {
    let cfg = EngineConfig {
        icmp_time_exceeded: true,
        ..config()
    };
    let mut e = Engine::new(cfg.clone());
    let mut q = ttl1_query();
    q[8] = 64;
    q[10..12].copy_from_slice(&[0, 0]);
    let c = !checksum::sum(&q[..20]);
    q[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(e.handle(t(0), &mut q.clone()).verdict, Verdict::Translated);
    let mut reply = Vec::new();
    PacketBuilder::ipv4(M, CLIENT, 1)
        .udp(53, 40000)
        .write(&mut reply, b"answer")
        .unwrap();
    let o = e.handle(t(1), &mut reply.clone());
    assert_eq!(o.verdict, Verdict::Drop(DropReason::TtlExceeded));
    assert!(emitted(&mut e).is_empty());
    let mut e = Engine::new(EngineConfig {
        inside_address: Some(Ipv4Addr::new(203, 0, 113, 254)),
        ..cfg
    });
    e.handle(t(0), &mut q.clone());
    e.handle(t(1), &mut reply);
    let out = emitted(&mut e);
    let EmitKind::IcmpTimeExceeded { tuple, .. } = out[0].0 else {
        panic!()
    };
    assert_eq!((tuple.src, tuple.dst), ([203, 0, 113, 254], M));
}
