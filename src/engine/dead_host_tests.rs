//! Dead host detection and pool timeline on hand-made sequences (one behaviour each); the
//! recorded capture with a member that stops answering is tested in `tests/pool.rs`.

use super::super::*;
use crate::time::{Span, Timestamp};
use etherparse::PacketBuilder;
use std::net::Ipv4Addr;

const C: [u8; 4] = [198, 51, 100, 7];
const VIP: [u8; 4] = [198, 18, 0, 100];
const M: [[u8; 4]; 3] = [[203, 0, 113, 1], [203, 0, 113, 2], [203, 0, 113, 3]];

fn engine(timeline: Vec<TimelineEntry>) -> Engine {
    Engine::new(config(timeline))
}

/// Three members of a UDP service, dead host detection on (answer within 3 s, retry after 60 s).
fn config(timeline: Vec<TimelineEntry>) -> EngineConfig {
    EngineConfig {
        virtual_servers: vec![VirtualServerConfig {
            name: "echo".into(),
            vip: VIP.into(),
            protocol: 17,
            ports: vec![9999],
            algorithm: Algorithm::RoundRobin,
            members: M.iter().map(|&m| m.into()).collect(),
            ..VirtualServerConfig::default()
        }],
        dead_host: DeadHostConfig {
            enabled: true,
            answer_within: Span::from_secs(3),
            retry_after: Span::from_secs(60),
        },
        timeline,
        ..EngineConfig::default()
    }
}

fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut out, b"x")
        .unwrap();
    out
}

fn ms(n: u64) -> Timestamp {
    Timestamp(1_000_000_000_000 + n * 1_000_000)
}

/// A new session from client port `port` at `at`: returns the member index it was bound to.
fn ask(e: &mut Engine, at: u64, port: u16) -> Option<usize> {
    e.handle(ms(at), &mut udp(C, port, VIP, 9999)).member
}

/// Member `m` answers client port `port` at `at`.
fn answer(e: &mut Engine, at: u64, m: usize, port: u16) -> Outcome {
    e.handle(ms(at), &mut udp(M[m], 9999, C, port))
}

fn pool_events(e: &mut Engine) -> Vec<PoolEvent> {
    std::iter::from_fn(|| e.poll_pool_event()).collect()
}

fn kinds(e: &mut Engine) -> Vec<(u64, &'static str, Ipv4Addr)> {
    pool_events(e)
        .into_iter()
        .map(|p| ((p.at.0 - ms(0).0) / 1_000_000, p.kind.name(), p.member))
        .collect()
}

#[test]
fn unanswered_session_declares_its_member_dead_and_it_gets_no_new_sessions() {
    let mut e = engine(Vec::new());
    assert_eq!(ask(&mut e, 0, 1000), Some(0));
    answer(&mut e, 10, 0, 1000);
    assert_eq!(ask(&mut e, 100, 1001), Some(1)); // never answered
    assert_eq!(ask(&mut e, 200, 1002), Some(2));
    answer(&mut e, 210, 2, 1002);
    assert_eq!(ask(&mut e, 300, 1003), Some(0));
    answer(&mut e, 310, 0, 1003);
    assert_eq!(ask(&mut e, 400, 1004), Some(1)); // also unanswered
    assert!(pool_events(&mut e).is_empty());
    e.advance(ms(3099));
    assert!(pool_events(&mut e).is_empty(), "not before the deadline");
    e.advance(Timestamp(ms(3100).0 + 1)); // an answer at 3100 itself would be in time
    let ev = pool_events(&mut e);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].at, ms(3100));
    assert_eq!(ev[0].member, Ipv4Addr::from(M[1]));
    assert_eq!(
        ev[0].kind,
        PoolEventKind::Dead {
            unanswered: 2,
            bound_at: ms(100),
            last_answer: None,
            probe: false
        }
    );
    assert_eq!(
        ev[0].sessions,
        [2, 5],
        "every session sent to it since its last answer"
    );
    assert_eq!(e.members()[1].health, Health::Dead { since: ms(3100) });
    // The second unanswered session's deadline finds it dead already: no second event.
    e.advance(ms(3400));
    assert!(pool_events(&mut e).is_empty());
    let picks: Vec<_> = (0..4)
        .map(|i| ask(&mut e, 3500 + i, 2000 + i as u16))
        .collect();
    assert!(picks.iter().all(|&m| m != Some(1)), "{picks:?}");
}

