//! Recorded now, checked now: runs the recording scripts in network namespaces (root, nftables,
//! tcpdump, tshark, conntrack, python3) into a scratch directory, then checks that lsnat's
//! replay of what arrived at the kernel's router is byte-identical to what the kernel sent.
//!
//! The committed captures are checked by `tests/kernel.rs` on any machine; this test proves the
//! recording scripts still work and that the agreement is not an accident of one recording.
//! Without root or the tools it prints why and passes (`.ci/run` installs the tools and runs as
//! root). Namespaces are named `lsciPID-*` (this test process's id: two test runs on one
//! machine, as two checkouts' CI jobs, never share or tear down each other's lab) and torn
//! down by the scripts, whatever happens.

mod common;

use std::path::Path;
use std::process::Command;

const TOOLS: &[&str] = &[
    "ip",
    "ss",
    "nft",
    "ethtool",
    "tcpdump",
    "conntrack",
    "tshark",
    "mergecap",
    "capinfos",
    "ping",
    "curl",
    "python3",
    "stdbuf",
    "timeout",
];

/// Whether `tool` is on the PATH.
fn has(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Why the live recording cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root".into());
    }
    let missing: Vec<&str> = TOOLS.iter().copied().filter(|t| !has(t)).collect();
    if !missing.is_empty() {
        return Some(format!("missing {}", missing.join(", ")));
    }
    let probe = Command::new("ip")
        .args(["netns", "add", &format!("{}-probe", prefix())])
        .output()
        .ok()?;
    let _ = Command::new("ip")
        .args(["netns", "del", &format!("{}-probe", prefix())])
        .output();
    if !probe.status.success() {
        return Some(format!(
            "cannot create network namespaces: {}",
            String::from_utf8_lossy(&probe.stderr).trim()
        ));
    }
    None
}

/// This test process's namespace prefix.
fn prefix() -> String {
    format!("lsci{}", std::process::id())
}

/// Runs `scripts/SCRIPT` with captures and kernel references going to a fresh scratch
/// directory; returns it (removed when dropped). Like `record-all.sh`, a run is tried up to three times: a recording
/// refuses itself when a tcpdump reports kernel drops (seen with `-i any`).
fn record(script: &str, env: &[(&str, &str)]) -> tempfile::TempDir {
    let mut errors = String::new();
    for attempt in 1..=3 {
        let dir = common::scratch();
        let out = Command::new("bash")
            .arg(common::root().join("scripts").join(script))
            .env("OUT", dir.path())
            .env("REF", dir.path())
            .env("LAB_PREFIX", prefix())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        if out.status.success() {
            return dir;
        }
        errors += &format!(
            "attempt {attempt}:\n{}\n",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    panic!("{script} failed three times:\n{errors}");
}

fn check(dir: &Path, name: &str) -> usize {
    common::matches_kernel(
        &dir.join(format!("{name}.pcap")),
        &dir.join(format!("{name}.kernel-out.pcap")),
    )
}

/// A fresh recording of both directions of the router's interfaces (what arrived and what the
/// kernel sent, merged, as `tcpdump` without `-Q` would have taken them) gets the warning of
/// `lsnat::forwarded_copies`, a pair for about every packet the kernel forwarded; each
/// direction alone gets none.
fn both_directions_are_warned_about(dir: &Path) {
    let arrived = dir.join("lsnat-router.pcap");
    let left = dir.join("lsnat-router.kernel-out.pcap");
    let (both, tags) = common::Pcap::merge(&arrived, &left);
    let merged = dir.join("both-directions.pcap");
    both.write(&merged);
    let config = dir.join("lsnat-router.toml");
    let warnings = |cap: &Path| {
        let r = common::replay_json(dir, cap, &["-c".as_ref(), config.as_os_str()]);
        r["warnings"].as_array().expect("warnings").clone()
    };
    // The pairs past the first one that the warning counts.
    let pairs = |cap: &Path| -> usize {
        let w = warnings(cap);
        let w = w.first().and_then(|w| w.as_str()).unwrap_or("");
        w.split_once(", and so do ")
            .and_then(|(_, rest)| rest.split(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("{}: no forwarded-copies warning: {w:?}", cap.display()))
    };
    let ipv4_left = (both.records.iter().zip(&tags))
        .filter(|((_, f), from_left)| **from_left && f[12..14] == [8, 0])
        .count();
    assert!(ipv4_left > 100, "{ipv4_left} forwarded");
    let merged_pairs = pairs(&merged);
    assert!(
        merged_pairs + 1 + 10 >= ipv4_left,
        "{merged_pairs} pairs, {ipv4_left} forwarded"
    );
    // The same traffic as dumpcap on both interfaces wrote it: one pcapng, two interface
    // descriptions, no direction flags.
    let dumpcap = dir.join("lsnat-router.dumpcap.pcapng");
    if dumpcap.exists() {
        let dumpcap_pairs = pairs(&dumpcap);
        assert!(
            dumpcap_pairs + 1 + 10 >= ipv4_left,
            "dumpcap: {dumpcap_pairs} pairs, {ipv4_left} forwarded"
        );
    } else {
        eprintln!("no dumpcap here: its capture of both directions is not checked");
    }
    for side in [&arrived, &left] {
        assert_eq!(
            warnings(side),
            Vec::<serde_json::Value>::new(),
            "{}",
            side.display()
        );
    }
}

/// Fresh recordings match the kernel byte for byte: LSNAT (RFC 2391 §3.1, nftables DNAT round
/// robin: HTTP closed by either side, an RST, keep-alive, UDP, ICMP echo), GRE (§2.2), a
/// static mapping (§3, §4.1) and ICMP errors for NAPT sessions (§3.2, RFC 3022 §4.3). The
/// other modes are recorded only by the full `record-modes.sh` run and checked on the
/// committed captures.
#[test]
fn fresh_recordings_match_the_kernel() {
    if let Some(why) = unavailable() {
        eprintln!("skipping the live kernel recording: {why}");
        return;
    }
    // dumpcap (Wireshark's) is optional: without it, only its capture goes unchecked.
    let dumpcap = has("dumpcap");
    let dir = record(
        "record-lsnat.sh",
        &[("DUMPCAP", if dumpcap { "1" } else { "0" })],
    );
    assert!(check(dir.path(), "lsnat-router") > 100);
    both_directions_are_warned_about(dir.path());

    let dir = record(
        "record-modes.sh",
        &[("CASES", "modes-gre modes-static-member modes-napt-icmp")],
    );
    assert!(check(dir.path(), "modes-gre") > 20);
    assert!(check(dir.path(), "modes-static-member") > 30);
    // RFC 3022 §4.3 through NAPT: the kernel's own ICMP port unreachables, translated back.
    assert!(check(dir.path(), "modes-napt-icmp") > 20);
}
