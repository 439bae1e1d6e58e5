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

const ROUTER_IN: [u8; 4] = [203, 0, 113, 254];
const ROUTER_OUT: [u8; 4] = [198, 51, 100, 1];

fn ls_napt() -> EngineConfig {
    EngineConfig {
        mode: Mode::LsNapt,
        inside_address: Some(ROUTER_IN.into()),
        ..config(Algorithm::RoundRobin)
    }
}

fn parsed(b: &[u8]) -> (Ipv4, u16, u16) {
    let ip = Ipv4::parse(b).unwrap();
    assert_eq!(ip.header_checksum_error(b), 0);
    assert_eq!(ip.l4_checksum_error(b), Some(0));
    let (s, d) = match ip.l4(b) {
        crate::wire::ipv4::L4::Udp { sport, dport, .. }
        | crate::wire::ipv4::L4::Tcp { sport, dport, .. } => (sport, dport),
        _ => (0, 0),
    };
    (ip, s, d)
}

#[test]
fn ls_napt_translates_the_client_side_and_moves_a_clashing_port() {
    let mut e = Engine::new(EngineConfig {
        virtual_servers: vec![VirtualServerConfig {
            members: vec![M[0].into()],
            ..config(Algorithm::RoundRobin).virtual_servers[1].clone()
        }],
        ..ls_napt()
    });
    let b = [198, 51, 100, 23];
    let mut q = udp(CLIENT, 40000, VIP, 53);
    e.handle(t(1), &mut q);
    let (ip, s, d) = parsed(&q);
    assert_eq!((ip.src, s, ip.dst, d), (ROUTER_IN, 40000, M[0], 53));
    // Another client, same port, same member: the next free port.
    let mut q2 = udp(b, 40000, VIP, 53);
    let o = e.handle(t(1), &mut q2);
    assert_eq!((o.after.src, o.after.sport), (ROUTER_IN, 40001));
    // Replies come back to the router's address and port and go to each client.
    let mut r = udp(M[0], 53, ROUTER_IN, 40001);
    let o = e.handle(t(2), &mut r);
    assert_eq!(
        (o.verdict, o.flow, o.session),
        (Verdict::Translated, Flow::Outbound, 2)
    );
    let (ip, s, d) = parsed(&r);
    assert_eq!((ip.src, s, ip.dst, d), (VIP, 53, b, 40000));
    let mut r = udp(M[0], 53, ROUTER_IN, 40000);
    e.handle(t(2), &mut r);
    let (ip, _, d) = parsed(&r);
    assert_eq!((ip.dst, d), (CLIENT, 40000));
    // Both idle out: the ports are free again, so a third client keeps its own port.
    e.advance(t(100));
    let recs = ended(&mut e);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1].translated.sport, 40001);
    let mut q3 = udp([198, 51, 100, 99], 40000, VIP, 53);
    assert_eq!(e.handle(t(101), &mut q3).after.sport, 40000);
}

#[test]
fn ls_napt_client_ports_below_1024_and_icmp_ids() {
    let mut e = Engine::new(EngineConfig {
        virtual_servers: vec![
            config(Algorithm::RoundRobin).virtual_servers[0].clone(),
            VirtualServerConfig {
                name: "ping".into(),
                protocol: 1,
                ports: vec![],
                ..config(Algorithm::RoundRobin).virtual_servers[0].clone()
            },
        ],
        ..ls_napt()
    });
    let mut syn = tcp(CLIENT, 80, VIP, 80, 1, 0, "S");
    assert_eq!(e.handle(t(1), &mut syn).after.sport, 1024);
    let (_, s, _) = parsed(&syn);
    assert_eq!(s, 1024);
    let mut ping = Vec::new();
    PacketBuilder::ipv4(CLIENT, VIP, 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut ping, b"x")
        .unwrap();
    // An ICMP query identifier is no TU port: kept when free, whatever its value (as Linux
    // keeps it); only TU ports below 1024 move up (§3.3).
    let o = e.handle(t(1), &mut ping);
    assert_eq!((o.after.src, o.after.sport), (ROUTER_IN, 7));
    let ip = Ipv4::parse(&ping).unwrap();
    assert_eq!(ip.l4_checksum_error(&ping), Some(0));
    let mut reply = Vec::new();
    PacketBuilder::ipv4(M[0], ROUTER_IN, 64)
        .icmpv4_echo_reply(7, 1)
        .write(&mut reply, b"x")
        .unwrap();
    let o = e.handle(t(1), &mut reply);
    assert_eq!(
        (o.verdict, o.after.dst, o.after.sport),
        (Verdict::Translated, CLIENT, 7)
    );
    assert_eq!(
        Ipv4::parse(&reply).unwrap().l4_checksum_error(&reply),
        Some(0)
    );
}

#[test]
fn ls_napt_refuses_a_session_when_the_member_pool_is_exhausted() {
    let mut e = Engine::new(EngineConfig {
        virtual_servers: vec![VirtualServerConfig {
            members: vec![M[0].into()],
            ..config(Algorithm::RoundRobin).virtual_servers[1].clone()
        }],
        ..ls_napt()
    });
    let n = u32::from(tu_port::LAST - tu_port::FIRST) + 1;
    for i in 0..n {
        let c = (0xC612_0000u32 + i).to_be_bytes(); // 198.18.x.y clients
        let mut q = udp(c, 5000, VIP, 53);
        assert_eq!(e.handle(t(1), &mut q).verdict, Verdict::Translated, "{i}");
    }
    let mut q = udp(CLIENT, 5000, VIP, 53);
    let o = e.handle(t(1), &mut q);
    assert_eq!(o.verdict, Verdict::Drop(DropReason::NaptPortsExhausted));
    assert_eq!(
        DropReason::NaptPortsExhausted.name(),
        "napt-ports-exhausted"
    );
    assert_eq!(e.live_sessions(), n as usize);
}