#[test]
fn a_member_answering_other_new_sessions_is_not_declared_dead() {
    let mut e = engine(Vec::new());
    assert_eq!(ask(&mut e, 0, 1000), Some(0)); // never answered itself
    ask(&mut e, 10, 1001);
    ask(&mut e, 20, 1002);
    assert_eq!(ask(&mut e, 30, 1003), Some(0));
    answer(&mut e, 40, 0, 1003); // but member 0 answers a newer session
    answer(&mut e, 41, 1, 1001);
    answer(&mut e, 42, 2, 1002);
    e.advance(ms(10_000));
    assert!(pool_events(&mut e).is_empty());
    assert_eq!(e.members()[0].health, Health::Alive);
}

#[test]
fn reply_from_another_member_is_evidence_against_the_recorded_choice() {
    let mut e = engine(Vec::new());
    assert_eq!(ask(&mut e, 0, 1000), Some(0));
    // The recorded router gave this session to member 2: its reply belongs to no session.
    let o = answer(&mut e, 5, 2, 1000);
    assert_eq!(o.verdict, Verdict::Pass(PassReason::OutboundWithoutSession));
    let ev = pool_events(&mut e);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].member, Ipv4Addr::from(M[0]));
    assert_eq!(
        ev[0].kind,
        PoolEventKind::RecordedChoiceDiffers {
            session: 1,
            answered_by: M[2].into()
        }
    );
    e.advance(ms(5000));
    assert!(
        pool_events(&mut e).is_empty(),
        "member 0 is not judged on it"
    );
    assert_eq!(e.members()[0].health, Health::Alive);
    assert_eq!(e.members()[2].last_answer, Some(ms(5)));
}

/// Member 1 dead at 3100 (session 2 unanswered), probe due at 63100.
fn dead_member_1() -> Engine {
    let mut e = engine(Vec::new());
    ask(&mut e, 0, 1000);
    answer(&mut e, 1, 0, 1000);
    ask(&mut e, 100, 1001);
    e.advance(Timestamp(ms(3100).0 + 1)); // an answer at 3100 itself would be in time
    assert_eq!(kinds(&mut e), [(3100, "dead", M[1].into())]);
    e
}

#[test]
fn after_the_pause_one_new_session_probes_the_dead_member_and_its_answer_revives_it() {
    let mut e = dead_member_1();
    e.advance(ms(63_099));
    assert!(pool_events(&mut e).is_empty());
    e.advance(ms(63_100));
    assert_eq!(kinds(&mut e), [(63_100, "probe-due", M[1].into())]);
    // The next new session is the probe, whatever round-robin would have chosen.
    assert_eq!(ask(&mut e, 70_000, 3000), Some(1));
    let ev = pool_events(&mut e);
    assert_eq!(ev[0].kind, PoolEventKind::Probe { session: 3 });
    assert_eq!(ev[0].sessions, [3], "the probe's session is listed");
    // While the probe is out, no other session goes to it.
    let others = [ask(&mut e, 70_001, 3001), ask(&mut e, 70_002, 3002)];
    assert!(!others.contains(&Some(1)), "{others:?}");
    answer(&mut e, 70_003, others[0].unwrap(), 3001);
    answer(&mut e, 70_004, others[1].unwrap(), 3002);
    answer(&mut e, 70_050, 1, 3000);
    let ev = pool_events(&mut e);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].at, ms(70_050));
    assert_eq!(
        ev[0].kind,
        PoolEventKind::Alive {
            probe: 3,
            answered: 3
        }
    );
    assert_eq!(ev[0].sessions, [3]);
    assert_eq!(e.members()[1].health, Health::Alive);
    e.advance(ms(80_000));
    assert!(pool_events(&mut e).is_empty());
}

#[test]
fn an_unanswered_probe_declares_the_member_dead_again() {
    let mut e = dead_member_1();
    e.advance(ms(63_100));
    pool_events(&mut e);
    assert_eq!(ask(&mut e, 64_000, 3000), Some(1));
    pool_events(&mut e);
    e.advance(ms(67_001));
    let ev = pool_events(&mut e);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        ev[0].kind,
        PoolEventKind::Dead {
            unanswered: 3,
            bound_at: ms(64_000),
            last_answer: None,
            probe: true
        }
    );
    assert_eq!(ev[0].sessions, [3]);
    e.advance(ms(127_000));
    assert_eq!(kinds(&mut e), [(127_000, "probe-due", M[1].into())]);
}

