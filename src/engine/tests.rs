//! Engine unit tests on hand-built packets (one behaviour each). Real captures are tested in
//! `tests/`.

use super::*;
use crate::time::Timestamp;
use crate::wire::ipv4::Ipv4;
use etherparse::PacketBuilder;
use std::net::Ipv4Addr;

const CLIENT: [u8; 4] = [198, 51, 100, 7];
const VIP: [u8; 4] = [198, 18, 0, 100];
const M: [[u8; 4]; 3] = [[203, 0, 113, 1], [203, 0, 113, 2], [203, 0, 113, 3]];

fn config(algorithm: Algorithm) -> EngineConfig {
    let members: Vec<Ipv4Addr> = M.iter().map(|&m| m.into()).collect();
    EngineConfig {
        virtual_servers: vec![
            VirtualServerConfig {
                name: "web".into(),
                vip: VIP.into(),
                protocol: 6,
                ports: vec![80],
                algorithm,
                members: members.clone(),
                ..VirtualServerConfig::default()
            },
            VirtualServerConfig {
                name: "dns".into(),
                vip: VIP.into(),
                protocol: 17,
                ports: vec![53],
                algorithm,
                members,
                ..VirtualServerConfig::default()
            },
        ],
        ..EngineConfig::default()
    }
}

fn tcp(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    seq: u32,
    ack: u32,
    flags: &str,
) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(src, dst, 64).tcp(sport, dport, seq, 65535);
    for f in flags.chars() {
        b = match f {
            'S' => b.syn(),
            'A' => b.ack(ack),
            'F' => b.fin(),
            'R' => b.rst(),
            _ => b,
        };
    }
    let mut out = Vec::new();
    b.write(&mut out, &[]).unwrap();
    out
}

fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut out, b"query")
        .unwrap();
    out
}

fn t(s: u64) -> Timestamp {
    Timestamp(s * 1_000_000_000)
}

fn events(e: &mut Engine) -> Vec<Event> {
    std::iter::from_fn(|| e.poll_event()).collect()
}

fn ended(e: &mut Engine) -> Vec<SessionRecord> {
    events(e)
        .into_iter()
        .filter_map(|ev| match ev {
            Event::Ended(r) => Some(r),
            _ => None,
        })
        .collect()
}

#[test]
fn binds_on_syn_and_translates_both_ways() {
    let mut e = Engine::new(config(Algorithm::RoundRobin));
    let mut syn = tcp(CLIENT, 2745, VIP, 80, 100, 0, "S");
    let o = e.handle(t(1), &mut syn);
    assert_eq!(o.verdict, Verdict::Translated);
    assert!(o.bound);
    assert_eq!(o.after.dst, M[0]);
    let ip = Ipv4::parse(&syn).unwrap();
    assert_eq!((ip.dst, ip.ttl), (M[0], 63));
    assert_eq!(ip.header_checksum_error(&syn), 0);
    assert_eq!(ip.l4_checksum_error(&syn), Some(0));

    let mut synack = tcp(M[0], 80, CLIENT, 2745, 900, 101, "SA");
    let o = e.handle(t(1), &mut synack);
    assert_eq!(
        (o.verdict, o.flow, o.session),
        (Verdict::Translated, Flow::Outbound, 1)
    );
    let ip = Ipv4::parse(&synack).unwrap();
    assert_eq!(ip.src, VIP);
    assert_eq!(ip.l4_checksum_error(&synack), Some(0));
}

#[test]
fn tcp_without_syn_and_without_session_is_dropped() {
    let mut e = Engine::new(config(Algorithm::RoundRobin));
    let mut ack = tcp(CLIENT, 2745, VIP, 80, 100, 5, "A");
    assert_eq!(
        e.handle(t(1), &mut ack).verdict,
        Verdict::Drop(DropReason::NoSession)
    );
    let mut synack = tcp(CLIENT, 2745, VIP, 80, 100, 5, "SA");
    assert_eq!(
        e.handle(t(1), &mut synack).verdict,
        Verdict::Drop(DropReason::NoSession)
    );
    assert_eq!(e.live_sessions(), 0);
}

#[test]
fn round_robin_and_least_load_choose_deterministically() {
    let mut e = Engine::new(config(Algorithm::RoundRobin));
    let picks: Vec<[u8; 4]> = (0..4)
        .map(|i| {
            e.handle(t(1), &mut tcp(CLIENT, 3000 + i, VIP, 80, 1, 0, "S"))
                .after
                .dst
        })
        .collect();
    assert_eq!(picks, [M[0], M[1], M[2], M[0]]);

    let mut e = Engine::new(config(Algorithm::LeastLoad));
    let a = e
        .handle(t(1), &mut tcp(CLIENT, 3000, VIP, 80, 1, 0, "S"))
        .after
        .dst;
    let b = e
        .handle(t(1), &mut tcp(CLIENT, 3001, VIP, 80, 1, 0, "S"))
        .after
        .dst;
    assert_eq!((a, b), (M[0], M[1]));
    // Close the first session with RST; after the grace it is unbound and M[0] is least loaded
    // again (tie with M[2] broken by configured order).
    e.handle(t(2), &mut tcp(CLIENT, 3000, VIP, 80, 2, 0, "R"));
    let c = e
        .handle(t(10), &mut tcp(CLIENT, 3002, VIP, 80, 1, 0, "S"))
        .after
        .dst;
    assert_eq!(c, M[0]);
}

