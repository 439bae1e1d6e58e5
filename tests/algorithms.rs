//! One golden per load-share algorithm configuration and capture: `tests/algorithms/CAPTURE/`
//! holds configurations for `captures/CAPTURE.pcap` (one per algorithm or variant); each
//! replay's decisions and load report are compared with `golden/algorithms/CAPTURE--NAME.snap`.
//! To cover another capture, add a folder named after it with its configurations.

mod common;

use lsnat::check;
use lsnat::time::Span;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// (capture, config) pairs: every `tests/algorithms/NAME/*.toml` with `captures/NAME.pcap`.
fn cases() -> Vec<(PathBuf, PathBuf)> {
    let root = common::root();
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("tests/algorithms"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let capture = ["pcap", "pcapng"]
            .iter()
            .map(|ext| root.join("captures").join(format!("{name}.{ext}")))
            .find(|p| p.exists());
        let Some(capture) = capture else {
            panic!("{}: no captures/{name}.pcap for it", dir.display());
        };
        let mut configs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        configs.sort();
        for c in configs {
            out.push((capture.clone(), c));
        }
    }
    out
}

#[test]
fn every_algorithm_matches_its_golden() {
    let cases = cases();
    for name in lsnat::engine::Algorithm::NAMES {
        assert!(
            cases.iter().any(|(_, c)| std::fs::read_to_string(c)
                .unwrap()
                .contains(&format!("algorithm = \"{name}\""))),
            "no algorithm golden uses `{name}`"
        );
    }
    for (capture, config) in cases {
        let text = check::render_algorithm(&capture, &config, Span::from_secs(2))
            .unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        let name = format!("{}--{}", check::name(&capture), check::name(&config));
        insta::with_settings!({
            snapshot_path => "../golden/algorithms",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, text);
        });
    }
}

#[test]
fn round_robin_config_decides_as_the_capture_golden() {
    // The per-algorithm configs for the recorded capture bind every session to the same member
    // as the capture's own golden (round-robin, same member order) does.
    let root = common::root();
    let cap = root.join("captures/lsnat-router.pcap");
    let own = check::render(&cap, None, None).unwrap().text;
    let rr = check::render_algorithm(
        &cap,
        &root.join("tests/algorithms/lsnat-router/round-robin.toml"),
        Span::from_secs(2),
    )
    .unwrap();
    let decisions = rr
        .lines()
        .filter(|l| l.starts_with('s') && l[1..].starts_with(|c: char| c.is_ascii_digit()));
    let mut n = 0;
    for line in decisions {
        n += 1;
        // "sN +t vs proto key -> MEMBER round-robin [...]"
        let mut parts = line.split(" -> ");
        let head = parts.next().unwrap();
        let member = parts.next().unwrap().split(' ').next().unwrap();
        let number = head.split(' ').next().unwrap();
        let session_line = own
            .lines()
            .find(|l| l.starts_with(&format!("{number} ")))
            .unwrap_or_else(|| panic!("{number} not in the capture golden"));
        assert!(
            session_line.contains(&format!("=> {member} ")),
            "{line}\nvs\n{session_line}"
        );
    }
    assert_eq!(n, 13);
}

/// Per member (address): sessions bound to it, from the report's session records.
fn sessions_per_member(report: &serde_json::Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for s in report["sessions"].as_array().expect("sessions") {
        if let Some(member) = s["member"].as_str() {
            *out.entry(member.to_string()).or_default() += 1;
        }
    }
    out
}

/// Per member (address): packets and IP bytes (total-length fields) in its capture
/// (`--members-dir`), written by the replay apart from any report; members with an empty
/// capture are left out.
fn member_captures(dir: &Path) -> BTreeMap<String, [u64; 2]> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let member = name
            .strip_prefix("member-")
            .expect("member-ADDR.pcap")
            .to_string();
        let datagrams = common::ipv4_datagrams(&path);
        let bytes = datagrams
            .iter()
            .map(|(_, d)| u64::from(u16::from_be_bytes([d[2], d[3]])))
            .sum();
        if !datagrams.is_empty() {
            out.insert(member, [datagrams.len() as u64, bytes]);
        }
    }
    out
}