#[test]
fn a_probe_answered_by_another_member_proves_nothing_and_the_next_session_probes_again() {
    let mut e = dead_member_1();
    e.advance(ms(63_100));
    pool_events(&mut e);
    assert_eq!(ask(&mut e, 64_000, 3000), Some(1));
    answer(&mut e, 64_010, 0, 3000); // the recorded router gave it to member 0
    e.advance(ms(67_001));
    let ev = pool_events(&mut e);
    let names: Vec<_> = ev.iter().map(|k| k.kind.name()).collect();
    assert_eq!(
        names,
        ["probe", "recorded-choice-differs", "probe-inconclusive"]
    );
    // Each is about the probe, session 3, and lists it.
    assert!(ev.iter().all(|k| k.sessions == [3]), "{ev:?}");
    assert_eq!(ask(&mut e, 67_500, 3001), Some(1), "probes again");
}

#[test]
fn disabled_detection_changes_nothing() {
    let mut cfg = engine(Vec::new());
    cfg.dead_host.cfg.enabled = false;
    let mut e = cfg;
    ask(&mut e, 0, 1000);
    ask(&mut e, 1, 1001);
    e.advance(ms(100_000));
    assert!(pool_events(&mut e).is_empty());
    assert_eq!(ask(&mut e, 100_001, 1002), Some(2));
}

fn at(s: u64, member: [u8; 4], action: TimelineAction) -> TimelineEntry {
    TimelineEntry {
        at: TimelineAt::Relative(Span::from_secs(s)),
        member: member.into(),
        action,
    }
}

#[test]
fn drain_takes_no_new_sessions_and_bound_ones_continue() {
    let mut e = engine(vec![at(1, M[1], TimelineAction::Drain)]);
    assert_eq!(ask(&mut e, 0, 1000), Some(0));
    assert_eq!(ask(&mut e, 10, 1001), Some(1));
    answer(&mut e, 20, 0, 1000);
    answer(&mut e, 20, 1, 1001);
    e.advance(ms(1000));
    let ev = pool_events(&mut e);
    assert_eq!(ev[0].kind, PoolEventKind::Draining);
    assert_eq!(ev[0].sessions, [2]);
    for i in 0..6 {
        assert_ne!(ask(&mut e, 1100 + i, 2000 + i as u16), Some(1));
    }
    // The bound session still goes to member 1, both ways.
    let o = e.handle(ms(1200), &mut udp(C, 1001, VIP, 9999));
    assert_eq!(
        (o.verdict, o.member, o.session),
        (Verdict::Translated, Some(1), 2)
    );
    assert_eq!(answer(&mut e, 1201, 1, 1001).verdict, Verdict::Translated);
    e.finish(ms(2000));
    let names: Vec<_> = kinds(&mut e).into_iter().map(|k| k.1).collect();
    assert_eq!(names, ["drained"]);
}

#[test]
fn remove_lists_bound_sessions_and_counts_their_later_packets() {
    let mut e = engine(vec![at(1, M[0], TimelineAction::Remove)]);
    assert_eq!(ask(&mut e, 0, 1000), Some(0));
    answer(&mut e, 5, 0, 1000);
    e.advance(ms(1000));
    let ev = pool_events(&mut e);
    assert_eq!(
        (ev[0].kind, ev[0].sessions.clone()),
        (PoolEventKind::Removed, vec![1])
    );
    assert_ne!(ask(&mut e, 1001, 1001), Some(0));
    assert_ne!(ask(&mut e, 1002, 1002), Some(0));
    assert_ne!(ask(&mut e, 1003, 1003), Some(0));
    let o = e.handle(ms(1100), &mut udp(C, 1000, VIP, 9999));
    assert_eq!((o.verdict, o.member), (Verdict::Translated, Some(0)));
    e.handle(ms(1101), &mut udp(C, 1000, VIP, 9999));
    answer(&mut e, 1102, 0, 1000);
    e.finish(ms(2000));
    let ev = pool_events(&mut e);
    assert_eq!(
        ev[0].kind,
        PoolEventKind::RemovedSessionEnded {
            session: 1,
            packets_after: [2, 1]
        }
    );
}