#[test]
fn static_mapping_sends_new_sessions_to_the_backup_port() {
    let backup = [203, 0, 113, 9];
    let mut e = Engine::new(EngineConfig {
        static_mappings: vec![StaticMapping {
            member: M[0].into(),
            port: Some(80),
            backup: backup.into(),
            backup_port: Some(8080),
        }],
        ..config(Algorithm::RoundRobin)
    });
    let mut syn = tcp(CLIENT, 2745, VIP, 80, 1, 0, "S");
    let o = e.handle(t(1), &mut syn);
    assert_eq!((o.after.dst, o.after.dport), (backup, 8080));
    assert_eq!(e.members()[o.member.unwrap()].addr, Ipv4Addr::from(backup));
    let mut synack = tcp(backup, 8080, CLIENT, 2745, 9, 2, "SA");
    let o = e.handle(t(1), &mut synack);
    assert_eq!(o.verdict, Verdict::Translated);
    let (ip, s, d) = parsed(&synack);
    assert_eq!((ip.src, s, ip.dst, d), (VIP, 80, CLIENT, 2745));
}

#[test]
fn napt_translates_inside_initiated_sessions_and_their_replies() {
    let outside = [192, 0, 2, 50];
    let mut e = Engine::new(EngineConfig {
        outside_address: Some(ROUTER_OUT.into()),
        napt: Some(NaptConfig {
            inside: vec![([203, 0, 113, 0].into(), 24)],
        }),
        ..config(Algorithm::RoundRobin)
    });
    let mut q = udp(M[1], 33000, outside, 53);
    let o = e.handle(t(1), &mut q);
    assert_eq!(
        (o.verdict, o.flow, o.session),
        (Verdict::Translated, Flow::Outbound, 0)
    );
    let (ip, s, _) = parsed(&q);
    assert_eq!((ip.src, s), (ROUTER_OUT, 33000));
    let mut q2 = udp(M[2], 33000, outside, 53);
    e.handle(t(1), &mut q2);
    let (_, s, _) = parsed(&q2);
    assert_eq!(s, 33001);
    let mut r = udp(outside, 53, ROUTER_OUT, 33001);
    let o = e.handle(t(2), &mut r);
    assert_eq!((o.verdict, o.flow), (Verdict::Translated, Flow::Inbound));
    let (ip, _, d) = parsed(&r);
    assert_eq!((ip.dst, d), (M[2], 33000));
    // After the idle timeout the mapping is gone and its port free.
    e.advance(t(200));
    let mut late = udp(outside, 53, ROUTER_OUT, 33001);
    assert_eq!(
        e.handle(t(200), &mut late).verdict,
        Verdict::Pass(PassReason::Unrelated)
    );
    let mut q3 = udp(M[0], 33001, outside, 53);
    e.handle(t(201), &mut q3);
    assert_eq!(parsed(&q3).1, 33001);
}

#[test]
fn a_router_owned_vip_drops_other_ports() {
    let mut cfg = config(Algorithm::RoundRobin);
    let mut q = udp(CLIENT, 5000, VIP, 5353);
    assert_eq!(
        Engine::new(cfg.clone()).handle(t(1), &mut q).verdict,
        Verdict::Pass(PassReason::NotAService)
    );
    cfg.router_addresses = vec![VIP.into()];
    let mut q = udp(CLIENT, 5000, VIP, 5353);
    assert_eq!(
        Engine::new(cfg).handle(t(1), &mut q).verdict,
        Verdict::Drop(DropReason::ServiceRestricted)
    );
}

/// An ICMP port unreachable from `src` to `dst` quoting `quote` (built by etherparse).
fn port_unreachable(src: [u8; 4], dst: [u8; 4], quote: &[u8]) -> Vec<u8> {
    use etherparse::Icmpv4Type;
    use etherparse::icmpv4::DestUnreachableHeader;
    let mut out = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            DestUnreachableHeader::Port,
        ))
        .write(&mut out, quote)
        .unwrap();
    out
}

/// An ICMP port unreachable quoting an LS-NAPT session, both ways: every address, TU port and
/// checksum inside and outside follows the session's translated tuple.
#[test]
fn icmp_errors_quoting_ls_napt_sessions_use_the_translated_tuple() {
    let cfg = || EngineConfig {
        virtual_servers: vec![VirtualServerConfig {
            members: vec![M[0].into()],
            ..config(Algorithm::RoundRobin).virtual_servers[1].clone()
        }],
        ..ls_napt()
    };
    let check_quote = |b: &[u8], src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16| {
        let ip = Ipv4::parse(b).unwrap();
        assert_eq!(ip.header_checksum_error(b), 0);
        assert_eq!(ip.l4_checksum_error(b), Some(0), "ICMP checksum");
        let (inner, s, d) = parsed(&b[ip.ihl + 8..]);
        assert_eq!((inner.src, s, inner.dst, d), (src, sport, dst, dport));
        ip
    };

    // Member side: the member refuses what the router sent it (router:1024 → member:53).
    let mut e = Engine::new(cfg());
    let mut q = udp(CLIENT, 80, VIP, 53); // port < 1024: LS-NAPT gives 1024
    e.handle(t(1), &mut q);
    let mut err = port_unreachable(M[0], ROUTER_IN, &q);
    let o = e.handle(t(1), &mut err);
    assert_eq!(
        (o.verdict, o.flow, o.session),
        (Verdict::Translated, Flow::Outbound, 1)
    );
    let ip = check_quote(&err, CLIENT, 80, VIP, 53);
    assert_eq!((ip.src, ip.dst), (VIP, CLIENT));

    // Client side: the client refuses the member's reply (VIP:53 → client:80).
    let mut e = Engine::new(cfg());
    let mut q = udp(CLIENT, 80, VIP, 53);
    e.handle(t(1), &mut q);
    let mut r = udp(M[0], 53, ROUTER_IN, 1024);
    e.handle(t(1), &mut r);
    let mut err = port_unreachable(CLIENT, VIP, &r);
    let o = e.handle(t(1), &mut err);
    assert_eq!((o.verdict, o.flow), (Verdict::Translated, Flow::Inbound));
    let ip = check_quote(&err, M[0], 53, ROUTER_IN, 1024);
    assert_eq!((ip.src, ip.dst), (ROUTER_IN, M[0]));
}

