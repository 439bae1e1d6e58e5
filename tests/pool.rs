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

/// A session as the replay bound it: when, where (virtual server, member it went to), the
/// member the decision chose, and what affinity did.
struct BoundAs {
    at: Timestamp,
    vs: usize,
    member: Ipv4Addr,
    chosen: Ipv4Addr,
    affinity: lsnat::engine::AffinityOutcome,
}

/// Every binding and pool event of a replay of the pool capture with `cfg` (TOML text).
fn bindings(cfg: &str) -> (BTreeMap<u64, BoundAs>, Vec<PoolEvent>) {
    bindings_of(&capture(), cfg)
}

/// Every binding and pool event of a replay of capture `input` with `cfg` (TOML text).
fn bindings_of(input: &std::path::Path, cfg: &str) -> (BTreeMap<u64, BoundAs>, Vec<PoolEvent>) {
    #[derive(Default)]
    struct Obs {
        bound: BTreeMap<u64, BoundAs>,
        pool: Vec<PoolEvent>,
    }
    impl Observer for Obs {
        fn event(&mut self, e: &Event) {
            if let Event::Bound {
                number,
                at,
                virtual_server,
                member_addr,
                decision,
                ..
            } = *e
            {
                self.bound.insert(
                    number,
                    BoundAs {
                        at,
                        vs: virtual_server,
                        member: member_addr.into(),
                        chosen: decision.chosen_addr.into(),
                        affinity: decision.affinity,
                    },
                );
            }
        }
        fn pool_event(&mut self, e: &PoolEvent) {
            self.pool.push(e.clone());
        }
    }
    let scratch = common::scratch();
    let config_path = scratch.path().join("pool.toml");
    std::fs::write(&config_path, cfg).unwrap();
    let config = lsnat::config::load(&config_path).unwrap();
    let job = ReplayJob {
        input: input.to_owned(),
        config_path,
        config,
        output: None,
        member_dir: None,
    };
    let mut obs = Obs::default();
    replay::run(&job, &mut [&mut obs]).unwrap();
    (obs.bound, obs.pool)
}

/// The pool capture's config with every virtual server's algorithm set to `algorithm`, dead
/// host detection on or off, and `extra` TOML appended.
fn pool_config(algorithm: &str, dead_host: bool, extra: &str) -> String {
    let base = std::fs::read_to_string(capture().with_extension("toml")).unwrap();
    let base = base
        .replace(
            "algorithm = \"round-robin\"",
            &format!("algorithm = \"{algorithm}\""),
        )
        .replace("enabled = true", &format!("enabled = {dead_host}"));
    format!("{base}\n{extra}\n")
}

const M9: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

/// A member remapped or statically mapped to a backup is offered to a load-based algorithm with
/// the backup's load (RFC 2391 §5.1 (2)): the backup, which carries that member's sessions,
/// gets its share, not every session. The backup .9 never answers in the capture, so its
/// sessions never close.
#[test]
fn a_backup_is_offered_with_its_own_load() {
    let (first, _, _) = first_and_silence();
    let after = first.add(Span::from_secs(5));
    for (what, extra) in [
        (
            "remap",
            "[[timeline]]\nat = \"+5s\"\naction = \"remap\"\nmember = \"203.0.113.1\"\nbackup = \"203.0.113.9\"\n",
        ),
        (
            "static",
            "[[static_mapping]]\nmember = \"203.0.113.1\"\nbackup = \"203.0.113.9\"\n",
        ),
    ] {
        let (bound, _) = bindings(&pool_config("least-load", false, extra));
        let later: Vec<&BoundAs> = bound.values().filter(|b| b.at >= after).collect();
        let to_backup = later.iter().filter(|b| b.member == M9).count();
        assert!(later.len() > 300, "{what}: {} sessions", later.len());
        assert!(
            to_backup > 0 && to_backup * 2 < later.len(),
            "{what}: {to_backup} of {} new sessions went to the backup",
            later.len()
        );
        // The backup gets sessions only through the member it stands in for.
        assert!(
            later
                .iter()
                .filter(|b| b.member == M9)
                .all(|b| b.chosen == M1),
            "{what}"
        );
    }
}

