//! `lsnat audit`: goldens for every preset on the project's captures; broken-session counts on
//! `captures/lsnat-idle.pcap` checked against gaps computed here from the packets themselves;
//! sweep points equal to the same policies given one by one; the audit on every readable corpus
//! capture; the command line's exit codes and outputs.

mod common;

use lsnat::audit::{self, AuditJob, Effect, policy, report};
use lsnat::engine::Tuple;
use lsnat::link::{self, Payload};
use lsnat::time::Span;
use lsnat::wire::ipv4::{Ipv4, L4};
use std::collections::BTreeMap;
use std::path::Path;

fn job(capture: &Path, config: Option<&Path>, names: &[&str]) -> AuditJob {
    let config_path = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| capture.with_extension("toml"));
    let cfg = lsnat::config::load(&config_path).unwrap();
    let policies = names
        .iter()
        .map(|n| audit::resolve(n, &cfg, &[]).unwrap())
        .collect();
    AuditJob {
        capture: capture.to_path_buf(),
        config_path,
        config: cfg,
        policies,
        sweep: None,
    }
}

fn all_policies() -> Vec<&'static str> {
    let mut v = vec!["config"];
    v.extend(policy::PRESETS);
    v
}

#[test]
fn audit_goldens_for_every_preset() {
    let root = common::root();
    for name in [
        "lsnat-idle",
        "lsnat-router",
        "rfc2391-fig1",
        "lsnat-client-side",
    ] {
        let cap = root.join("captures").join(format!("{name}.pcap"));
        let mut names = all_policies();
        if name == "lsnat-idle" {
            // a short policy that breaks sessions, and a sweep, so both are in a golden too
            names.push("tcp=10s,udp=10s,icmp=10s");
        }
        let mut j = job(&cap, None, &names);
        if name == "lsnat-idle" {
            let base = audit::config_policy(&j.config);
            j.sweep = Some(audit::sweep::Sweep::parse("udp=5s..40s:6", &base).unwrap());
        }
        let a = audit::run(&j).unwrap();
        let text = report::render(&a, 10, Some(150));
        insta::with_settings!({
            snapshot_path => "../golden/audit",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, text);
            if let Some((s, points)) = &a.sweep {
                let svg = audit::svg::render("lsnat audit: udp sweep on lsnat-idle.pcap", &s.key, &s.values, points);
                insta::assert_snapshot!(format!("{name}-sweep-svg"), svg);
            }
        });
    }
}

/// Session keys (client → VIP) of the packets of lsnat-idle, with each packet's time, read
/// straight from the capture: inbound packets to the VIP, replies from a member (router view).
/// Returns (all packets, the client's packets) by key.
/// The third map holds every packet's (index, time) by key.
type ByKey = BTreeMap<Tuple, Vec<u64>>;
type Indexed = BTreeMap<Tuple, Vec<(u64, u64)>>;
fn sessions_from_packets(cap: &Path) -> (ByKey, ByKey, Indexed) {
    const VIP: [u8; 4] = [198, 18, 0, 100];
    let mut by_key: ByKey = BTreeMap::new();
    let mut inbound: ByKey = BTreeMap::new();
    let mut indexed: Indexed = BTreeMap::new();
    for (meta, frame) in common::read_all(cap) {
        let Payload::Ipv4 { offset } = link::locate(meta.linktype, &frame).payload else {
            continue;
        };
        let b = &frame[offset..];
        let ip = Ipv4::parse(b).unwrap();
        let (sport, dport) = match ip.l4(b) {
            L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport, .. } => (sport, dport),
            L4::IcmpQuery { id, .. } => (id, 0),
            _ => continue,
        };
        let key = if ip.dst == VIP {
            let k = Tuple {
                protocol: ip.protocol,
                src: ip.src,
                sport,
                dst: VIP,
                dport,
            };
            inbound.entry(k).or_default().push(meta.ts.0);
            Tuple {
                protocol: ip.protocol,
                src: ip.src,
                sport,
                dst: VIP,
                dport,
            }
        } else if ip.src[..3] == [203, 0, 113] {
            Tuple {
                protocol: ip.protocol,
                src: ip.dst,
                sport: if ip.protocol == 1 { sport } else { dport },
                dst: VIP,
                dport: if ip.protocol == 1 { 0 } else { sport },
            }
        } else {
            continue;
        };
        by_key.entry(key).or_default().push(meta.ts.0);
        indexed
            .entry(key)
            .or_default()
            .push((meta.index, meta.ts.0));
    }
    (by_key, inbound, indexed)
}