/// An ICMP error quoting only what RFC 792 promises, the IP header and 64 bits of a TCP
/// segment (its ports and sequence number, not its flags or checksum), is translated like one
/// quoting more: from the member, the outer source and the quoted destination become the VIP;
/// from the client, toward the member. The ICMP checksum stays right; nothing else changes.
#[test]
fn icmp_errors_quoting_64_bits_of_tcp_are_translated() {
    let mut e = Engine::new(config(Algorithm::RoundRobin));
    let mut syn = tcp(CLIENT, 40001, VIP, 80, 100, 0, "S");
    e.handle(t(1), &mut syn);
    let mut synack = tcp(M[0], 80, CLIENT, 40001, 900, 101, "SA");
    let reply = synack.clone();
    e.handle(t(1), &mut synack);
    for quoted in [4, 8, 12, 13] {
        // Member side: the member refuses the segment the router sent it (client → member:80).
        let mut err = port_unreachable(M[0], CLIENT, &syn[..20 + quoted]);
        let before = err.clone();
        let o = e.handle(t(2), &mut err);
        assert_eq!(
            (o.verdict, o.flow, o.session),
            (Verdict::Translated, Flow::Outbound, 1),
            "{quoted} bytes quoted"
        );
        let ip = Ipv4::parse(&err).unwrap();
        assert_eq!((ip.src, ip.dst), (VIP, CLIENT));
        assert_eq!(ip.header_checksum_error(&err), 0);
        assert_eq!(ip.l4_checksum_error(&err), Some(0), "ICMP checksum");
        let q = &err[28..];
        let inner = Ipv4::parse(q).unwrap();
        assert_eq!((inner.src, inner.dst), (CLIENT, VIP));
        assert_eq!(inner.header_checksum_error(q), 0);
        // Past the quoted IP header, the bytes are as quoted: the ports did not change.
        assert_eq!(q[20..], before[48..], "{quoted} bytes quoted");

        // Client side: the client refuses the reply it got (VIP:80 → client).
        let mut r = reply.clone();
        let mut out = Vec::new();
        {
            let ip = Ipv4::parse(&r).unwrap();
            crate::wire::ipv4::set_src(&mut ip.clone(), &mut r, VIP);
            out.extend_from_slice(&r[..20 + quoted]);
        }
        let mut err = port_unreachable(CLIENT, VIP, &out);
        let o = e.handle(t(3), &mut err);
        assert_eq!(
            (o.verdict, o.flow),
            (Verdict::Translated, Flow::Inbound),
            "{quoted} bytes quoted"
        );
        let ip = Ipv4::parse(&err).unwrap();
        assert_eq!((ip.src, ip.dst), (CLIENT, M[0]));
        assert_eq!(ip.l4_checksum_error(&err), Some(0), "ICMP checksum");
        let inner = Ipv4::parse(&err[28..]).unwrap();
        assert_eq!((inner.src, inner.dst), (M[0], CLIENT));
    }
}

/// An ICMP port unreachable quoting a NAPT session (RFC 2391 §3.2, RFC 3022 §4.3), both ways:
/// from outside it reaches the inside host quoting what that host sent; from inside it leaves
/// from the router's outside address quoting the reply as the outside host sent it.
#[test]
fn icmp_errors_quoting_napt_sessions_are_translated_both_ways() {
    let outside = [192, 0, 2, 50];
    let cfg = || EngineConfig {
        outside_address: Some(ROUTER_OUT.into()),
        napt: Some(NaptConfig {
            inside: vec![([203, 0, 113, 0].into(), 24)],
        }),
        ..config(Algorithm::RoundRobin)
    };
    let check = |b: &[u8], outer: ([u8; 4], [u8; 4]), quote: ([u8; 4], u16, [u8; 4], u16)| {
        let ip = Ipv4::parse(b).unwrap();
        assert_eq!(ip.header_checksum_error(b), 0);
        assert_eq!(ip.l4_checksum_error(b), Some(0), "ICMP checksum");
        let inner = &b[ip.ihl + 8..];
        let qip = Ipv4::parse(inner).unwrap();
        assert_eq!(qip.header_checksum_error(inner), 0, "quoted IP checksum");
        let (q, s, d) = parsed(inner);
        assert_eq!((ip.src, ip.dst), outer);
        assert_eq!((q.src, s, q.dst, d), quote);
    };
    // From outside: the outside host refuses what the router sent (router:33000 → outside:53).
    let mut e = Engine::new(cfg());
    let mut q = udp(M[1], 33000, outside, 53);
    e.handle(t(1), &mut q);
    let mut err = port_unreachable(outside, ROUTER_OUT, &q);
    let o = e.handle(t(1), &mut err);
    assert_eq!(
        (o.verdict, o.flow, o.session),
        (Verdict::Translated, Flow::Inbound, 0)
    );
    check(&err, (outside, M[1]), (M[1], 33000, outside, 53));

    // From inside: the inside host refuses the reply it got (outside:53 → M:33000).
    let mut e = Engine::new(cfg());
    let mut q = udp(M[1], 33000, outside, 53);
    e.handle(t(1), &mut q);
    let mut r = udp(outside, 53, ROUTER_OUT, 33000);
    e.handle(t(1), &mut r);
    let mut err = port_unreachable(M[1], outside, &r);
    let o = e.handle(t(1), &mut err);
    assert_eq!((o.verdict, o.flow), (Verdict::Translated, Flow::Outbound));
    check(
        &err,
        (ROUTER_OUT, outside),
        (outside, 53, ROUTER_OUT, 33000),
    );
}