/// RFC 2391 §6 for backups: a static-mapping backup that does not answer is declared dead and
/// gets no new session but its probes; a dead remap backup is probed after `retry_after`.
#[test]
fn a_dead_backup_gets_only_its_probes() {
    for (what, extra) in [
        (
            "static",
            "[[static_mapping]]\nmember = \"203.0.113.1\"\nbackup = \"203.0.113.9\"\n",
        ),
        (
            "remap",
            "[[timeline]]\nat = \"+2s\"\naction = \"remap\"\nmember = \"203.0.113.1\"\nbackup = \"203.0.113.9\"\n",
        ),
    ] {
        let (bound, pool) = bindings(&pool_config("round-robin", true, extra));
        let of_backup = |kind: &str| -> Vec<&PoolEvent> {
            pool.iter()
                .filter(|e| e.member == M9 && e.kind.name() == kind)
                .collect()
        };
        let dead = of_backup("dead");
        assert!(
            !dead.is_empty(),
            "{what}: the silent backup is declared dead"
        );
        let probes: BTreeSet<u64> = of_backup("probe")
            .iter()
            .map(|e| match e.kind {
                PoolEventKind::Probe { session } => session,
                _ => unreachable!(),
            })
            .collect();
        assert!(!probes.is_empty(), "{what}: the dead backup is probed");
        let first_dead = dead[0].at;
        let others: Vec<u64> = bound
            .iter()
            .filter(|(s, b)| b.member == M9 && b.at > first_dead && !probes.contains(s))
            .map(|(s, _)| *s)
            .collect();
        assert!(
            others.is_empty(),
            "{what}: sessions sent to the dead backup: {others:?}"
        );
    }
}

/// Pools are per virtual server: a remap backup that is a member of another virtual server
/// only stands in for the remapped member, and `add` brings a removed member back into the
/// one pool it names.
#[test]
fn backups_and_members_stay_in_their_own_pools() {
    let web_two = |cfg: String| {
        cfg.replacen(
            "ports = [80, 23]\nalgorithm = \"round-robin\"\nmembers = [\"203.0.113.1\", \"203.0.113.2\", \"203.0.113.3\"]",
            "ports = [80, 23]\nalgorithm = \"round-robin\"\nmembers = [\"203.0.113.1\", \"203.0.113.2\"]",
            1,
        )
    };
    let cfg = web_two(pool_config(
        "round-robin",
        false,
        "[[timeline]]\nat = \"+2s\"\naction = \"remap\"\nmember = \"203.0.113.1\"\nbackup = \"203.0.113.3\"\n",
    ));
    assert!(cfg.contains("members = [\"203.0.113.1\", \"203.0.113.2\"]"));
    let (bound, _) = bindings(&cfg);
    let web_to_3: Vec<&BoundAs> = bound
        .values()
        .filter(|b| b.vs == 0 && b.member == M3)
        .collect();
    assert!(!web_to_3.is_empty());
    assert!(
        web_to_3.iter().all(|b| b.chosen == M1),
        "web chose .3 itself, not only through .1's remap"
    );

    let (first, _, _) = first_and_silence();
    let cfg = pool_config(
        "round-robin",
        false,
        "[[timeline]]\nat = \"+5s\"\naction = \"remove\"\nmember = \"203.0.113.3\"\n\n[[timeline]]\nat = \"+10s\"\naction = \"add\"\nmember = \"203.0.113.3\"\nvirtual_server = \"web\"\n",
    );
    let (bound, _) = bindings(&cfg);
    let removed_at = first.add(Span::from_secs(5));
    let added_at = first.add(Span::from_secs(10));
    assert!(
        bound
            .values()
            .any(|b| b.vs == 0 && b.member == M3 && b.at >= added_at),
        "added back to web"
    );
    let elsewhere: Vec<&BoundAs> = bound
        .values()
        .filter(|b| b.vs != 0 && b.member == M3 && b.at >= removed_at)
        .collect();
    assert!(
        elsewhere.is_empty(),
        "{} sessions of echo/ping went to the member added to web only",
        elsewhere.len()
    );
}