#[test]
fn remap_sends_new_sessions_to_the_backup_and_add_grows_the_pool() {
    let backup = [203, 0, 113, 9];
    let extra = [203, 0, 113, 4];
    let mut e = engine(vec![
        at(
            1,
            M[0],
            TimelineAction::Remap {
                backup: backup.into(),
            },
        ),
        at(2, extra, TimelineAction::Add { virtual_server: 0 }),
    ]);
    assert_eq!(ask(&mut e, 0, 1000), Some(0));
    e.advance(ms(1000));
    // Round-robin goes on: 1, 2, then member 0's turn goes to the backup (index 3).
    let picks: Vec<_> = (0..3)
        .map(|i| ask(&mut e, 1001 + i, 2000 + i as u16))
        .collect();
    assert_eq!(picks, [Some(1), Some(2), Some(3)]);
    assert_eq!(e.members()[3].addr, Ipv4Addr::from(backup));
    // The backup's replies are recognised.
    let o = e.handle(ms(1010), &mut udp(backup, 9999, C, 2002));
    assert_eq!(o.verdict, Verdict::Translated);
    e.advance(ms(2000));
    let names: Vec<_> = kinds(&mut e).into_iter().map(|k| k.1).collect();
    assert_eq!(names, ["remapped", "added"]);
    let picks: Vec<_> = (0..4)
        .map(|i| ask(&mut e, 2001 + i, 3000 + i as u16))
        .collect();
    assert!(
        picks.contains(&Some(4)),
        "the added member takes sessions: {picks:?}"
    );
}

/// Session timers and dead-host deadlines fire in time order, also when one packet brings
/// both due: session 1 (member 0, answered in the capture by member 1, the recorded
/// router's choice) idles out at 4 s, after its answer deadline at 3 s, which must still see
/// the evidence on it and not declare member 0 dead.
#[test]
fn an_answer_deadline_fires_before_a_later_session_end() {
    let mut e = Engine::new(EngineConfig {
        timeouts: Timeouts {
            udp: Span::from_secs(4),
            ..Timeouts::default()
        },
        ..config(Vec::new())
    });
    assert_eq!(ask(&mut e, 0, 1000), Some(0));
    answer(&mut e, 10, 1, 1000);
    assert_eq!(
        kinds(&mut e),
        [(10, "recorded-choice-differs", M[0].into())]
    );
    e.advance(ms(5000));
    assert!(
        pool_events(&mut e).is_empty(),
        "member 0 judged on a session answered elsewhere"
    );
    let ended: Vec<_> = std::iter::from_fn(|| e.poll_event())
        .filter_map(|ev| match ev {
            Event::Ended(r) => Some((r.number, r.ended_at)),
            _ => None,
        })
        .collect();
    assert_eq!(ended, [(1, ms(4000))]);
}

/// The evidence that another member answered a session outlives the session until its answer
/// deadline: session 1 (member 0, answered by member 1 in the capture) idles out at exactly its
/// deadline (UDP timeout = `answer_within` = 3 s), where a packet arrives; and, with a 1 s UDP
/// timeout, ends long before it. Member 0 is judged on neither.
#[test]
fn a_session_ended_by_its_deadline_keeps_its_evidence() {
    for udp in [3, 1] {
        let mut e = Engine::new(EngineConfig {
            timeouts: Timeouts {
                udp: Span::from_secs(udp),
                ..Timeouts::default()
            },
            ..config(Vec::new())
        });
        assert_eq!(ask(&mut e, 0, 1000), Some(0));
        answer(&mut e, 100, 1, 1000);
        assert_eq!(
            kinds(&mut e),
            [(100, "recorded-choice-differs", M[0].into())]
        );
        // A new session exactly at the deadline (it goes to member 1, who answers it).
        assert_eq!(ask(&mut e, 3000, 1001), Some(1));
        answer(&mut e, 3010, 1, 1001);
        e.advance(ms(10_000));
        assert!(
            pool_events(&mut e).is_empty(),
            "udp {udp} s: member 0 judged on a session answered elsewhere"
        );
    }
}

/// Evidence kept for an ended session lives until its deadline and no longer: sessions that
/// idle out exactly at their answer deadline (UDP timeout = `answer_within`), with no packet
/// then, leave nothing behind.
#[test]
fn evidence_of_ended_sessions_is_given_back() {
    let mut e = Engine::new(EngineConfig {
        timeouts: Timeouts {
            udp: Span::from_secs(3),
            ..Timeouts::default()
        },
        ..config(Vec::new())
    });
    for i in 0..50u64 {
        let at = i * 1100;
        let m = ask(&mut e, at, 1000 + i as u16).unwrap();
        // The member the recorded router chose answers it, not lsnat's.
        answer(&mut e, at + 10, (m + 1) % 3, 1000 + i as u16);
    }
    e.advance(ms(200_000));
    assert_eq!(e.ended_evidence_kept(), 0);
}