#[test]
fn precomputed_packets_are_handled_as_plain_ones() {
    // The same packets, with a bad IP and a bad UDP checksum among them, through `handle` and
    // through `handle_precomputed`: the same outcomes, the same bytes out.
    let mut plain = Engine::new(config(Algorithm::RoundRobin));
    let mut given = Engine::new(config(Algorithm::RoundRobin));
    let mut bad_ip = udp(CLIENT, 7, VIP, 53);
    bad_ip[10] ^= 0x11;
    let mut bad_udp = udp(CLIENT, 8, VIP, 53);
    bad_udp[27] ^= 0x5a;
    let packets = [
        tcp(CLIENT, 2745, VIP, 80, 100, 0, "S"),
        tcp(M[0], 80, CLIENT, 2745, 900, 101, "SA"),
        bad_ip,
        bad_udp,
        udp(CLIENT, 9, [198, 51, 100, 1], 53),
    ];
    for (i, p) in packets.iter().enumerate() {
        let pre = super::precompute(p);
        assert_eq!(
            pre.key_hash,
            lookup::quick_key(p).map(|k| super::flow_table::hash(&k))
        );
        let (mut a, mut b) = (p.clone(), p.clone());
        let oa = plain.handle(t(i as u64), &mut a);
        let ob = given.handle_precomputed(t(i as u64), &mut b, &pre);
        assert_eq!(format!("{oa:?}"), format!("{ob:?}"), "packet {i}");
        assert_eq!(a, b, "packet {i}");
    }
    let ip = Ipv4::parse(&packets[2]).unwrap();
    assert_eq!(
        super::precompute(&packets[2]).ip_error,
        ip.header_checksum_error(&packets[2])
    );
    assert_ne!(super::precompute(&packets[2]).ip_error, 0);
    assert_ne!(super::precompute(&packets[3]).l4_error, Some(0));
    assert_eq!(
        super::precompute(&[0x60, 0, 0]),
        super::Precomputed::default()
    );
}

/// RFC 2391 figure 2: the router's single registered address is both the NAPT outside address
/// and the VIP, with services TCP 80, 8080 and UDP 9999 (as `napt.toml` of the audit).
fn figure2() -> EngineConfig {
    let members: Vec<Ipv4Addr> = M.iter().map(|&m| m.into()).collect();
    EngineConfig {
        outside_address: Some(VIP.into()),
        router_addresses: vec![VIP.into()],
        napt: Some(NaptConfig {
            inside: vec![([203, 0, 113, 0].into(), 24)],
        }),
        virtual_servers: vec![
            VirtualServerConfig {
                name: "web".into(),
                vip: VIP.into(),
                protocol: 6,
                ports: vec![80, 8080],
                members: members.clone(),
                ..VirtualServerConfig::default()
            },
            VirtualServerConfig {
                name: "dns".into(),
                vip: VIP.into(),
                protocol: 17,
                ports: vec![9999],
                members,
                ..VirtualServerConfig::default()
            },
        ],
        ..EngineConfig::default()
    }
}

/// §3.2 with the VIP as the outside address: NAPT never hands an inside host a port that is
/// a load-shared service of that address, so the outside host's replies come back to the
/// inside host instead of starting a load-shared session (UDP) or being dropped (TCP).
#[test]
fn napt_never_takes_a_service_port_of_the_outside_address() {
    let mut e = Engine::new(figure2());
    let outside = [192, 0, 2, 53];
    let mut q = udp(M[1], 9999, outside, 53);
    let o = e.handle(t(1), &mut q);
    assert_eq!((o.verdict, o.session), (Verdict::Translated, 0));
    let (ip, s, _) = parsed(&q);
    assert_eq!((ip.src, s), (VIP, 10000), "9999 is the dns service");
    let mut r = udp(outside, 53, VIP, 10000);
    let o = e.handle(t(1), &mut r);
    assert_eq!(
        (o.verdict, o.flow, o.session, o.bound),
        (Verdict::Translated, Flow::Inbound, 0, false)
    );
    let (ip, _, d) = parsed(&r);
    assert_eq!((ip.dst, d), (M[1], 9999));

    let web = [192, 0, 2, 80];
    let mut syn = tcp(M[2], 8080, web, 443, 1000, 0, "S");
    e.handle(t(2), &mut syn);
    let (ip, s, _) = parsed(&syn);
    assert_eq!((ip.src, s), (VIP, 8081), "8080 is the web service");
    let mut synack = tcp(web, 443, VIP, 8081, 5000, 1001, "SA");
    let o = e.handle(t(2), &mut synack);
    assert_eq!((o.verdict, o.flow), (Verdict::Translated, Flow::Inbound));
    let (ip, _, d) = parsed(&synack);
    assert_eq!((ip.dst, d), (M[2], 8080));
    // A port that is no service is kept, and nothing was load-shared.
    let mut q = udp(M[1], 9998, outside, 53);
    e.handle(t(3), &mut q);
    assert_eq!(parsed(&q).1, 9998);
    assert_eq!(e.live_sessions(), 0);
}