/// Client affinity (RSerPool requirements §5) with backups and probes: a client goes back to
/// the backup that served it through a static mapping (never "broken" for a member that was
/// neither removed nor dead), and a dead-host probe never takes a session whose client's
/// affinity could be kept: probes carry what affinity did, like any decision.
#[test]
fn affinity_survives_backups_and_probes() {
    let affinity = "[virtual_server.affinity]\ntimeout = \"100s\"\n";
    let with_affinity = |cfg: String| {
        cfg.replace(
            "members = [\"203.0.113.1\", \"203.0.113.2\", \"203.0.113.3\"]\n",
            &format!("members = [\"203.0.113.1\", \"203.0.113.2\", \"203.0.113.3\"]\n{affinity}"),
        )
    };
    let cfg = with_affinity(pool_config(
        "round-robin",
        false,
        "[[static_mapping]]\nmember = \"203.0.113.1\"\nbackup = \"203.0.113.9\"\n",
    ));
    let (bound, _) = bindings(&cfg);
    use lsnat::engine::{AffinityBreak, AffinityOutcome};
    let kept_on_backup = bound
        .values()
        .filter(|b| b.member == M9 && b.affinity == AffinityOutcome::Kept)
        .count();
    assert!(kept_on_backup > 0, "clients of the backup go back to it");
    assert!(
        bound.values().all(|b| !matches!(
            b.affinity,
            AffinityOutcome::Broken(AffinityBreak::Removed | AffinityBreak::Dead)
        )),
        "affinity broken for a member neither removed nor dead"
    );

    let (bound, pool) = bindings(&with_affinity(pool_config("round-robin", true, "")));
    let probes: Vec<u64> = pool
        .iter()
        .filter_map(|e| match e.kind {
            PoolEventKind::Probe { session } => Some(session),
            _ => None,
        })
        .collect();
    for s in &probes {
        let a = bound[s].affinity;
        assert!(
            matches!(a, AffinityOutcome::New | AffinityOutcome::Broken(_)),
            "probe s{s}: affinity {a:?}"
        );
    }
    assert!(
        bound.values().all(|b| b.affinity != AffinityOutcome::Off),
        "every decision says what affinity did"
    );
}

