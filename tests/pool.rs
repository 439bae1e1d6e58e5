//! Dead host detection (RFC 2391 §6) and a pool that changes during the replay, on the capture
//! recorded by `scripts/record-pool.sh`: hundreds of short HTTP and UDP sessions through the
//! kernel's nftables round-robin LSNAT, during which member 203.0.113.2 stopped answering for
//! about ten seconds. Every expected instant is computed from the capture itself.

mod common;

use lsnat::capture::PacketMeta;
use lsnat::engine::{Event, PoolEvent, PoolEventKind, Verdict};
use lsnat::link::{self, Payload};
use lsnat::replay::{self, Disposition, Observer, ReplayJob};
use lsnat::time::{Span, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;

const M1: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const M2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
const M3: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 3);

fn capture() -> PathBuf {
    common::root().join("captures/lsnat-pool.pcap")
}

/// What the replay told its observers.
#[derive(Default)]
struct Seen {
    /// session → (bound at, member index)
    bound: BTreeMap<u64, (Timestamp, usize)>,
    /// session → ended at
    ended: BTreeMap<u64, Timestamp>,
    /// translated packets: (time, session, member index)
    translated: Vec<(Timestamp, u64, usize)>,
    pool: Vec<PoolEvent>,
}

impl Observer for Seen {
    fn packet(&mut self, meta: &PacketMeta, what: &Disposition) {
        if let Disposition::Engine(o) = what
            && o.verdict == Verdict::Translated
        {
            self.translated.push((
                meta.ts,
                o.session,
                o.member.expect("translated has a member"),
            ));
        }
    }
    fn event(&mut self, e: &Event) {
        match *e {
            Event::Bound {
                number, at, member, ..
            } => {
                self.bound.insert(number, (at, member));
            }
            Event::Ended(r) => {
                self.ended.insert(r.number, r.ended_at);
            }
        }
    }
    fn pool_event(&mut self, e: &PoolEvent) {
        self.pool.push(e.clone());
    }
}

fn replay(config: &str) -> (Seen, Vec<Ipv4Addr>, lsnat::engine::EngineConfig) {
    let config_path = common::root().join(config);
    let cfg = lsnat::config::load(&config_path).unwrap();
    let job = ReplayJob {
        input: capture(),
        config_path,
        config: cfg.clone(),
        output: None,
        member_dir: None,
    };
    let mut seen = Seen::default();
    let totals = replay::run(&job, &mut [&mut seen]).unwrap();
    (seen, totals.members, cfg)
}

/// The capture's first timestamp and member 2's longest silence: (its last packet before, its
/// first packet after).
fn first_and_silence() -> (Timestamp, Timestamp, Timestamp) {
    let packets = common::read_all(&capture());
    let first = packets[0].0.ts;
    let from_m2: Vec<Timestamp> = packets
        .iter()
        .filter_map(|(m, b)| match link::locate(m.linktype, b).payload {
            Payload::Ipv4 { offset } if b[offset + 12..offset + 16] == M2.octets() => Some(m.ts),
            _ => None,
        })
        .collect();
    let (stop, back) = from_m2
        .windows(2)
        .map(|w| (w[0], w[1]))
        .max_by_key(|(a, b)| b.since(*a))
        .unwrap();
    (first, stop, back)
}