#[test]
fn load_report_counts_every_packet_of_every_session() {
    // The load table counts sessions as they are bound and translated packets as they pass.
    // Per member it must agree with the session records (sessions: the member a session went
    // to, a static mapping's backup included) and with the member's own capture (packets and
    // bytes: the packet that binds a session, fragments released with their first fragment
    // and ICMP errors about a session included).
    let root = common::root();
    let mut cases = cases();
    for c in [
        "rfc2391-fig1",
        "lsnat-router",
        "lsnat-client-side",
        "lsnat-edges",
        "modes-static-member",
        "modes-static-port",
    ] {
        let cap = root.join("captures").join(format!("{c}.pcap"));
        cases.push((cap.clone(), cap.with_extension("toml")));
    }
    let mut checked = 0;
    for (capture, config) in cases {
        let dir = common::scratch();
        let (output, members) = (dir.path().join("o.pcap"), dir.path().join("members"));
        let report = common::replay_json(
            dir.path(),
            &capture,
            &[
                "--config".as_ref(),
                config.as_ref(),
                "--output".as_ref(),
                output.as_ref(),
                "--members-dir".as_ref(),
                members.as_ref(),
            ],
        );
        let (mut load_sessions, mut load_traffic) = (BTreeMap::new(), BTreeMap::new());
        for m in report["load"]["members"].as_array().expect("load members") {
            let n = |k: &str| m[k].as_u64().unwrap();
            let addr = m["member"].as_str().unwrap().to_string();
            if n("sessions") > 0 {
                load_sessions.insert(addr.clone(), n("sessions"));
            }
            if n("packets") > 0 {
                load_traffic.insert(addr, [n("packets"), n("bytes")]);
            }
        }
        let sessions = sessions_per_member(&report);
        assert!(!sessions.is_empty(), "{}: no sessions", config.display());
        assert_eq!(load_sessions, sessions, "sessions: {}", config.display());
        let traffic = member_captures(&members);
        assert_eq!(load_traffic, traffic, "traffic: {}", config.display());
        checked += 1;
    }
    assert!(checked >= 40, "{checked} cases");
}

/// Weights in the hashing algorithms, as IPVS `sh` and `mh` take them: the source-hash and
/// maglev configurations of `lsnat-client-side` with the members weighted 1, 0 and 2. The
/// member of weight 0 gets no session, and each source-hash session goes where its recorded
/// hash falls among the weights (h mod 3: 0 is the first member's, 1 and 2 the third's). The
/// first version ignored weights: the second member took sessions.
#[test]
fn hashing_algorithms_follow_the_members_weights() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let capture = common::root().join("captures/lsnat-client-side.pcap");
    for name in ["source-hash", "maglev"] {
        let text = std::fs::read_to_string(
            common::root().join(format!("tests/algorithms/lsnat-client-side/{name}.toml")),
        )
        .unwrap();
        let pool = r#"members = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]"#;
        assert_eq!(text.matches(pool).count(), 3, "{name}");
        let weighted = text.replace(
            pool,
            r#"members = ["203.0.113.1", { addr = "203.0.113.2", weight = 0 }, { addr = "203.0.113.3", weight = 2 }]"#,
        );
        let cfg = dir.join(format!("{name}-weighted.toml"));
        std::fs::write(&cfg, weighted).unwrap();
        let report = common::replay_json(dir, &capture, &["-c".as_ref(), cfg.as_os_str()]);
        let per_member = sessions_per_member(&report);
        assert_eq!(
            per_member.get("203.0.113.2"),
            None,
            "{name}: {per_member:?}"
        );
        assert_eq!(
            per_member.values().sum::<u64>(),
            13,
            "{name}: {per_member:?}"
        );
        if name == "source-hash" {
            for s in report["sessions"].as_array().unwrap() {
                let h = u64::from_str_radix(s["decision"]["hash"].as_str().unwrap(), 16).unwrap();
                let want = if h % 3 == 0 {
                    "203.0.113.1"
                } else {
                    "203.0.113.3"
                };
                assert_eq!(s["member"], want, "{s}");
            }
        }
    }
}