/// RFC 2391 §6, "if no response is detected in a few seconds": a member answering a new
/// session exactly `answer_within` after it was bound answered in time. `answer_within` is set
/// to session 1's own response time in the capture, to the nanosecond.
#[test]
fn an_answer_at_the_deadline_is_in_time() {
    let scratch = common::scratch();
    let json = common::replay_json(scratch.path(), &capture(), &[]);
    let s1 = &json["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == 1)
        .unwrap();
    let first = s1["first_ts_ns"].as_u64().unwrap();
    let reply = s1["first_reply_ts_ns"]
        .as_u64()
        .expect("session 1 is answered");
    let within = reply - first;
    assert!(within > 0);
    let cfg = pool_config("round-robin", true, "").replace(
        "answer_within = \"3s\"",
        &format!("answer_within = \"{within}ns\""),
    );
    assert!(cfg.contains(&format!("{within}ns")));
    let (bound, pool) = bindings(&cfg);
    assert_eq!(bound[&1].member.to_string(), s1["member"].as_str().unwrap());
    let unanswered: Vec<&PoolEvent> = pool
        .iter()
        .filter(|e| matches!(e.kind, PoolEventKind::Dead { unanswered: 1, .. }))
        .collect();
    assert!(
        unanswered.is_empty(),
        "declared dead for an answer at the deadline: {unanswered:?}"
    );
    // One nanosecond less and the same answer is late.
    let cfg = cfg.replace(&format!("{within}ns"), &format!("{}ns", within - 1));
    let (_, pool) = bindings(&cfg);
    assert!(
        pool.iter()
            .any(|e| matches!(e.kind, PoolEventKind::Dead { unanswered: 1, .. })),
        "an answer 1 ns late is late"
    );
}

/// RFC 2391 §5.2: "a cost of infinity" marks a member that cannot be reached; the timeline can
/// set it during a replay (a link goes down), after which the member gets no new session and
/// clients with affinity to it are told why.
#[test]
fn a_member_whose_cost_becomes_infinite_gets_no_new_session() {
    let (first, _, _) = first_and_silence();
    let cfg = pool_config(
        "cost-least-load",
        false,
        "[[timeline]]\nat = \"+5s\"\naction = \"cost\"\nmember = \"203.0.113.2\"\ncost = \"inf\"\n",
    )
    .replace(
        "members = [\"203.0.113.1\", \"203.0.113.2\", \"203.0.113.3\"]\n",
        "members = [\"203.0.113.1\", \"203.0.113.2\", \"203.0.113.3\"]\n[virtual_server.affinity]\ntimeout = \"100s\"\n",
    );
    let (bound, pool) = bindings(&cfg);
    let at = first.add(Span::from_secs(5));
    assert!(pool.iter().any(|e| e.member == M2
        && e.kind
            == PoolEventKind::Cost {
                from: 1.0,
                to: f64::INFINITY
            }));
    assert!(bound.values().any(|b| b.member == M2 && b.at < at));
    assert!(bound.values().all(|b| b.member != M2 || b.at < at));
    use lsnat::engine::{AffinityBreak, AffinityOutcome};
    assert!(
        bound
            .values()
            .any(|b| b.affinity == AffinityOutcome::Broken(AffinityBreak::Unreachable)),
        "a client of the unreachable member is told why its affinity broke"
    );
}

/// RFC 2391 §5.1, active category: a capacity reported by a server before the pool timeline
/// adds it counts once it joins (here capacity 0: it takes no new session).
#[test]
fn a_capacity_reported_before_joining_counts() {
    let (first, _, _) = first_and_silence();
    let scratch = common::scratch();
    let caps = scratch.path().join("caps.jsonl");
    std::fs::write(
        &caps,
        format!(
            "{{\"ts\": {}, \"member\": \"203.0.113.3\", \"capacity\": 0}}\n",
            first.add(Span::from_secs(1)).0
        ),
    )
    .unwrap();
    let cfg = pool_config(
        "reported-capacity",
        false,
        "[[timeline]]\nat = \"+5s\"\naction = \"add\"\nmember = \"203.0.113.3\"\nvirtual_server = \"web\"\n",
    )
    .replace(
        "members = [\"203.0.113.1\", \"203.0.113.2\", \"203.0.113.3\"]\n",
        &format!(
            "members = [\"203.0.113.1\", \"203.0.113.2\"]\ncapacity_file = \"{}\"\n",
            caps.display()
        ),
    );
    let (bound, pool) = bindings(&cfg);
    assert!(
        pool.iter()
            .any(|e| e.member == M3 && e.kind.name() == "added")
    );
    assert!(bound.len() > 500);
    let to_3 = bound.values().filter(|b| b.member == M3).count();
    assert_eq!(to_3, 0, "a member that reported capacity 0 got sessions");
}

/// Client affinity remembers the member the decision chose, not where one port's session went:
/// with member .1's telnet (port 23) mapped to backup .9, client 198.51.100.7 of
/// `lsnat-client-side.pcap` goes back to .1 for HTTP and through .1 to .9 for telnet, its
/// affinity kept throughout, never "broken" for a member still in the pool.
#[test]
fn affinity_follows_the_member_chosen_across_ports() {
    let cfg = "view = \"client-side\"\n[[virtual_server]]\nname = \"web\"\nvip = \"198.18.0.100\"\nprotocol = \"tcp\"\nports = [80, 23]\nalgorithm = \"round-robin\"\nmembers = [\"203.0.113.1\", \"203.0.113.2\", \"203.0.113.3\"]\n[virtual_server.affinity]\ntimeout = \"100s\"\n\n[[static_mapping]]\nmember = \"203.0.113.1\"\nport = 23\nbackup = \"203.0.113.9\"\n";
    let (bound, _) = bindings_of(&common::root().join("captures/lsnat-client-side.pcap"), cfg);
    use lsnat::engine::AffinityOutcome;
    assert!(bound.len() >= 5);
    assert!(
        bound
            .values()
            .all(|b| matches!(b.affinity, AffinityOutcome::New | AffinityOutcome::Kept)),
        "affinity broken with nothing removed, dead or draining"
    );
    let via_backup: Vec<&BoundAs> = bound.values().filter(|b| b.member == M9).collect();
    assert!(
        !via_backup.is_empty(),
        "a telnet session of .1's client went to the backup"
    );
    assert!(
        via_backup
            .iter()
            .all(|b| b.chosen == M1 && b.affinity == AffinityOutcome::Kept)
    );
}

/// Pool-timeline times count from the capture's first packet, whatever it holds:
/// `lsnat-router.pcap` starts with an ARP request, its first IPv4 packet comes later.
#[test]
fn the_timeline_counts_from_the_first_frame() {
    let cap = common::root().join("captures/lsnat-router.pcap");
    let frames = common::read_all(&cap);
    let first = frames[0].0.ts;
    let first_ipv4 = frames
        .iter()
        .find(|(m, b)| matches!(link::locate(m.linktype, b).payload, Payload::Ipv4 { .. }))
        .unwrap()
        .0
        .ts;
    assert!(
        first_ipv4 > first,
        "the capture starts with a non-IPv4 frame"
    );
    let cfg = std::fs::read_to_string(cap.with_extension("toml")).unwrap()
        + "\n[[timeline]]\nat = \"+1s\"\naction = \"drain\"\nmember = \"203.0.113.2\"\n";
    let (_, pool) = bindings_of(&cap, &cfg);
    let draining: Vec<&PoolEvent> = pool
        .iter()
        .filter(|e| e.kind.name() == "draining")
        .collect();
    assert_eq!(draining.len(), 1);
    assert_eq!(draining[0].at, first.add(Span::from_secs(1)));
}

/// An unreachable member (cost "inf", RFC 2391 §5.2) gets no session at all, not even a
/// dead-host probe: member .2 of the pool capture, declared dead in its silence, becomes
/// unreachable a second later.
#[test]
fn an_unreachable_member_is_not_probed() {
    let (_, pool) = bindings(&pool_config("round-robin", true, ""));
    let (first, _, _) = first_and_silence();
    let dead = pool
        .iter()
        .find(|e| e.member == M2 && e.kind.name() == "dead")
        .expect(".2 is declared dead in its silence");
    let at = Span(dead.at.since(first).0 + 1_000_000_000);
    let cfg = pool_config(
        "round-robin",
        true,
        &format!(
            "[[timeline]]\nat = \"+{}ns\"\naction = \"cost\"\nmember = \"203.0.113.2\"\ncost = \"inf\"\n",
            at.0
        ),
    );
    let (bound, pool) = bindings(&cfg);
    let unreachable_at = first.add(at);
    assert!(
        pool.iter()
            .any(|e| e.member == M2 && e.kind.name() == "cost")
    );
    assert!(
        !pool
            .iter()
            .any(|e| e.member == M2 && e.kind.name() == "probe" && e.at >= unreachable_at),
        "an unreachable member was probed"
    );
    assert!(
        bound
            .values()
            .all(|b| b.member != M2 || b.at < unreachable_at)
    );
}

/// A backup for one port of a member serves that port only: member .1's UDP 9999 mapped to
/// .3, which is no member here, makes none of .3's other traffic (its HTTP replies in the
/// capture, from the recorded router's sessions) load-shared service traffic: those pass as
/// unrelated, never dropped as a web session's packets without a session.
#[test]
fn a_port_backup_serves_that_port_only() {
    let cfg = pool_config(
        "round-robin",
        false,
        "[[static_mapping]]\nmember = \"203.0.113.1\"\nport = 9999\nbackup = \"203.0.113.3\"\n",
    )
    .replace(
        "members = [\"203.0.113.1\", \"203.0.113.2\", \"203.0.113.3\"]",
        "members = [\"203.0.113.1\", \"203.0.113.2\"]",
    );
    let scratch = common::scratch();
    let path = scratch.path().join("port-backup.toml");
    std::fs::write(&path, &cfg).unwrap();
    let g = lsnat::check::render(&capture(), Some(&path), None).unwrap();
    let from_3_http: Vec<&str> = g
        .text
        .lines()
        .filter(|l| l.contains(" 203.0.113.3:80 > "))
        .collect();
    assert!(!from_3_http.is_empty());
    assert!(
        from_3_http.iter().all(|l| l.contains("pass  unrelated")),
        "{:?}",
        from_3_http.iter().find(|l| !l.contains("pass  unrelated"))
    );
    // Its port-9999 sessions still reach it, through .1.
    assert!(
        g.text
            .lines()
            .any(|l| l.contains("> 203.0.113.3:9999") && l.contains(" xlat in "))
    );
}

/// Every pool event of the JSON report that concerns sessions lists them in `sessions` (README:
/// "the session ids concerned"): every session its evidence names, with the dead-host events
/// of lsnat-pool and the timeline's removals (`removed-session-ended`) both covered.
#[test]
fn json_pool_events_list_the_sessions_they_concern() {
    let scratch = common::scratch();
    let mut kinds = BTreeSet::new();
    for cfg in [
        common::root().join("captures/lsnat-pool.toml"),
        common::root().join("tests/pool/lsnat-pool-timeline.toml"),
    ] {
        let v = common::replay_json(
            scratch.path(),
            &capture(),
            &["-c".as_ref(), cfg.as_os_str()],
        );
        for e in v["pool_events"].as_array().unwrap() {
            let sessions: Vec<u64> = e["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_u64().unwrap())
                .collect();
            let evidence = e["evidence"].as_str().unwrap();
            let named: BTreeSet<u64> = evidence
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter_map(|w| w.strip_prefix('s')?.parse().ok())
                .collect();
            let transition = e["transition"].as_str().unwrap();
            for s in &named {
                assert!(sessions.contains(s), "{transition}: s{s} missing in {e}");
            }
            let about_sessions = [
                "dead",
                "probe",
                "alive",
                "probe-inconclusive",
                "recorded-choice-differs",
                "removed-session-ended",
            ];
            if about_sessions.contains(&transition) {
                assert!(!sessions.is_empty(), "{e}");
                kinds.insert(transition.to_string());
            }
            assert!(sessions.windows(2).all(|w| w[0] < w[1]), "{e}");
        }
    }
    for k in [
        "dead",
        "probe",
        "alive",
        "recorded-choice-differs",
        "removed-session-ended",
    ] {
        assert!(kinds.contains(k), "no {k} event seen: {kinds:?}");
    }
}

/// The JSON report's evidence writes an instant as the golden does (microseconds, truncated),
/// with a unit: the dead event's "last answer" is `+7.798888s` in one and `+7.798888` in the
/// other (the JSON rounded it to `+7.798889s`).
#[test]
fn json_evidence_times_read_as_the_goldens() {
    let scratch = common::scratch();
    let v = common::replay_json(scratch.path(), &capture(), &[]);
    let g = lsnat::check::render(&capture(), None, None).unwrap();
    let golden: Vec<&str> = g
        .text
        .split_once("## pool events")
        .unwrap()
        .1
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .collect();
    let events = v["pool_events"].as_array().unwrap();
    assert_eq!(events.len(), golden.len());
    // `+S.UUUUUUs` → `+S.UUUUUU`
    let unitless = |e: &str| {
        let mut out = String::new();
        let mut time = false;
        for (i, c) in e.char_indices() {
            if c == '+' {
                time = true;
            } else if time && c == 's' && e[..i].ends_with(|d: char| d.is_ascii_digit()) {
                time = false;
                continue;
            } else if !(c.is_ascii_digit() || c == '.') {
                time = false;
            }
            out.push(c);
        }
        out
    };
    let mut times = 0;
    for (e, line) in events.iter().zip(&golden) {
        let evidence = e["evidence"].as_str().unwrap();
        times += evidence.matches('+').count();
        assert!(
            line.contains(&unitless(evidence)),
            "JSON `{evidence}`, golden `{line}`"
        );
    }
    assert!(times > 0);
    let dead = events.iter().find(|e| e["transition"] == "dead").unwrap();
    assert!(
        dead["evidence"]
            .as_str()
            .unwrap()
            .ends_with("last answer +7.798888s")
    );
}

/// RFC 2391 §2.4 retires the longest-idle session "when it becomes necessary": with the
/// table full (`max_sessions = 3`) and every member drained at +4.5 s, the recorded
/// `lsnat-router.pcap`'s later connections are refused (`no-member-available`) and retire
/// nothing; before, each refused SYN first retired a live session (s7 at +4.86 s).
#[test]
fn a_session_refused_anyway_retires_no_other() {
    let r = router_with_table_limit(|mut cfg| {
        for m in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
            cfg.push_str(&format!(
                "\n[[timeline]]\nat = \"+4.5s\"\naction = \"drain\"\nmember = \"{m}\"\n"
            ));
        }
        cfg
    });
    let first = r["packets"]["first_ts_ns"].as_u64().expect("first_ts_ns");
    let drained = first + 4_500_000_000;
    let retired: Vec<u64> = r["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter(|s| s["end"] == "retired")
        .map(|s| s["end_ts_ns"].as_u64().expect("end_ts_ns"))
        .collect();
    // The table was full before the drain: sessions were retired then.
    assert!(!retired.is_empty());
    assert!(
        retired.iter().all(|&t| t < drained),
        "retired after the drain, for sessions refused anyway: {:?}",
        retired.iter().map(|t| t - first).collect::<Vec<_>>()
    );
    assert!(r["packets"]["dropped"]["no-member-available"].as_u64() > Some(0));
}

/// With a full table (`max_sessions = 3`), the session retired to make room is gone before
/// the algorithm chooses (RFC 2391 §2.4, §5.1 (2)): least-load on `lsnat-router.pcap` never
/// sees more than 2 sessions bound, and picks the member with fewest of what remains. Before,
/// it chose first and counted the session about to be retired (s5 went to .1 on 1/1/1 while
/// .2's only session was being retired).
#[test]
fn least_load_chooses_after_a_full_table_made_room() {
    let r = router_with_table_limit(|cfg| cfg.replace("\"round-robin\"", "\"least-load\""));
    let sessions = r["sessions"].as_array().expect("sessions");
    assert!(sessions.iter().any(|s| s["end"] == "retired"));
    for s in sessions {
        let candidates = s["decision"]["candidates"].as_array().expect("candidates");
        let bound: Vec<u64> = candidates
            .iter()
            .map(|c| c["bound"].as_u64().expect("bound"))
            .collect();
        assert!(
            bound.iter().sum::<u64>() <= 2,
            "s{}: the algorithm saw {bound:?} bound",
            s["id"]
        );
        let chosen = candidates
            .iter()
            .find(|c| c["member"] == s["decision"]["chosen"])
            .expect("chosen among the candidates");
        assert_eq!(chosen["bound"].as_u64(), bound.iter().min().copied());
    }
}

/// A session is retired only for one that is bound at that moment. Here a full table (3) of
/// web sessions meets UDP and ICMP sessions whose only member has weight 0, which
/// weighted-round-robin never chooses ("weight 0: never"): they are refused and retire
/// nothing. Before, the check that some member would take them saw the member offered and
/// retired a web session (s2 at +3.25 s) for a datagram then dropped. Retired here means ended
/// before its own deadline: `retired`, or closed and cut short in its grace period (which
/// retires first), ended before its last packet plus the 2 s grace.
#[test]
fn a_session_no_algorithm_would_choose_retires_no_other() {
    let r = router_with_table_limit(|base| {
        let (web, rest) = base.split_at(base.find("name = \"echo\"").expect("echo"));
        let rest = rest
            .replace("\"round-robin\"", "\"weighted-round-robin\"")
            .replace(
                "members = [\"203.0.113.1\", \"203.0.113.2\", \"203.0.113.3\"]",
                "members = [{ addr = \"203.0.113.9\", weight = 0 }]",
            );
        format!("{web}{rest}").replace("\"round-robin\"", "\"least-load\"")
    });
    assert!(r["packets"]["dropped"]["no-member-available"].as_u64() > Some(0));
    let sessions = r["sessions"].as_array().expect("sessions");
    let bound_at: Vec<&serde_json::Value> = sessions.iter().map(|s| &s["first_ts_ns"]).collect();
    let retired: Vec<&serde_json::Value> = sessions
        .iter()
        .filter(|s| s["end"] == "retired" || cut_in_grace(s, last_end(sessions)))
        .map(|s| &s["end_ts_ns"])
        .collect();
    assert!(!retired.is_empty());
    for t in retired {
        assert!(
            bound_at.contains(&t),
            "retired at {t}, when no session was bound"
        );
    }
}

/// A session closed by FIN or RST that ended before its grace period (2 s in
/// `lsnat-router.toml`) had passed since its last packet, and before the capture's end
/// (`end_ns`, where sessions in grace end with their close reason too): retired in grace.
fn cut_in_grace(s: &serde_json::Value, end_ns: u64) -> bool {
    let ns = |k: &str| s[k].as_u64().expect(k);
    (s["end"] == "fin" || s["end"] == "rst")
        && ns("end_ts_ns") < ns("last_ts_ns") + 2_000_000_000
        && ns("end_ts_ns") < end_ns
}

/// When the replay's last session ended: the capture's end.
fn last_end(sessions: &[serde_json::Value]) -> u64 {
    sessions
        .iter()
        .filter_map(|s| s["end_ts_ns"].as_u64())
        .max()
        .expect("sessions")
}

/// RFC 2391 §2.4: a TCP session whose close was seen "can be safely assumed to have been
/// terminated" within a couple of seconds, so a full table retires a session in its grace
/// period before any live one, as Linux's conntrack drops connections in closing states
/// first (`early_drop`). `lsnat-router.pcap` with `max_sessions = 3`: at +1.74 s (s4's SYN)
/// the table held the ICMP sessions s1 (last seen +0.41 s) and s2, and the web session s3
/// (closed at +1.43 s); s3 ends there with its close reason, `fin`, and s1 lives on until
/// s8's binding at +3.83 s, when no closed session is left. Before, s1 was retired at s4's
/// SYN (the longest idle) while s3 sat out its grace: ten sessions were `retired`, now four,
/// all of them when no closed session was in its grace period.
#[test]
fn a_full_table_retires_closed_sessions_in_their_grace_period_first() {
    let r = router_with_table_limit(|cfg| cfg);
    let mut sessions: Vec<&serde_json::Value> =
        r["sessions"].as_array().expect("sessions").iter().collect();
    sessions.sort_by_key(|s| s["id"].as_u64());
    let ns = |s: &serde_json::Value, k: &str| s[k].as_u64().expect(k);
    let bound_at: Vec<u64> = sessions.iter().map(|s| ns(s, "first_ts_ns")).collect();
    let ends: Vec<(&str, u64)> = sessions
        .iter()
        .map(|s| (s["end"].as_str().expect("end"), ns(s, "end_ts_ns")))
        .collect();
    // s3, closed by FIN, made room for s4; the ICMP session s1 did so only for s8.
    assert_eq!(ends[2], ("fin", bound_at[3]), "s3");
    assert_eq!(ends[0], ("retired", bound_at[7]), "s1");
    let all: Vec<serde_json::Value> = sessions.iter().map(|&s| s.clone()).collect();
    let cut: Vec<u64> = sessions
        .iter()
        .filter(|s| cut_in_grace(s, last_end(&all)))
        .map(|s| s["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(
        cut,
        [3, 4, 5, 6, 10, 11],
        "closed sessions whose grace the table limit cut short"
    );
    // The report counts them (the engine's own count, not derived from the records).
    assert_eq!(r["session_grace_cut_short"], cut.len());
    let retired: Vec<&&serde_json::Value> =
        sessions.iter().filter(|s| s["end"] == "retired").collect();
    assert_eq!(retired.len(), 4, "live sessions retired");
    for s in retired {
        // Retired when a session was bound, and no closed session was in its grace then.
        let t = ns(s, "end_ts_ns");
        assert!(bound_at.contains(&t), "s{} retired at {t}", s["id"]);
        for c in &sessions {
            let closed_then = (c["end"] == "fin" || c["end"] == "rst")
                && ns(c, "last_ts_ns") <= t
                && ns(c, "end_ts_ns") > t;
            assert!(
                !closed_then,
                "s{} retired at {t} while s{} was closed, in its grace period",
                s["id"], c["id"]
            );
        }
    }
}

/// The JSON report of `lsnat-router.pcap` replayed with its config, a session-table limit of 3
/// and `edit` applied to the config's text.
fn router_with_table_limit(edit: impl FnOnce(String) -> String) -> serde_json::Value {
    let dir = common::scratch();
    let base =
        std::fs::read_to_string(common::root().join("captures/lsnat-router.toml")).expect("config");
    let cfg = edit(base.replace("[timeouts]\n", "[timeouts]\nmax_sessions = 3\n"));
    let path = dir.path().join("limit.toml");
    std::fs::write(&path, cfg).expect("config");
    common::replay_json(
        dir.path(),
        &common::root().join("captures/lsnat-router.pcap"),
        &["-c".as_ref(), path.as_os_str()],
    )
}

/// A member the timeline adds is one of its pool's members from then on in the load report
/// and fairness, as in the member table, even when no session comes to it: added 0.0004 s
/// before `lsnat-pool`'s last packet, 203.0.113.9 gets none, and sessions are shared over four
/// members, one with none (max/min "inf"). Before, the load report listed only members that
/// had been offered a session, and its fairness was over three.
#[test]
fn a_member_added_late_counts_in_the_load_report() {
    let scratch = common::scratch();
    let cfg = scratch.path().join("added-late.toml");
    let text = std::fs::read_to_string(common::root().join("captures/lsnat-pool.toml")).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "{text}\n[[timeline]]\nat = \"+32.3984s\"\naction = \"add\"\nmember = \"203.0.113.9\"\nvirtual_server = \"web\"\n"
        ),
    )
    .unwrap();
    let r = common::replay_json(
        scratch.path(),
        &capture(),
        &["-c".as_ref(), cfg.as_os_str()],
    );
    let listed = |section: &serde_json::Value| -> Vec<(String, u64)> {
        section
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["member"].as_str().unwrap().to_string(),
                    m["sessions"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let load = listed(&r["load"]["members"]);
    assert_eq!(load.len(), 4, "{load:?}");
    assert!(load.contains(&("203.0.113.9".into(), 0)), "{load:?}");
    let mut table = listed(&r["members"]);
    table.sort();
    let mut load_sorted = load.clone();
    load_sorted.sort();
    assert_eq!(load_sorted, table, "the load report and the member table");
    assert_eq!(r["load"]["fairness"]["members"], 4);
    assert_eq!(r["load"]["fairness"]["max_min_sessions"], "inf");
}