/// With every idle timeout at 10 s, exactly the sessions that were silent ≥ 10 s are broken:
/// each TCP session at its first such gap (its next packet is dropped), each UDP/ICMP session
/// at every such gap (it binds again). Gaps are computed here from the packets: a TCP break is
/// exactly the gap between two packets of the session. A UDP/ICMP session bound (or rebound) to
/// another member than the kernel chose does not own the replies the capture holds from the
/// kernel's member, so its gap runs from its own last packet: at least the gap between any two
/// packets of the key, at most the gap between the client's packets.
#[test]
fn broken_sessions_on_lsnat_idle_are_the_ones_with_long_gaps() {
    let cap = common::root().join("captures/lsnat-idle.pcap");
    let limit = 10_000_000_000u64;
    let (any, inbound, _) = sessions_from_packets(&cap);
    let gaps = |times: &[u64]| -> Vec<u64> {
        times
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|&g| g >= limit)
            .collect()
    };
    // key → (long gaps between any packets, long gaps between the client's packets)
    let mut expected: BTreeMap<Tuple, (Vec<u64>, Vec<u64>)> = BTreeMap::new();
    for (key, times) in &any {
        let mut a = gaps(times);
        let mut i = gaps(&inbound[key]);
        if key.protocol == 6 {
            a.truncate(1);
            i.truncate(1);
        }
        if !a.is_empty() {
            expected.insert(*key, (a, i));
        }
    }
    // the recording's design: telnet (12 s, then 25 s) and HTTP B (20 s); UDP 15 s and 20 s;
    // ping 14 s twice. HTTP A's 8 s pause and UDP B's 2 s pause break nothing.
    assert_eq!(expected.values().map(|v| v.0.len()).sum::<usize>(), 6);
    let a = audit::run(&job(&cap, None, &["tcp=10s,udp=10s,icmp=10s"])).unwrap();
    let r = &a.results[0];
    let mut got: BTreeMap<Tuple, Vec<u64>> = BTreeMap::new();
    let mut in_order = r.broken.clone();
    in_order.sort_by_key(|b| b.packet);
    for b in &in_order {
        got.entry(b.key).or_default().push(b.gap.0);
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (key, gaps) in &got {
        let (a, i) = &expected[key];
        assert_eq!(gaps.len(), a.len(), "{key}");
        if key.protocol == 6 {
            assert_eq!(gaps[0], a[0], "{key}: a TCP break is the exact gap");
        }
        for k in 0..gaps.len() {
            assert!(a[k] <= gaps[k] && gaps[k] <= i[k], "{key}: break {k}");
        }
    }
    assert_eq!(r.count(Effect::TcpDropped), 2);
    assert_eq!(r.count(Effect::OrphanedReply), 0);
    // round robin over three members: the 15 s UDP session's next binding comes after two other
    // UDP bindings, so it lands on its old member; the rest move.
    assert_eq!(r.count(Effect::ReboundSameMember), 1);
    assert_eq!(r.count(Effect::ReboundOtherMember), 3);
    assert!(r.broken.iter().all(|b| b.timeout == Span::from_secs(10)));
    // RFC 2391's defaults keep every session of this capture.
    let a = audit::run(&job(&cap, None, &["rfc2391"])).unwrap();
    assert_eq!(a.results[0].total_broken(), 0);
}

/// A session's next packet can be the one whose arrival fires its expiry (timers fire lazily
/// when the engine handles a packet, and the replay hands the observers that packet before the
/// session's `Ended` event): that packet is still the one that finds the session gone.
///
/// `lsnat-idle` with `tcp=12s`: computed here from the packets, each TCP key's first silence of
/// 12 s or more ends at the packet that breaks it (the telnet session's 12.000326899 s ends at
/// packet 58, the first `DROP tcp-no-session` of that replay). `lsnat-edges` with `udp=200ms`:
/// the member's reply (packet 57) 0.5 s after the datagram of UDP session s12 finds it gone.
#[test]
fn the_packet_that_fires_the_expiry_is_the_one_blamed() {
    let cap = common::root().join("captures/lsnat-idle.pcap");
    let limit = 12_000_000_000u64;
    let (_, _, indexed) = sessions_from_packets(&cap);
    let mut expected: BTreeMap<u64, (Tuple, u64)> = BTreeMap::new();
    for (key, pkts) in indexed.iter().filter(|(k, _)| k.protocol == 6) {
        if let Some(w) = pkts.windows(2).find(|w| w[1].1 - w[0].1 >= limit) {
            expected.insert(w[1].0, (*key, w[1].1 - w[0].1));
        }
    }
    assert_eq!(expected.len(), 2, "telnet (12 s) and HTTP B (20 s)");
    let a = audit::run(&job(&cap, None, &["tcp=12s"])).unwrap();
    let r = &a.results[0];
    let got: BTreeMap<u64, (Tuple, u64)> = r
        .broken
        .iter()
        .map(|b| (b.packet, (b.key, b.gap.0)))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(r.count(Effect::TcpDropped), 2);
    let worst = &r.broken[0];
    assert_eq!((worst.packet, worst.gap.0), (65, 20_000_606_450));
    assert!(got.get(&58).is_some_and(|&(_, g)| g == 12_000_326_899));

    let cap = common::root().join("captures/lsnat-edges.pcap");
    let a = audit::run(&job(&cap, None, &["udp=200ms"])).unwrap();
    let r = &a.results[0];
    assert_eq!(r.count(Effect::OrphanedReply), 1);
    let b = r
        .broken
        .iter()
        .find(|b| b.effect == Effect::OrphanedReply)
        .unwrap();
    assert_eq!(b.packet, 57);
    assert_eq!(b.key.to_string(), "198.51.100.7:46186 > 198.18.0.100:9999");
    // from the datagram (packet 56, +4.498443 in golden/lsnat-edges.snap) to the reply
    let ts = |i: u64| {
        common::read_all(&cap)
            .iter()
            .find(|(m, _)| m.index == i)
            .unwrap()
            .0
            .ts
    };
    assert_eq!(b.gap, ts(57).since(ts(56)));
    assert!(b.gap > Span::from_millis(500) && b.gap < Span::from_millis(501));
}