#[test]
fn member_that_stops_answering_is_declared_dead_probed_and_revived() {
    let (seen, members, cfg) = replay("captures/lsnat-pool.toml");
    let (_, stop, back) = first_and_silence();
    assert!(
        back.since(stop) > Span::from_secs(5),
        "the recording has a real outage: {:?}",
        back.since(stop)
    );
    let within = cfg.dead_host.answer_within;
    let retry = cfg.dead_host.retry_after;
    let m2 = members.iter().position(|&m| m == M2).unwrap();
    let of = |kind: &str, m: Ipv4Addr| -> Vec<&PoolEvent> {
        seen.pool
            .iter()
            .filter(|e| e.kind.name() == kind && e.member == m)
            .collect()
    };
    assert!(of("dead", M1).is_empty() && of("dead", M3).is_empty());

    // Dead: the first session lsnat gave member 2 after its last packet went unanswered.
    let dead = of("dead", M2);
    assert_eq!(dead.len(), 1, "{dead:#?}");
    let dead = dead[0];
    let (&first_unanswered, &(bound_at, _)) = seen
        .bound
        .iter()
        .find(|(_, (at, m))| *m == m2 && *at > stop)
        .unwrap();
    let PoolEventKind::Dead {
        unanswered,
        bound_at: ev_bound,
        last_answer,
        probe,
    } = dead.kind
    else {
        unreachable!()
    };
    assert_eq!(
        (unanswered, ev_bound, probe),
        (first_unanswered, bound_at, false)
    );
    assert_eq!(dead.at, bound_at.add(within));
    assert!(last_answer.is_some_and(|a| a <= stop && stop.since(a) < Span::from_secs(1)));
    assert!(dead.at < back, "declared dead while it was silent");
    // The evidence lists every session sent to it since its last answer, the first one first.
    assert_eq!(dead.sessions[0], first_unanswered);
    for s in &dead.sessions {
        let (at, m) = seen.bound[s];
        assert!(m == m2 && at > stop && at <= bound_at.add(within), "s{s}");
    }

    // Probed after the pause, with the next new session.
    let due = of("probe-due", M2);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].at, dead.at.add(retry));
    let probe = of("probe", M2);
    assert_eq!(probe.len(), 1);
    let PoolEventKind::Probe { session: probe_s } = probe[0].kind else {
        unreachable!()
    };
    let (probe_at, probe_m) = seen.bound[&probe_s];
    assert_eq!(probe_m, m2);
    assert!(probe_at >= due[0].at);
    let next_new = seen
        .bound
        .values()
        .filter(|(at, _)| *at >= due[0].at)
        .map(|(at, _)| *at)
        .min()
        .unwrap();
    assert_eq!(
        probe_at, next_new,
        "the first new session after the pause is the probe"
    );
    // Nothing else went to it between dead and alive.
    let alive = of("alive", M2);
    assert_eq!(alive.len(), 1);
    let alive = alive[0];
    for (s, (at, m)) in &seen.bound {
        if *m == m2 && *at > dead.at && *at < alive.at {
            assert_eq!(*s, probe_s);
        }
    }
    // Alive exactly when member 2 answered again in the capture.
    assert_eq!(alive.at, back);
    assert!(
        seen.bound
            .values()
            .any(|(at, m)| *m == m2 && *at > alive.at),
        "takes new sessions again"
    );
}