/// LS-NAPT (§3.3) never gives a session a TU port that is a load-shared service of the
/// router's address (here the VIP), as NAPT does not (§3.2): the client's 8080, a service of
/// the VIP, becomes 8081, and the member's replies to 8081 belong to the client's session.
#[test]
fn ls_napt_never_takes_a_service_port_of_the_vip() {
    let mut e = Engine::new(EngineConfig {
        mode: Mode::LsNapt,
        ..figure2()
    });
    let mut syn = tcp(CLIENT, 8080, VIP, 80, 100, 0, "S");
    let o = e.handle(t(1), &mut syn);
    assert_eq!((o.after.src, o.after.sport, o.after.dst), (VIP, 8081, M[0]));
    let mut synack = tcp(M[0], 80, VIP, 8081, 900, 101, "SA");
    let o = e.handle(t(1), &mut synack);
    assert_eq!(
        (o.verdict, o.flow, o.session, o.bound),
        (Verdict::Translated, Flow::Outbound, 1, false)
    );
    let (ip, s, d) = parsed(&synack);
    assert_eq!((ip.src, s, ip.dst, d), (VIP, 80, CLIENT, 8080));
    let mut ack = tcp(CLIENT, 8080, VIP, 80, 101, 901, "A");
    assert_eq!(e.handle(t(1), &mut ack).verdict, Verdict::Translated);
    assert_eq!(e.live_sessions(), 1);
}

/// Figure 2 NAPT with the timeouts of the audit's `napt.toml`: `tcp` 24 h, `tcp_opening`
/// 10 s, `tcp_closing` 20 s, `tcp_rst` 30 s, grace 2 s.
fn napt_timeouts() -> EngineConfig {
    EngineConfig {
        outside_address: Some(ROUTER_OUT.into()),
        napt: Some(NaptConfig {
            inside: vec![([203, 0, 113, 0].into(), 24)],
        }),
        timeouts: Timeouts {
            tcp_opening: Some(crate::time::Span::from_secs(10)),
            tcp_closing: Some(crate::time::Span::from_secs(20)),
            tcp_rst: Some(crate::time::Span::from_secs(30)),
            ..Timeouts::default()
        },
        ..config(Algorithm::RoundRobin)
    }
}

/// Opens a NAPT TCP connection from M[1]:`port` to `outside`:443 at `at`, returning the
/// router's port; with `established`, the inside host acknowledges the SYN-ACK.
fn napt_connect(e: &mut Engine, at: u64, port: u16, outside: [u8; 4], established: bool) -> u16 {
    let mut syn = tcp(M[1], port, outside, 443, 1000, 0, "S");
    assert_eq!(e.handle(t(at), &mut syn).verdict, Verdict::Translated);
    let router = parsed(&syn).1;
    let mut synack = tcp(outside, 443, ROUTER_OUT, router, 5000, 1001, "SA");
    assert_eq!(e.handle(t(at), &mut synack).verdict, Verdict::Translated);
    if established {
        let mut ack = tcp(M[1], port, outside, 443, 1001, 5001, "A");
        assert_eq!(e.handle(t(at), &mut ack).verdict, Verdict::Translated);
    }
    router
}

/// NAPT TCP sessions idle out by their state's timeout, like load-shared ones (RFC 5382 §5,
/// RFC 7857 §2.1): `tcp` once established, `tcp_opening` before, `tcp_closing` after a FIN.
#[test]
fn napt_tcp_idle_timeout_follows_the_state() {
    let outside = [192, 0, 2, 80];
    let mut e = Engine::new(napt_timeouts());
    let router = napt_connect(&mut e, 0, 40000, outside, true);
    // Established and idle 60 s (> tcp_opening): still there, both ways.
    let mut data = tcp(M[1], 40000, outside, 443, 1001, 5001, "A");
    let o = e.handle(t(60), &mut data);
    assert_eq!((o.verdict, o.flow), (Verdict::Translated, Flow::Outbound));
    let mut back = tcp(outside, 443, ROUTER_OUT, router, 5001, 1001, "A");
    assert_eq!(e.handle(t(61), &mut back).verdict, Verdict::Translated);
    // A FIN: closing, so 20 s idle ends it.
    let mut fin = tcp(M[1], 40000, outside, 443, 1001, 5001, "FA");
    assert_eq!(e.handle(t(70), &mut fin).verdict, Verdict::Translated);
    let mut late = tcp(outside, 443, ROUTER_OUT, router, 5001, 1002, "A");
    assert_eq!(e.handle(t(89), &mut late).verdict, Verdict::Translated);
    e.advance(t(110));
    let mut late = tcp(outside, 443, ROUTER_OUT, router, 5001, 1002, "A");
    assert_eq!(
        e.handle(t(110), &mut late).verdict,
        Verdict::Pass(PassReason::Unrelated)
    );
    // Never acknowledged by the inside host: opening, gone after 10 s.
    let router = napt_connect(&mut e, 200, 40001, outside, false);
    e.advance(t(210));
    let mut synack = tcp(outside, 443, ROUTER_OUT, router, 5000, 1001, "SA");
    assert_eq!(
        e.handle(t(210), &mut synack).verdict,
        Verdict::Pass(PassReason::Unrelated)
    );
}

/// A NAPT TCP session reset by either side is kept `tcp_rst` (30 s), not the close grace.
#[test]
fn napt_reset_session_is_kept_tcp_rst() {
    let outside = [192, 0, 2, 80];
    let mut e = Engine::new(napt_timeouts());
    let router = napt_connect(&mut e, 0, 40001, outside, true);
    let mut rst = tcp(outside, 443, ROUTER_OUT, router, 5001, 1001, "RA");
    assert_eq!(e.handle(t(10), &mut rst).verdict, Verdict::Translated);
    // 5 s later (past the 2 s grace) the inside host's retransmission is still translated.
    let mut again = tcp(M[1], 40001, outside, 443, 1001, 5001, "A");
    let o = e.handle(t(15), &mut again);
    assert_eq!((o.verdict, o.flow), (Verdict::Translated, Flow::Outbound));
    assert_eq!(parsed(&again).0.src, ROUTER_OUT);
    e.advance(t(40));
    let mut late = tcp(outside, 443, ROUTER_OUT, router, 5001, 1001, "A");
    assert_eq!(
        e.handle(t(40), &mut late).verdict,
        Verdict::Pass(PassReason::Unrelated)
    );
}