/// Asserts that for each (class, policy key) the gap table's "nothing breaks with KEY > max" is
/// exact on `cap`: one nanosecond more than the class's largest gap breaks nothing, the largest
/// gap itself breaks a session (for `tcp-closed` and `tcp-reset`, whose connections had ended:
/// loses a late packet, `dropped_after_close`). Returns the audit without policies.
fn assert_exact_thresholds(
    cap: &Path,
    config: Option<&Path>,
    classes: &[(&str, &str)],
) -> audit::Audit {
    let a = audit::run(&job(cap, config, &[])).unwrap();
    for &(class, key) in classes {
        let d = &a
            .gaps
            .sessions
            .iter()
            .find(|(c, _)| c.name() == class)
            .unwrap_or_else(|| panic!("{}: no {class} gaps", cap.display()))
            .1;
        let safe = d.safe_timeout().unwrap();
        let at = |ns: u64| {
            let p = format!("{key}={ns}ns");
            let r = &audit::run(&job(cap, config, &[&p])).unwrap().results[0];
            if class == "tcp-closed" || class == "tcp-reset" {
                assert_eq!(r.total_broken(), 0, "{class}: {p} breaks no session");
                r.dropped_after_close
            } else {
                r.dropped_after_close + r.total_broken()
            }
        };
        assert_eq!(at(safe.0), 0, "{class}: {key} just above the largest gap");
        assert!(at(d.max.0) >= 1, "{class}: {key} equal to the largest gap");
    }
    a
}

/// The gap table's "nothing breaks with a timeout above the largest gap" is exact: one
/// nanosecond more breaks nothing, the largest gap itself breaks a session.
#[test]
fn the_largest_gap_is_the_exact_threshold() {
    let cap = common::root().join("captures/lsnat-idle.pcap");
    assert_exact_thresholds(
        &cap,
        None,
        &[("udp", "udp"), ("icmp", "icmp"), ("tcp-established", "tcp")],
    );
    // `lsnat-pool`: four packets in three sessions came after an RST, the last 40,916 ns after
    // it. A shorter `tcp-rst` grace loses them; the audit counts those sessions apart from the
    // broken ones (before, it counted nothing, and the gap table's "nothing breaks with
    // tcp-rst > 0.000s" had nothing to match).
    let pool = common::root().join("captures/lsnat-pool.pcap");
    let a = assert_exact_thresholds(&pool, None, &[("tcp-reset", "tcp-rst")]);
    let reset = class(&a, "tcp-reset");
    assert_eq!((reset.count, reset.sessions), (4, 3));
    let r = audit::run(&job(&pool, None, &["tcp-rst=0"])).unwrap();
    assert_eq!(r.results[0].dropped_after_close, 3);
}

fn class<'a>(a: &'a audit::Audit, name: &str) -> &'a audit::gaps::Distribution {
    &a.gaps
        .sessions
        .iter()
        .find(|(c, _)| c.name() == name)
        .unwrap_or_else(|| panic!("no {name} gaps"))
        .1
}

/// A translated ICMP error about a session is not one of its packets: the engine does not
/// refresh the session on it (RFC 7857 §2.1), so it starts no idle gap and ends none, and its
/// outcome (no TCP state) does not change the class of the session's next gap.
///
/// `lsnat-edges` (golden/lsnat-edges.snap): UDP session s11 is one datagram (packet 54) and an
/// ICMP error about it (55), so no gap; s12 a datagram, its reply 0.5 s later and an ICMP error
/// (56–58), so one gap. With s6–s8 (one gap each), s9 (5) and s10 (3), 12 UDP gaps in 6
/// sessions. `zeek__smtp` from the corpus: an SMTP session through which an intermediate router
/// sends four ICMP errors (packets 26, 28–30) while it is established; its only opening gaps are
/// SYN → SYN-ACK (0.346950 s) and SYN-ACK → ACK, and the thresholds hold for every TCP class.
#[test]
fn icmp_errors_are_not_session_activity_in_the_gaps() {
    let cap = common::root().join("captures/lsnat-edges.pcap");
    let a = audit::run(&job(&cap, None, &[])).unwrap();
    let udp = class(&a, "udp");
    assert_eq!((udp.count, udp.sessions), (12, 6));
    assert_eq!(udp.max.0, 500_449_672);

    let scratch = common::scratch();
    let Some(corpus) = common::corpus() else {
        eprintln!("skipping zeek__smtp.pcap: the capture corpus is absent");
        return;
    };
    let cap = corpus.join("zeek__smtp.pcap");
    let cfg = scratch.path().join("zeek__smtp.toml");
    std::fs::write(&cfg, common::derive_config(&cap).unwrap()).unwrap();
    let a = assert_exact_thresholds(
        &cap,
        Some(&cfg),
        &[
            ("tcp-opening", "tcp-opening"),
            ("tcp-established", "tcp"),
            ("tcp-closing", "tcp-closing"),
        ],
    );
    let opening = class(&a, "tcp-opening");
    assert_eq!((opening.count, opening.sessions), (2, 1));
    assert_eq!(opening.max.0, 346_950_000);
}