#[test]
fn drain_remove_add_weight_remap_timeline_on_the_recorded_capture() {
    let (seen, members, _) = replay("tests/pool/lsnat-pool-timeline.toml");
    let (first, _, _) = first_and_silence();
    let idx = |a: Ipv4Addr| members.iter().position(|&m| m == a).unwrap();
    let (m1, m2, m3) = (idx(M1), idx(M2), idx(M3));
    let t = |s: u64| first.add(Span::from_secs(s));
    let find = |kind: &str, m: Ipv4Addr| -> Vec<&PoolEvent> {
        seen.pool
            .iter()
            .filter(|e| e.kind.name() == kind && e.member == m)
            .collect()
    };
    let live_at = |m: usize, at: Timestamp| -> BTreeSet<u64> {
        seen.bound
            .iter()
            .filter(|(s, (b, mm))| {
                *mm == m && *b < at && seen.ended.get(s).is_none_or(|e| *e >= at)
            })
            .map(|(s, _)| *s)
            .collect()
    };

    // Drain .1 at +5.0285 s: no new session after, the bound ones listed and still translated.
    let drain_at = first.add(Span(5_028_500_000));
    let draining = find("draining", M1);
    assert_eq!(draining.len(), 1);
    assert_eq!(draining[0].at, drain_at);
    let bound_then: BTreeSet<u64> = draining[0].sessions.iter().copied().collect();
    assert_eq!(bound_then, live_at(m1, drain_at));
    assert!(!bound_then.is_empty());
    assert!(
        seen.bound
            .values()
            .all(|(at, m)| *m != m1 || *at < drain_at),
        "a session went to the drained member"
    );
    let continued = seen
        .translated
        .iter()
        .filter(|(at, s, m)| *at > drain_at && *m == m1 && bound_then.contains(s))
        .count();
    assert!(continued > 0, "bound sessions continue after the drain");
    assert_eq!(find("drained", M1).len(), 1);

    // Remove .3 at +10 s, add it back at +20 s.
    let removed = find("removed", M3);
    assert_eq!(removed.len(), 1);
    let removed_sessions: BTreeSet<u64> = removed[0].sessions.iter().copied().collect();
    assert_eq!(removed_sessions, live_at(m3, t(10)));
    assert!(
        seen.bound
            .values()
            .all(|(at, m)| *m != m3 || *at < t(10) || *at >= t(20))
    );
    assert!(seen.bound.values().any(|(at, m)| *m == m3 && *at >= t(20)));
    // Every removed session's end reports its later packets, and they add up.
    let ends = find("removed-session-ended", M3);
    let mut reported = 0;
    let mut ended = BTreeSet::new();
    for e in &ends {
        let PoolEventKind::RemovedSessionEnded {
            session,
            packets_after,
        } = e.kind
        else {
            unreachable!()
        };
        ended.insert(session);
        reported += packets_after[0] + packets_after[1];
    }
    assert_eq!(ended, removed_sessions);
    let later = seen
        .translated
        .iter()
        .filter(|(at, s, _)| *at >= t(10) && removed_sessions.contains(s))
        .count() as u64;
    assert_eq!(reported, later);

    // Weight and remap of .2: after +25 s its new sessions go to .3.
    assert_eq!(
        find("weight", M2)[0].kind,
        PoolEventKind::Weight { from: 1, to: 3 }
    );
    assert_eq!(find("remapped", M2)[0].at, t(25));
    assert!(seen.bound.values().all(|(at, m)| *m != m2 || *at < t(25)));
    // Golden of the whole replay.
    let g = lsnat::check::render(
        &capture(),
        Some(&common::root().join("tests/pool/lsnat-pool-timeline.toml")),
        None,
    )
    .unwrap();
    insta::with_settings!({
        snapshot_path => "../golden",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("lsnat-pool-timeline", g.text);
    });
}

#[test]
fn json_report_lists_the_pool_events_with_their_evidence() {
    let config_path = common::root().join("captures/lsnat-pool.toml");
    let cfg = lsnat::config::load(&config_path).unwrap();
    let scratch = common::scratch();
    let out = scratch.path().join("pool.json");
    let mut json =
        lsnat::report::json::JsonReport::create(&out, &capture(), &config_path, &cfg).unwrap();
    let mut summary = lsnat::report::Summary::default();
    let mut seen = Seen::default();
    let job = ReplayJob {
        input: capture(),
        config_path,
        config: cfg,
        output: None,
        member_dir: None,
    };
    let totals = replay::run(&job, &mut [&mut json, &mut summary, &mut seen]).unwrap();
    json.finish(&summary, &totals).unwrap();
    let v = common::read_json(&out);
    let events = v["pool_events"].as_array().unwrap();
    assert_eq!(events.len(), seen.pool.len());
    for (j, e) in events.iter().zip(&seen.pool) {
        assert_eq!(j["ts_ns"], e.at.nanos());
        assert_eq!(j["member"], e.member.to_string());
        assert_eq!(j["transition"], e.kind.name());
        assert_eq!(j["sessions"].as_array().unwrap().len(), e.sessions.len());
    }
    let dead = events.iter().find(|e| e["transition"] == "dead").unwrap();
    assert_eq!(dead["member"], "203.0.113.2");
    assert!(
        dead["evidence"]
            .as_str()
            .unwrap()
            .contains("not answered by")
    );
}