#[test]
fn fin_handshake_ends_after_grace_and_idle_udp_times_out() {
    let mut e = Engine::new(config(Algorithm::RoundRobin));
    e.handle(t(0), &mut tcp(CLIENT, 2745, VIP, 80, 100, 0, "S"));
    e.handle(t(0), &mut tcp(M[0], 80, CLIENT, 2745, 900, 101, "SA"));
    e.handle(t(0), &mut tcp(CLIENT, 2745, VIP, 80, 101, 901, "A"));
    e.handle(t(1), &mut tcp(CLIENT, 2745, VIP, 80, 101, 901, "FA"));
    e.handle(t(1), &mut tcp(M[0], 80, CLIENT, 2745, 901, 102, "FA"));
    e.handle(t(1), &mut tcp(CLIENT, 2745, VIP, 80, 102, 902, "A"));
    assert_eq!(e.live_sessions(), 1, "still in its grace period");
    e.handle(t(5), &mut udp(CLIENT, 5000, VIP, 53));
    let r = ended(&mut e);
    let tcp_end = r.iter().find(|r| r.number == 1).unwrap();
    assert_eq!(tcp_end.end, EndReason::Fin);
    assert_eq!(tcp_end.ended_at, t(3));
    assert_eq!(tcp_end.history.as_str(), "ShAFf");
    assert_eq!((tcp_end.orig_packets, tcp_end.resp_packets), (4, 2));
    // The UDP session idles out 60 s after its last packet, fired by a later packet's time.
    e.handle(t(66), &mut udp([198, 51, 100, 8], 5000, VIP, 53));
    let r = ended(&mut e);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].end, r[0].ended_at), (EndReason::IdleTimeout, t(65)));
    e.finish(t(70));
    assert_eq!(ended(&mut e)[0].end, EndReason::OpenAtEnd);
}

#[test]
fn table_limit_retires_the_longest_idle() {
    let mut cfg = config(Algorithm::RoundRobin);
    cfg.max_sessions = Some(2);
    let mut e = Engine::new(cfg);
    e.handle(t(0), &mut udp(CLIENT, 1, VIP, 53));
    e.handle(t(1), &mut udp(CLIENT, 2, VIP, 53));
    e.handle(t(2), &mut udp(CLIENT, 1, VIP, 53)); // session 1 used again: 2 is now longest idle
    e.handle(t(3), &mut udp(CLIENT, 3, VIP, 53));
    let r = ended(&mut e);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].number, r[0].end), (2, EndReason::Retired));
}

#[test]
fn ttl_one_is_not_forwarded_and_zero_udp_checksum_stays_zero() {
    let mut e = Engine::new(config(Algorithm::RoundRobin));
    let mut p = udp(CLIENT, 1, VIP, 53);
    p[8] = 1;
    assert_eq!(
        e.handle(t(0), &mut p).verdict,
        Verdict::Drop(DropReason::TtlExceeded)
    );
    let mut p = udp(CLIENT, 1, VIP, 53);
    p[26] = 0;
    p[27] = 0;
    let o = e.handle(t(0), &mut p);
    assert_eq!(o.verdict, Verdict::Translated);
    assert_eq!(&p[26..28], &[0, 0]);
}

#[test]
fn bad_input_checksum_stays_bad_by_the_same_amount() {
    let mut e = Engine::new(config(Algorithm::RoundRobin));
    let mut p = udp(CLIENT, 1, VIP, 53);
    p[27] ^= 0x5a;
    let err_in = Ipv4::parse(&p).unwrap().l4_checksum_error(&p).unwrap();
    assert_ne!(err_in, 0);
    let o = e.handle(t(0), &mut p);
    assert_eq!(o.faults.l4, Some(err_in));
    assert_eq!(Ipv4::parse(&p).unwrap().l4_checksum_error(&p), Some(err_in));
}

#[test]
fn unrelated_and_unserved_pass_through() {
    let mut e = Engine::new(config(Algorithm::RoundRobin));
    let mut p = udp(CLIENT, 1, [192, 0, 2, 9], 53);
    let copy = p.clone();
    assert_eq!(
        e.handle(t(0), &mut p).verdict,
        Verdict::Pass(PassReason::Unrelated)
    );
    assert_eq!(p, copy);
    let mut p = udp(CLIENT, 1, VIP, 54);
    assert_eq!(
        e.handle(t(0), &mut p).verdict,
        Verdict::Pass(PassReason::NotAService)
    );
}

#[test]
fn timestamps_going_backwards_hold_time() {
    let mut e = Engine::new(config(Algorithm::RoundRobin));
    e.handle(t(100), &mut udp(CLIENT, 1, VIP, 53));
    e.handle(t(50), &mut udp(CLIENT, 1, VIP, 53));
    assert_eq!(e.stats().timestamps_backwards, 1);
    e.finish(t(0));
    let r = ended(&mut e);
    assert_eq!((r[0].first, r[0].last), (t(100), t(100)));
}