fn strip_names(mut v: serde_json::Value) -> serde_json::Value {
    let o = v.as_object_mut().unwrap();
    for k in ["name", "source", "value_ns"] {
        o.remove(k);
    }
    v
}

/// `--sweep` points and the same values given as `--policy`, through the command line and its
/// JSON: every number equal.
#[test]
fn sweep_points_equal_individual_policy_runs() {
    let scratch = common::scratch();
    let cap = common::root().join("captures/lsnat-idle.pcap");
    let sweep_json = scratch.path().join("sweep.json");
    let svg = scratch.path().join("sweep.svg");
    let st = common::lsnat()
        .args([
            "audit",
            cap.to_str().unwrap(),
            "-q",
            "--sweep",
            "udp=5s..40s:6",
        ])
        .args([
            "--json",
            sweep_json.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sweep_json).unwrap()).unwrap();
    assert_eq!(s["schema"], "lsnat-audit/1");
    let points = s["sweep"]["points"].as_array().unwrap().clone();
    assert_eq!(points.len(), 6);
    let mut cmd = common::lsnat();
    cmd.args(["audit", cap.to_str().unwrap(), "-q"]);
    for p in &points {
        cmd.args(["-p", &format!("udp={}ns", p["value_ns"])]);
    }
    let single_json = scratch.path().join("single.json");
    assert!(
        cmd.args(["--json", single_json.to_str().unwrap()])
            .status()
            .unwrap()
            .success()
    );
    let one: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&single_json).unwrap()).unwrap();
    let singles = one["policies"].as_array().unwrap();
    assert_eq!(singles.len(), points.len());
    let mut broken = Vec::new();
    for (p, q) in points.iter().zip(singles) {
        assert_eq!(strip_names(p.clone()), strip_names(q.clone()));
        broken.push(p["broken"]["total"].as_u64().unwrap());
    }
    // 5 s cuts the 15 s and 20 s pauses (UDP only); 40 s cuts nothing
    assert_eq!(broken.first(), Some(&2));
    assert_eq!(broken.last(), Some(&0));
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 3);
    assert!(svg.contains("udp timeout") && svg.contains("sessions broken"));
}