/// §3.2: an inside host's TCP segment toward the outside that is no SYN and belongs to no
/// NAPT session passes untranslated (`unrelated`): lsnat does not track connections it does
/// not translate, so it cannot tell one an outside host opened to the inside host (routed, not
/// NATed; `tests/napt.rs` has one on real traffic) from a NAPT connection whose mapping ended.
/// A new SYN still starts a session, and the members' own stray segments keep their verdicts.
#[test]
fn napt_tcp_without_a_mapping_passes_untranslated() {
    let outside = [192, 0, 2, 80];
    let mut e = Engine::new(napt_timeouts());
    napt_connect(&mut e, 0, 40001, outside, true);
    let mut fin = tcp(M[1], 40001, outside, 443, 1001, 5001, "FA");
    assert_eq!(e.handle(t(1), &mut fin).verdict, Verdict::Translated);
    e.advance(t(100));
    let mut late = tcp(M[1], 40001, outside, 443, 1002, 5001, "A");
    let before = late.clone();
    let o = e.handle(t(100), &mut late);
    assert_eq!(
        (o.verdict, o.flow),
        (Verdict::Pass(PassReason::Unrelated), Flow::None)
    );
    assert_eq!(late, before, "not rewritten");
    // An inside host answering a connection an outside host opened to it: passes too.
    let mut synack = tcp(M[1], 22, outside, 5555, 1, 1, "SA");
    let o = e.handle(t(100), &mut synack);
    assert_eq!(
        (o.verdict, o.flow),
        (Verdict::Pass(PassReason::Unrelated), Flow::None)
    );
    let mut syn = tcp(M[1], 40001, outside, 443, 7000, 0, "S");
    assert_eq!(e.handle(t(101), &mut syn).verdict, Verdict::Translated);
    // Between inside hosts: not NAPT's, passes.
    let mut inside = tcp(M[1], 40002, M[2], 22, 1, 1, "A");
    assert_eq!(
        e.handle(t(102), &mut inside).verdict,
        Verdict::Pass(PassReason::Unrelated)
    );
    // A member's SYN-ACK from its service port for no session: handled as an outbound packet
    // without a session (noted for dead host detection).
    let mut stray = tcp(M[0], 80, CLIENT, 3000, 1, 1, "SA");
    let o = e.handle(t(103), &mut stray);
    assert_eq!(
        (o.verdict, o.flow),
        (Verdict::Drop(DropReason::NoSession), Flow::None)
    );
}

/// §3.2, §2.3: a SYN from the inside host on the 4-tuple of a NAPT connection that has closed
/// (both FINs, or an RST) starts a new NAPT session, as a client's SYN does for a load-shared
/// one: the new connection outlives the old one's close grace (2 s) and `tcp_rst` (30 s).
#[test]
fn napt_syn_reusing_a_closed_connection_starts_a_new_session() {
    let outside = [192, 0, 2, 80];
    let mut e = Engine::new(napt_timeouts());
    let router = napt_connect(&mut e, 0, 40003, outside, true);
    let mut fin = tcp(M[1], 40003, outside, 443, 1001, 5001, "FA");
    assert_eq!(e.handle(t(1), &mut fin).verdict, Verdict::Translated);
    let mut fin = tcp(outside, 443, ROUTER_OUT, router, 5001, 1002, "FA");
    assert_eq!(e.handle(t(1), &mut fin).verdict, Verdict::Translated);
    let mut ack = tcp(M[1], 40003, outside, 443, 1002, 5002, "A");
    assert_eq!(e.handle(t(1), &mut ack).verdict, Verdict::Translated);
    // Within the close grace, a new connection on the same 4-tuple.
    let again = napt_connect(&mut e, 2, 40003, outside, true);
    assert_eq!(again, router, "the freed port is taken again");
    // Past the old session's grace (t(3)), the new connection is still translated both ways.
    let mut data = tcp(M[1], 40003, outside, 443, 1001, 5001, "A");
    let o = e.handle(t(10), &mut data);
    assert_eq!((o.verdict, o.flow), (Verdict::Translated, Flow::Outbound));
    assert_eq!(parsed(&data).0.src, ROUTER_OUT);
    let mut back = tcp(outside, 443, ROUTER_OUT, router, 5001, 1001, "A");
    let o = e.handle(t(10), &mut back);
    assert_eq!((o.verdict, o.flow), (Verdict::Translated, Flow::Inbound));

    // The same after a reset: kept `tcp_rst` (30 s), a new SYN starts a new session at once.
    let router = napt_connect(&mut e, 20, 40004, outside, true);
    let mut rst = tcp(outside, 443, ROUTER_OUT, router, 5001, 1001, "RA");
    assert_eq!(e.handle(t(21), &mut rst).verdict, Verdict::Translated);
    assert_eq!(napt_connect(&mut e, 22, 40004, outside, true), router);
    let mut data = tcp(M[1], 40004, outside, 443, 1001, 5001, "A");
    let o = e.handle(t(60), &mut data);
    assert_eq!((o.verdict, o.flow), (Verdict::Translated, Flow::Outbound));
    let mut back = tcp(outside, 443, ROUTER_OUT, router, 5001, 1001, "A");
    assert_eq!(e.handle(t(60), &mut back).verdict, Verdict::Translated);
}