/// A sweep point's name is a policy that `-p` takes back, with the same value: up to the
/// longest duration there is (u64::MAX ns), where the name used to be a rounded float that `-p`
/// refused as too long.
#[test]
fn sweep_point_names_are_policies_with_the_same_value() {
    let scratch = common::scratch();
    let cap = common::root().join("captures/rfc2391-fig1.pcap");
    let run = |args: &[&str]| {
        let json = scratch.path().join("out.json");
        let out = common::lsnat()
            .args(["audit", cap.to_str().unwrap(), "-q", "--json"])
            .arg(&json)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        common::read_json(&json)
    };
    let s = run(&["--sweep", "udp=1.000000001s..18446744073.709551615s:4"]);
    let points = s["sweep"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    assert_eq!(points[3]["value_ns"].as_u64(), Some(u64::MAX));
    assert_eq!(points[0]["name"], "udp=1.000000001s");
    let mut args = Vec::new();
    for p in points {
        args.push("-p".to_string());
        args.push(p["name"].as_str().unwrap().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let one = run(&args);
    let singles = one["policies"].as_array().unwrap();
    assert_eq!(singles.len(), points.len());
    for (p, q) in points.iter().zip(singles) {
        assert_eq!(p["name"], q["name"]);
        assert_eq!(p["value_ns"], q["timeouts"]["udp_ns"], "{}", p["name"]);
        assert_eq!(p["timeouts"], q["timeouts"]);
    }
}

/// JSON `worst[].member` is the member's address, as in the replay's JSON report.
#[test]
fn worst_cases_name_the_member_by_address() {
    let cap = common::root().join("captures/lsnat-idle.pcap");
    let a = audit::run(&job(&cap, None, &["udp=1s"])).unwrap();
    let v = report::to_json(&a, 100);
    let worst = v["policies"][0]["worst"].as_array().unwrap();
    assert!(!worst.is_empty());
    let members = ["203.0.113.1", "203.0.113.2", "203.0.113.3"];
    for (w, b) in worst.iter().zip(&a.results[0].broken) {
        assert_eq!(w["member"], members[b.member], "{w}");
    }
}

/// `--worst 0` turns the list of worst cases off; it does not claim that nothing broke.
#[test]
fn worst_zero_lists_nothing_and_claims_nothing() {
    let cap = common::root().join("captures/lsnat-idle.pcap");
    let a = audit::run(&job(&cap, None, &["udp=1s"])).unwrap();
    assert!(a.results[0].total_broken() > 0);
    let text = report::render(&a, 0, Some(150));
    assert!(!text.contains("no policy broke"), "{text}");
    assert!(
        text.contains("## worst cases: not listed (--worst 0)"),
        "{text}"
    );
    assert!(!text.contains("rebound-other-member"), "{text}");
    let text = report::render(&a, 10, Some(150));
    assert!(text.contains("rebound-other-member"), "{text}");
    // with nothing broken and the list on, it says so
    let a = audit::run(&job(&cap, None, &["rfc2391"])).unwrap();
    assert!(report::render(&a, 10, Some(150)).contains("none: no policy broke a session"));
}

/// The sweep takes its other timeouts from the first `-p`, or the config without one; a
/// `--require-compliant` policy is audited too but is not the sweep's base.
#[test]
fn the_sweep_base_is_the_first_policy_given_with_p() {
    let scratch = common::scratch();
    let cap = common::root().join("captures/lsnat-idle.pcap");
    let base = |extra: &[&str]| {
        let json = scratch.path().join("sweep.json");
        let out = common::lsnat()
            .args(["audit", cap.to_str().unwrap(), "-q"])
            .args([
                "--sweep",
                "udp=10s..20s:2",
                "--json",
                json.to_str().unwrap(),
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.code().is_some_and(|c| c <= 1), "{out:?}");
        let v = common::read_json(&json);
        let names: Vec<String> = v["policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        let tcp = v["sweep"]["points"][0]["timeouts"]["tcp_established_ns"].as_u64();
        (v["sweep"]["base"].as_str().unwrap().to_string(), tcp, names)
    };
    const DAY: u64 = 86_400_000_000_000;
    assert_eq!(base(&[]), ("config".into(), Some(DAY), vec![]));
    assert_eq!(
        base(&["--require-compliant", "ipvs"]),
        ("config".into(), Some(DAY), vec!["ipvs".into()])
    );
    assert_eq!(
        base(&["-p", "ipvs", "--require-compliant", "rfc-minimum"]),
        (
            "ipvs".into(),
            Some(900_000_000_000),
            vec!["ipvs".into(), "rfc-minimum".into()]
        )
    );
}

#[test]
fn exit_codes_gate_on_must_floors_and_bad_input() {
    let cap = common::root().join("captures/rfc2391-fig1.pcap");
    let cap = cap.to_str().unwrap();
    let out = common::lsnat()
        .args(["audit", cap, "-q", "--require-compliant", "ipvs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ipvs") && err.contains("rfc5382-req5-established"),
        "{err}"
    );
    let out = common::lsnat()
        .args(["audit", cap, "-q", "--require-compliant", "rfc-minimum"])
        .args(["--require-compliant", "tcp=3h,tcp-transitory=5m,udp=5m"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for bad in [
        vec!["-p", "no-such-preset"],
        vec!["-p", "udp=soon"],
        vec!["--sweep", "udp=10m..10s"],
        vec!["--svg", "/tmp/x.svg"],
    ] {
        let out = common::lsnat()
            .args(["audit", cap, "-q"])
            .args(&bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{bad:?}: {err}");
    }
    // too large, however written: the same one-line error
    for big in [
        "udp=18446744074",
        "udp=99999999999999999999",
        "udp=600000000d",
    ] {
        let out = common::lsnat()
            .args(["audit", cap, "-q", "-p", big])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{big}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{big}: {err}");
        assert!(err.contains("too long"), "{big}: {err}");
    }
    let out = common::lsnat()
        .args(["audit", "/nonexistent.pcap"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn config_file_policies_are_audited() {
    let scratch = common::scratch();
    let root = common::root();
    let cfg = scratch.path().join("with-policies.toml");
    let text = std::fs::read_to_string(root.join("captures/lsnat-idle.toml")).unwrap()
        + "\n[[policy]]\nname = \"short-udp\"\nbase = \"rfc-recommended\"\nudp = \"10s\"\n";
    std::fs::write(&cfg, text).unwrap();
    let out = common::lsnat()
        .args([
            "audit",
            root.join("captures/lsnat-idle.pcap").to_str().unwrap(),
        ])
        .args([
            "-c",
            cfg.to_str().unwrap(),
            "-p",
            "short-udp",
            "--require-compliant",
            "short-udp",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("short-udp"));
    // `lsnat replay` accepts the same file
    let st = common::lsnat()
        .args([
            "replay",
            root.join("captures/lsnat-idle.pcap").to_str().unwrap(),
        ])
        .args(["-c", cfg.to_str().unwrap(), "-q"])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Files the reader refuses (as tests/corpus.rs expects).
const MALFORMED: &[&str] = &[
    "libpcap__pcap-invalid-version-1.pcap",
    "suricata__tls_DER-incomplete-header.pcap",
    "tcpdump__mpls-traceroute.pcap",
];

/// The largest gap between two consecutive packets of one TCP or UDP flow (either direction),
/// computed here from the packets.
fn largest_flow_gap(cap: &Path) -> u64 {
    type Flow = (u8, [u8; 4], u16, [u8; 4], u16);
    let mut last: BTreeMap<Flow, u64> = BTreeMap::new();
    let mut max = 0;
    for (meta, frame) in common::read_all(cap) {
        let v = link::locate(meta.linktype, &frame);
        if v.direction == lsnat::capture::CaptureDirection::Outbound
            || meta.direction == lsnat::capture::CaptureDirection::Outbound
        {
            continue;
        }
        let Payload::Ipv4 { offset } = v.payload else {
            continue;
        };
        let b = &frame[offset..];
        let Ok(ip) = Ipv4::parse(b) else { continue };
        let (sport, dport) = match ip.l4(b) {
            L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport, .. } => (sport, dport),
            _ => continue,
        };
        let (a, z) = ((ip.src, sport), (ip.dst, dport));
        let (a, z) = if a <= z { (a, z) } else { (z, a) };
        let k = (ip.protocol, a.0, a.1, z.0, z.1);
        if let Some(&t) = last.get(&k) {
            max = max.max(meta.ts.0.saturating_sub(t));
        }
        let t = last.entry(k).or_insert(meta.ts.0);
        *t = (*t).max(meta.ts.0);
    }
    max
}

/// Every readable corpus capture is audited under every preset; where a TCP or UDP flow was
/// silent for more than 30 s, the audit's flow gaps say so, with the same largest gap.
#[test]
fn every_corpus_capture_is_audited() {
    let scratch = common::scratch();
    let Some(corpus) = common::corpus() else {
        eprintln!("skipping: the capture corpus is absent");
        return;
    };
    let mut with_long_gaps = Vec::new();
    for cap in common::captures(&corpus) {
        let file = cap.file_name().unwrap().to_str().unwrap().to_string();
        if MALFORMED.contains(&file.as_str()) {
            continue;
        }
        let cfg = scratch.path().join(format!("{file}.toml"));
        let text = common::derive_config(&cap).unwrap_or_else(|| {
            "[[virtual_server]]\nvip = \"203.0.113.250\"\nprotocol = \"tcp\"\nports = [1]\nmembers = [\"192.0.2.1\"]\n".into()
        });
        std::fs::write(&cfg, text).unwrap();
        let a = audit::run(&job(&cap, Some(&cfg), &all_policies()))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(a.results.len(), 6, "{file}");
        let _ = report::render(&a, 5, Some(150));
        let _ = report::to_json(&a, 5);
        let gap = largest_flow_gap(&cap);
        if gap > 30_000_000_000 {
            let reported = a
                .gaps
                .flows
                .iter()
                .filter(|(n, _)| matches!(*n, "tcp" | "udp"))
                .map(|(_, d)| (d.max.0, d.over_30s))
                .max()
                .unwrap_or_default();
            assert_eq!(reported.0, gap, "{file}: largest TCP/UDP flow gap");
            assert!(reported.1 > 0, "{file}: gaps over 30 s");
            with_long_gaps.push(file);
        }
    }
    eprintln!("corpus captures with TCP/UDP idle gaps over 30 s: {with_long_gaps:?}");
    assert!(
        with_long_gaps.len() >= 4,
        "expected several corpus captures with long idle gaps: {with_long_gaps:?}"
    );
}

/// IPv4 fragments of `datagram` (an unfragmented packet with a 20-byte header) with IP id
/// `ident`, each carrying at most `size` bytes (a multiple of 8) of its payload.
fn fragments(datagram: &[u8], ident: u16, size: usize) -> Vec<Vec<u8>> {
    let (header, payload) = datagram.split_at(20);
    let chunks: Vec<&[u8]> = payload.chunks(size).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut f = header.to_vec();
            f.extend_from_slice(chunk);
            let len = f.len() as u16;
            f[2..4].copy_from_slice(&len.to_be_bytes());
            f[4..6].copy_from_slice(&ident.to_be_bytes());
            let more = if i + 1 < chunks.len() { 0x2000 } else { 0 };
            let field = more | (i * size / 8) as u16;
            f[6..8].copy_from_slice(&field.to_be_bytes());
            f[10..12].copy_from_slice(&[0, 0]);
            let sum: u32 = f[..20]
                .chunks(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                .sum();
            let sum = (sum & 0xffff) + (sum >> 16);
            let sum = (sum & 0xffff) + (sum >> 16);
            f[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
            f
        })
        .collect()
}

/// A classic pcap of raw IPv4 packets (link type 101) at the given times (ms).
fn raw_pcap(path: &Path, packets: &[(u64, Vec<u8>)]) {
    let mut out = Vec::new();
    for w in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 101] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    // version 2.4: the second word is two u16s (major 2, minor 4)
    out[4..8].copy_from_slice(&[2, 0, 4, 0]);
    for (ms, p) in packets {
        let ts = 1_700_000_000_000 + ms;
        for w in [
            ts / 1000,
            (ts % 1000) * 1000,
            p.len() as u64,
            p.len() as u64,
        ] {
            out.extend_from_slice(&(w as u32).to_le_bytes());
        }
        out.extend_from_slice(p);
    }
    std::fs::write(path, out).unwrap();
}

/// Later fragments of a session's datagram are session activity for ICMP query sessions as
/// for UDP ones (their tuple has no identifier, like an ICMP error's, but they are no error):
/// an echo request in three fragments at 0, 1.5 and 3 s and the next echo at 4.5 s leave
/// gaps of 1.5 s at most, and 1.5 s is the exact threshold (an `icmp` timeout of 1.5 s cuts
/// the session, one nanosecond more breaks nothing); a UDP datagram the same way beside it.
#[test]
fn later_fragments_of_icmp_and_udp_sessions_are_activity_in_the_gaps() {
    use etherparse::PacketBuilder;
    let (client, vip) = ([198, 51, 100, 1], [192, 0, 2, 100]);
    let echo = |request: bool, seq: u16, payload: &[u8]| {
        let mut v = Vec::new();
        let (s, d) = if request {
            (client, vip)
        } else {
            (vip, client)
        };
        let b = PacketBuilder::ipv4(s, d, 64);
        if request {
            b.icmpv4_echo_request(4242, seq).write(&mut v, payload)
        } else {
            b.icmpv4_echo_reply(4242, seq).write(&mut v, payload)
        }
        .unwrap();
        v
    };
    let udp = |request: bool, payload: &[u8]| {
        let mut v = Vec::new();
        let (s, sp, d, dp) = if request {
            (client, 40000, vip, 53)
        } else {
            (vip, 53, client, 40000)
        };
        PacketBuilder::ipv4(s, d, 64)
            .udp(sp, dp)
            .write(&mut v, payload)
            .unwrap();
        v
    };
    let big = [7u8; 40];
    let mut packets = Vec::new();
    for (i, f) in fragments(&echo(true, 1, &big), 77, 16)
        .into_iter()
        .enumerate()
    {
        packets.push((1500 * i as u64, f));
    }
    for (i, f) in fragments(&udp(true, &big), 78, 16).into_iter().enumerate() {
        packets.push((100 + 1500 * i as u64, f));
    }
    packets.push((4500, echo(true, 2, b"x")));
    packets.push((4510, echo(false, 2, b"x")));
    packets.push((4600, udp(true, b"x")));
    packets.push((4610, udp(false, b"x")));
    packets.sort_by_key(|(ms, _)| *ms);
    assert_eq!(packets.len(), 10, "three fragments each");

    let scratch = common::scratch();
    let cap = scratch.path().join("fragments.pcap");
    raw_pcap(&cap, &packets);
    let cfg = scratch.path().join("fragments.toml");
    std::fs::write(
        &cfg,
        "view = \"client-side\"\n\
         [[virtual_server]]\nname = \"ping\"\nvip = \"192.0.2.100\"\nprotocol = \"icmp\"\nmembers = [\"10.1.0.1\"]\n\
         [[virtual_server]]\nname = \"dns\"\nvip = \"192.0.2.100\"\nprotocol = \"udp\"\nports = [53]\nmembers = [\"10.1.0.1\"]\n",
    )
    .unwrap();
    let a = assert_exact_thresholds(&cap, Some(&cfg), &[("icmp", "icmp"), ("udp", "udp")]);
    for name in ["icmp", "udp"] {
        let d = class(&a, name);
        assert_eq!((d.count, d.sessions), (4, 1), "{name}");
        assert_eq!(d.max, Span::from_millis(1500), "{name}");
    }
}

/// A closed session ends a close grace after its close, whatever comes after (RFC 2391 §2.4),
/// so the gap of a packet after the close, in the `tcp-closed` class, is the time since the
/// close, and the audit's "nothing breaks above" figure for it is the grace `replay` needs.
/// `lsnat-router.pcap` with session s3's final ACK (the packet that closed it) repeated 1.5 s
/// and 3 s later, as a client whose ACK got lost retransmits: the largest closed gap is 3 s
/// (before, 1.5 s, the time between the two copies, and a grace above it still lost the
/// second); replayed with a grace of 3 s plus 1 ns both copies are forwarded, with 3 s the
/// second is dropped.
#[test]
fn closed_gaps_count_from_the_close() {
    let scratch = common::scratch();
    let root = common::root();
    let config = root.join("captures/lsnat-router.toml");
    let mut cap = common::Pcap::read(&root.join("captures/lsnat-router.pcap"));
    let report = common::replay_json(
        scratch.path(),
        &root.join("captures/lsnat-router.pcap"),
        &[],
    );
    let s3 = report["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == 3)
        .unwrap();
    assert_eq!(s3["end"], "fin");
    let closed = s3["last_ts_ns"].as_u64().unwrap();
    let ts = |h: &[u8; 16]| {
        let w = |i: usize| u64::from(u32::from_le_bytes(h[i..i + 4].try_into().unwrap()));
        w(0) * 1_000_000_000 + w(4)
    };
    let last = cap
        .records
        .iter()
        .find(|(h, f)| ts(h) == closed && f[23] == 6)
        .cloned()
        .expect("s3's last packet");
    for later in [1_500_000_000u64, 3_000_000_000] {
        let t = closed + later;
        let mut h = last.0;
        h[..4].copy_from_slice(&((t / 1_000_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((t % 1_000_000_000) as u32).to_le_bytes());
        cap.records.push((h, last.1.clone()));
    }
    cap.records.sort_by_key(|(h, _)| ts(h));
    let index_of = |t: u64| 1 + cap.records.iter().position(|(h, _)| ts(h) == t).unwrap() as u64;
    let (copy1, copy2) = (
        index_of(closed + 1_500_000_000),
        index_of(closed + 3_000_000_000),
    );
    let input = scratch.path().join("router-late-acks.pcap");
    cap.write(&input);

    let a = assert_exact_thresholds(&input, Some(&config), &[("tcp-closed", "tcp-fin")]);
    let d = class(&a, "tcp-closed");
    assert_eq!(d.max, Span(3_000_000_000));
    assert_eq!(d.safe_timeout(), Some(Span(3_000_000_001)));
    // The config's 2 s grace loses the session's late ACKs: counted once, as the session's.
    let a = audit::run(&job(&input, Some(&config), &["config"])).unwrap();
    assert_eq!(a.results[0].dropped_after_close, 1);

    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("tcp_close_grace = \"2s\""));
    for (grace, dropped) in [("3.000000001s", vec![]), ("3s", vec![copy2])] {
        let c = scratch.path().join("grace.toml");
        std::fs::write(
            &c,
            text.replace(
                "tcp_close_grace = \"2s\"",
                &format!("tcp_close_grace = \"{grace}\""),
            ),
        )
        .unwrap();
        let r = common::replay_json(scratch.path(), &input, &["-c".as_ref(), c.as_os_str()]);
        let drops: Vec<u64> = r["dropped_packets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["packet"].as_u64().unwrap())
            .filter(|&p| p == copy1 || p == copy2)
            .collect();
        assert_eq!(drops, dropped, "grace {grace}");
    }
}

/// A policy sets each timeout once: two keys that set the same one are refused, on the
/// command line and in a `[[policy]]` table alike, so a table (whose keys come in no order of
/// the file's) means what the same keys given with `-p` mean. Before, the table's keys were
/// applied in alphabetical order, the command line's left to right, with no error.
/// `tcp-close-grace`, `tcp-fin`'s other name, may be 0 like it (before: refused).
#[test]
fn a_policy_sets_each_timeout_once() {
    let cap = common::root().join("captures/lsnat-idle.pcap");
    let cfg = lsnat::config::load(&cap.with_extension("toml")).unwrap();
    for spec in [
        "udp=5m,udp=1s",
        "tcp=3h,tcp-established=1h",
        "tcp-transitory=1m,tcp-opening=10m",
        "tcp-closing=1m,tcp-transitory=4m",
        "tcp-fin=1s,tcp-close-grace=2s",
        "max-sessions=10,max_sessions=20",
    ] {
        let e = audit::resolve(spec, &cfg, &[]).err();
        assert!(e.is_some(), "{spec} accepted");
    }
    for spec in [
        "tcp=2h,tcp-transitory=4m,udp=5m",
        "base=ipvs,udp=5m",
        "tcp-close-grace=0",
        "tcp-fin=0,tcp-rst=0",
    ] {
        assert!(audit::resolve(spec, &cfg, &[]).is_ok(), "{spec} refused");
    }
    let (code, err) = audit_with_policy(
        "a",
        "[[policy]]\nname = \"a\"\ntcp_opening = \"10m\"\ntcp_transitory = \"1m\"\n",
    );
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("policy[0]") && err.contains("set the same timeout"),
        "{err}"
    );
}

/// Session-nanoseconds summed over a capture's sessions are a u128; the JSON writes them up to
/// u64::MAX (before, the low 64 bits: 2^64 + 5 ns came out as 5).
#[test]
fn session_ns_beyond_64_bits_is_written_saturated() {
    let cap = common::root().join("captures/lsnat-idle.pcap");
    let a = audit::run(&job(&cap, None, &["config"])).unwrap();
    let mut r = a.results[0].clone();
    r.session_ns = (1u128 << 64) + 5;
    let v = report::result_json(&r, 0);
    assert_eq!(v["cost"]["session_ns"], u64::MAX);
}

/// A `[[policy]]` whose `base` is not a string names the field and the presets (before:
/// "unknown preset ``").
#[test]
fn a_policy_base_that_is_not_a_name_is_refused_by_field() {
    let (code, err) = audit_with_policy("x", "[[policy]]\nname = \"x\"\nbase = 3\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("field `policy[0].base`") && err.contains("rfc2391"),
        "{err}"
    );
}

/// `lsnat audit -q -p NAME` on `lsnat-idle.pcap` with its config plus `policy` (a `[[policy]]`
/// table's text): its exit code and stderr.
fn audit_with_policy(name: &str, policy: &str) -> (Option<i32>, String) {
    let cap = common::root().join("captures/lsnat-idle.pcap");
    let scratch = common::scratch();
    let config = scratch.path().join("policies.toml");
    let base = std::fs::read_to_string(cap.with_extension("toml")).unwrap();
    std::fs::write(&config, format!("{base}\n{policy}")).unwrap();
    let o = common::lsnat()
        .args(["audit", "-q", "-p", name, "-c"])
        .arg(&config)
        .arg(&cap)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