/// §3.2 with an ICMP virtual server on the outside address: an outside host's echo request to
/// it is load-shared even when an inside host's ping through NAPT has the same identifier (the
/// NAPT session expects echo replies from that host, not requests); the NAPT session's replies
/// still go to the inside host, the load-shared session's replies back to the outside host.
#[test]
fn an_echo_request_to_an_icmp_vip_is_not_taken_for_a_napt_reply() {
    let h = [192, 0, 2, 77];
    let mut e = Engine::new(EngineConfig {
        virtual_servers: vec![VirtualServerConfig {
            name: "ping".into(),
            vip: ROUTER_OUT.into(),
            protocol: 1,
            ports: vec![],
            ..config(Algorithm::RoundRobin).virtual_servers[0].clone()
        }],
        ..napt_timeouts()
    });
    let echo = |src: [u8; 4], dst: [u8; 4], request: bool| {
        let b = PacketBuilder::ipv4(src, dst, 64);
        let b = if request {
            b.icmpv4_echo_request(4242, 1)
        } else {
            b.icmpv4_echo_reply(4242, 1)
        };
        let mut out = Vec::new();
        b.write(&mut out, b"ping").unwrap();
        out
    };
    let mut p = echo(M[1], h, true);
    let o = e.handle(t(1), &mut p);
    assert_eq!(
        (o.verdict, o.session, o.after.src),
        (Verdict::Translated, 0, ROUTER_OUT)
    );
    assert_eq!(o.after.sport, 4242);
    let napt_request = p.clone();
    let mut p = echo(h, ROUTER_OUT, false);
    let o = e.handle(t(1), &mut p);
    assert_eq!(
        (o.verdict, o.session, o.after.dst),
        (Verdict::Translated, 0, M[1])
    );
    // The outside host pings the VIP with the same identifier: a new load-shared session.
    let mut p = echo(h, ROUTER_OUT, true);
    let o = e.handle(t(2), &mut p);
    assert_eq!(
        (o.verdict, o.flow, o.session, o.bound, o.after.dst),
        (Verdict::Translated, Flow::Inbound, 1, true, M[0])
    );
    let mut p = echo(M[0], h, false);
    let o = e.handle(t(2), &mut p);
    assert_eq!(
        (o.verdict, o.flow, o.session, o.after.src),
        (Verdict::Translated, Flow::Outbound, 1, ROUTER_OUT)
    );
    let ls_reply = p.clone();
    // Both go on side by side.
    let mut p = echo(h, ROUTER_OUT, false);
    let o = e.handle(t(3), &mut p);
    assert_eq!(
        (o.verdict, o.session, o.after.dst),
        (Verdict::Translated, 0, M[1])
    );
    let mut p = echo(h, ROUTER_OUT, true);
    let o = e.handle(t(3), &mut p);
    assert_eq!(
        (o.verdict, o.session, o.bound),
        (Verdict::Translated, 1, false)
    );
    // ICMP errors quoting either session's datagram as it left the router find their own
    // session the same way: quoting the NAPT request, to the inside host; quoting the
    // load-shared reply, to the member.
    let hop = [192, 0, 2, 1];
    let mut err = port_unreachable(hop, ROUTER_OUT, &napt_request);
    let o = e.handle(t(4), &mut err);
    assert_eq!(
        (o.verdict, o.flow, o.session, o.after.dst),
        (Verdict::Translated, Flow::Inbound, 0, M[1])
    );
    let mut err = port_unreachable(h, ROUTER_OUT, &ls_reply);
    let o = e.handle(t(4), &mut err);
    assert_eq!(
        (o.verdict, o.flow, o.session, o.after.dst),
        (Verdict::Translated, Flow::Inbound, 1, M[0])
    );
}

/// An echo request from 10.0.0.x style hairpin: VIP2 pings VIP1 (session 1 on M[0], its replies
/// M[0] → VIP2, id 7), then member M[0] pings VIP2 with id 7: the new session's own key is
/// session 1's reply key, so it is refused (`reply-key-in-use`), whichever comes first, and
/// session 1 keeps its replies.
#[test]
fn a_session_whose_key_is_another_sessions_reply_key_is_refused() {
    let vip2 = [198, 18, 0, 200];
    let ping = |vip: [u8; 4], members: Vec<Ipv4Addr>| VirtualServerConfig {
        name: format!("ping-{}", vip[3]),
        vip: vip.into(),
        protocol: 1,
        ports: vec![],
        algorithm: Algorithm::RoundRobin,
        members,
        ..VirtualServerConfig::default()
    };
    let mut e = Engine::new(EngineConfig {
        virtual_servers: vec![ping(VIP, vec![M[0].into()]), ping(vip2, vec![M[1].into()])],
        ..EngineConfig::default()
    });
    let echo = |src: [u8; 4], dst: [u8; 4], reply: bool| {
        let mut b = Vec::new();
        let p = PacketBuilder::ipv4(src, dst, 64);
        if reply {
            p.icmpv4_echo_reply(7, 1).write(&mut b, b"x").unwrap();
        } else {
            p.icmpv4_echo_request(7, 1).write(&mut b, b"x").unwrap();
        }
        b
    };
    let o = e.handle(t(1), &mut echo(vip2, VIP, false));
    assert_eq!((o.verdict, o.session), (Verdict::Translated, 1));
    let o = e.handle(t(1), &mut echo(M[0], vip2, false));
    assert_eq!(o.verdict, Verdict::Drop(DropReason::ReplyKeyInUse));
    let o = e.handle(t(1), &mut echo(M[0], vip2, true));
    assert_eq!(
        (o.verdict, o.session),
        (Verdict::Translated, 1),
        "session 1's reply"
    );
    assert_eq!(e.live_sessions(), 1);
}

/// A member remapped to a backup that a static mapping sends on (one hop, then the mapping):
/// the final backup's packets are the virtual server's, as the static backup's are when the
/// mapping is on the member itself.
#[test]
fn a_remap_targets_static_backups_are_the_virtual_servers() {
    let (b, b2) = ([203, 0, 113, 5], [203, 0, 113, 9]);
    let mut e = Engine::new(EngineConfig {
        static_mappings: vec![StaticMapping {
            member: b.into(),
            port: Some(80),
            backup: b2.into(),
            backup_port: Some(8080),
        }],
        timeline: vec![TimelineEntry {
            at: TimelineAt::Relative(crate::time::Span::from_secs(1)),
            member: M[0].into(),
            action: TimelineAction::Remap { backup: b.into() },
        }],
        ..config(Algorithm::RoundRobin)
    });
    // The first packet starts the capture's clock; the remap applies at +1 s.
    e.handle(t(0), &mut udp(CLIENT, 5000, VIP, 53));
    e.advance(t(2));
    let web = &e.vss.list[0];
    let b2_index = e.pool.find(b2).unwrap();
    assert_eq!(web.service_port_of(b2_index, 6, 8080), Some(80));
    assert!(!web.is_service_packet_of(b2_index, 6, 80));
}

/// LS-NAPT (§3.3) from the VIP never allocates an identifier whose replies' key another session
/// holds: member M[1], itself a client of the VIP, pings it with id 1025 (its session goes to
/// M[0]); a client's ping with id 1025 then goes to M[1], and keeping 1025 would make its
/// replies (M[1] → VIP, 1025) the key of M[1]'s own session: it gets 1026 and is bound.
#[test]
fn ls_napt_never_allocates_a_port_whose_reply_key_is_taken() {
    let members: Vec<Ipv4Addr> = vec![M[0].into(), M[1].into()];
    let mut e = Engine::new(EngineConfig {
        mode: Mode::LsNapt,
        virtual_servers: vec![VirtualServerConfig {
            name: "ping".into(),
            vip: VIP.into(),
            protocol: 1,
            ports: vec![],
            algorithm: Algorithm::RoundRobin,
            members,
            ..VirtualServerConfig::default()
        }],
        ..EngineConfig::default()
    });
    let request = |src: [u8; 4]| {
        let mut b = Vec::new();
        PacketBuilder::ipv4(src, VIP, 64)
            .icmpv4_echo_request(1025, 1)
            .write(&mut b, b"x")
            .unwrap();
        b
    };
    let o = e.handle(t(1), &mut request(M[1]));
    assert_eq!(
        (o.verdict, o.after.dst, o.after.sport),
        (Verdict::Translated, M[0], 1025)
    );
    let o = e.handle(t(1), &mut request(CLIENT));
    assert_eq!(
        (o.verdict, o.after.dst, o.after.sport),
        (Verdict::Translated, M[1], 1026)
    );
    assert_eq!(e.live_sessions(), 2);
}

/// Fuzzing (fuzz/ `engine_packets`) found a 26-byte ICMP echo reply (6 bytes of ICMP: type,
/// code, checksum, identifier; snaplen-cut) whose prefetch key was missing while its lookup key
/// was there, which a debug build's check in `process` took for a panic. Every packet the
/// engine keys by ports or identifier gets the same prefetch key, however short.
#[test]
fn a_transport_header_cut_after_its_ports_or_identifier_has_its_prefetch_key() {
    let mut echo = Vec::new();
    PacketBuilder::ipv4(CLIENT, VIP, 64)
        .icmpv4_echo_request(0xad72, 1)
        .write(&mut echo, b"ping")
        .unwrap();
    let short = udp(CLIENT, 40000, VIP, 53);
    for (mut b, cut) in [(echo, 26), (short.clone(), 24), (short, 26)] {
        b.truncate(cut);
        let b = &mut b[..];
        let ip = Ipv4::parse(b).unwrap();
        let l4 = ip.l4(b);
        assert!(
            matches!(l4, L4::Udp { .. } | L4::IcmpQuery { .. }),
            "{cut} bytes: {l4:?}"
        );
        assert_eq!(
            lookup::quick_key(b),
            Some(lookup::base_outcome(&ip, &l4, b).before),
            "{cut} bytes"
        );
        // Handled without tripping the check (debug builds).
        let mut e = Engine::new(config(Algorithm::RoundRobin));
        let _ = e.handle(t(1), b);
    }
}

/// A 227 reply in a TSO super-packet (IPv4 total length 0) whose address the FTP gateway
/// rewrites to a longer one: the resized datagram keeps both checksums right (its header
/// checksum was updated from the datagram's length instead of the 0 the field held).
#[test]
fn an_ftp_reply_resized_in_a_tso_super_packet_keeps_its_checksums() {
    let mut cfg = config(Algorithm::RoundRobin);
    cfg.virtual_servers[0].ports = vec![21];
    let mut e = Engine::new(cfg);
    let mut syn = tcp(CLIENT, 40000, VIP, 21, 1000, 0, "S");
    assert_eq!(e.handle(t(1), &mut syn).verdict, Verdict::Translated);
    let member: [u8; 4] = syn[16..20].try_into().unwrap();
    let mut reply = Vec::new();
    let text = format!(
        "227 Entering Passive Mode ({},{},{},{},195,80).\r\n",
        member[0], member[1], member[2], member[3]
    );
    PacketBuilder::ipv4(member, CLIENT, 64)
        .tcp(21, 40000, 5000, 65535)
        .ack(1001)
        .write(&mut reply, text.as_bytes())
        .unwrap();
    // TSO: total length 0, header checksum recomputed for it.
    reply[2] = 0;
    reply[3] = 0;
    reply[10] = 0;
    reply[11] = 0;
    let c = !crate::wire::checksum::fold(crate::wire::checksum::sum_words(&reply[..20], 0));
    reply[10..12].copy_from_slice(&c.to_be_bytes());
    let ip = Ipv4::parse(&reply).unwrap();
    assert_eq!(ip.header_checksum_error(&reply), 0);
    assert_eq!(ip.l4_checksum_error(&reply), Some(0));
    let out = e.handle(t(2), &mut reply);
    assert_eq!(out.verdict, Verdict::Translated);
    assert_ne!(out.alg.resized, 0);
    let r = e.resized().to_vec();
    let ip = Ipv4::parse(&r).unwrap();
    assert_eq!(&r[2..4], [0, 0]);
    assert_eq!(ip.header_checksum_error(&r), 0, "ip header");
    assert_eq!(ip.l4_checksum_error(&r), Some(0), "tcp");
}
