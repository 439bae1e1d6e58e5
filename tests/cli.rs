//! The command line end to end: the bundled replay, bad input giving one clear line and exit 2,
//! `lsnat check` exiting 1 on a difference.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn lsnat(args: &[&str]) -> Output {
    common::lsnat().args(args).output().expect("runs")
}

/// Runs `lsnat ARGS` and asserts that it succeeded (its stderr in the message if not).
fn lsnat_ok(args: &[&str]) -> Output {
    let o = lsnat(args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn one_error_line(o: &Output, must_contain: &[&str]) {
    assert_eq!(
        o.status.code(),
        Some(2),
        "exit code; stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line of error, got: {err}");
    assert!(lines[0].starts_with("lsnat: error: "), "{err}");
    for m in must_contain {
        assert!(lines[0].contains(m), "`{}` should mention `{m}`", lines[0]);
    }
}

#[test]
fn replays_the_rfc_figure_1_capture_with_its_config_beside_it() {
    let scratch = common::scratch();
    let out = scratch.path().join("fig1.pcap");
    let json = scratch.path().join("fig1.json");
    let o = lsnat_ok(&[
        "replay",
        "captures/rfc2391-fig1.pcap",
        "-o",
        out.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("172.85.0.1") && table.contains("172.85.0.3"),
        "{table}"
    );
    let report = common::read_json(&json);
    assert_eq!(report["schema"], "lsnat-replay/1");
    let sessions = report["sessions"].as_array().unwrap();
    let find = |client: &str| sessions.iter().find(|s| s["orig_h"] == client).unwrap();
    // RFC 2391 figure 1: {s=198.76.29.7, 2745, d=172.87.0.100, 80} -> {d=172.85.0.1, 80}
    let http = find("198.76.29.7");
    assert_eq!(
        (http["orig_p"].as_u64(), http["resp_p"].as_u64()),
        (Some(2745), Some(80))
    );
    assert_eq!(http["member"], "172.85.0.1");
    assert_eq!(http["translated"]["dst"], "172.85.0.1");
    assert_eq!(http["end"], "fin");
    // {s=198.23.47.2, 3200, d=172.87.0.100, 23} -> {d=172.85.0.3, 23}
    let telnet = find("198.23.47.2");
    assert_eq!(
        (telnet["orig_p"].as_u64(), telnet["resp_p"].as_u64()),
        (Some(3200), Some(23))
    );
    assert_eq!(telnet["member"], "172.85.0.3");
    assert!(!out.with_extension("pcap.partial").exists());
}

#[test]
fn missing_file_is_one_line_exit_2() {
    one_error_line(
        &lsnat(&[
            "replay",
            "captures/nope.pcap",
            "-c",
            "captures/rfc2391-fig1.toml",
        ]),
        &["captures/nope.pcap"],
    );
}

#[test]
fn not_a_capture_is_one_line_exit_2() {
    one_error_line(
        &lsnat(&["replay", "README.md", "-c", "captures/rfc2391-fig1.toml"]),
        &["README.md"],
    );
}

#[test]
fn invalid_config_names_file_line_and_field() {
    let scratch = common::scratch();
    let cfg = bundled_config_with(scratch.path(), "bad.toml", "round-robin", "coin-toss");
    let o = lsnat(&[
        "replay",
        "captures/rfc2391-fig1.pcap",
        "-c",
        cfg.to_str().unwrap(),
    ]);
    one_error_line(
        &o,
        &["bad.toml:", "virtual_server[0].algorithm", "coin-toss"],
    );
}

#[test]
fn output_equal_to_input_is_refused_and_input_untouched() {
    let scratch = common::scratch();
    let cap = scratch.path().join("copy.pcap");
    std::fs::copy(common::root().join("captures/rfc2391-fig1.pcap"), &cap).unwrap();
    let before = std::fs::read(&cap).unwrap();
    let c = cap.to_str().unwrap();
    let o = lsnat(&["replay", c, "-c", "captures/rfc2391-fig1.toml", "-o", c]);
    one_error_line(&o, &["copy.pcap", "input"]);
    assert_eq!(std::fs::read(&cap).unwrap(), before);
}

#[test]
fn output_path_that_is_a_folder_is_refused_before_any_work() {
    // Refused up front (the replay would otherwise run to the end and fail at the rename),
    // for the rewritten capture and the JSON report alike; nothing is left in the folder.
    let scratch = common::scratch();
    let dir = scratch.path().to_str().unwrap();
    let cap = "captures/rfc2391-fig1.pcap";
    for args in [
        vec!["replay", cap, "-o", dir],
        vec!["replay", cap, "--json", dir, "--quiet"],
    ] {
        let o = lsnat(&args);
        one_error_line(&o, &[dir, "folder"]);
        assert!(o.stdout.is_empty(), "no summary for a refused replay");
    }
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
    let partial = format!("{dir}.partial");
    assert!(!std::path::Path::new(&partial).exists());
}

#[test]
fn members_dir_that_is_a_file_is_refused_and_the_file_kept() {
    // `--members-dir` names a folder; an existing file of that name is said not to be one
    // (not the OS's "File exists"), is left as it was, and no rewritten capture is left.
    let scratch = common::scratch();
    let file = scratch.path().join("members");
    std::fs::write(&file, b"notes").unwrap();
    let out = scratch.path().join("out.pcap");
    let f = file.to_str().unwrap();
    let o = lsnat(&[
        "replay",
        "captures/rfc2391-fig1.pcap",
        "-o",
        out.to_str().unwrap(),
        "--members-dir",
        f,
    ]);
    one_error_line(&o, &[f, "exists and is not a folder"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"notes");
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 1);
}

/// `--output /dev/null` is how an engineer times a replay without keeping its outputs; the
/// outputs must go into the device, not replace it with a regular file (which broke every
/// later `>/dev/null` on the machine). A private null device (mknod, root only) stands in for
/// /dev/null, so a regression cannot damage the real one.
#[test]
fn outputs_to_a_device_are_written_into_it_not_over_it() {
    use std::os::unix::fs::FileTypeExt;
    let scratch = common::scratch();
    let dev = scratch.path().join("null-device");
    let _ = std::fs::remove_file(&dev);
    let made = Command::new("mknod")
        .args(["-m", "666", dev.to_str().unwrap(), "c", "1", "3"])
        .output();
    if !made.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIP outputs_to_a_device: mknod needs root");
        return;
    }
    let d = dev.to_str().unwrap();
    for args in [
        &[
            "replay",
            "captures/rfc2391-fig1.pcap",
            "-o",
            d,
            "--json",
            d,
            "--golden",
            d,
        ][..],
        &["audit", "captures/rfc2391-fig1.pcap", "--json", d][..],
    ] {
        let o = lsnat(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let kind = std::fs::symlink_metadata(&dev).unwrap().file_type();
        assert!(
            kind.is_char_device(),
            "{args:?} replaced the device: {kind:?}"
        );
        assert!(
            !scratch.path().join("null-device.partial").exists(),
            "{args:?}"
        );
    }
    std::fs::remove_file(&dev).unwrap();
}

/// A file system that refuses `O_DIRECT` at open (ramfs answers EINVAL) gets the big outputs
/// through the page cache instead: the same bytes as on the test's own file system, renamed
/// from `.partial` as usual. The ramfs is mounted in a private mount namespace (unshare(1),
/// root only), which takes the mount with it when the command ends.
#[test]
fn outputs_on_a_file_system_without_direct_io_are_the_same_bytes() {
    let scratch = common::scratch();
    let base = scratch.path();
    let (ram, copied) = (base.join("ramfs"), base.join("copied"));
    std::fs::create_dir_all(&ram).unwrap();
    std::fs::create_dir_all(&copied).unwrap();
    let in_namespace = |then: &str| {
        let script = format!("mount -t ramfs none '{}' && {then}", ram.display());
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .current_dir(common::root())
            .output()
    };
    if !in_namespace("true").is_ok_and(|o| o.status.success()) {
        eprintln!("SKIP outputs_on_a_file_system_without_direct_io: needs root and unshare(1)");
        return;
    }
    let capture = "captures/lsnat-router.pcap";
    let reference = lsnat(&[
        "replay",
        capture,
        "-o",
        base.join("ref.pcap").to_str().unwrap(),
        "--json",
        base.join("ref.json").to_str().unwrap(),
    ]);
    assert!(reference.status.success());
    // The same arguments but the folder, so that the report names the same capture.
    let (r, c) = (ram.display(), copied.display());
    let o = in_namespace(&format!(
        "(dd if=/dev/zero of='{r}/probe' bs=4096 count=1 oflag=direct 2>/dev/null \
           && touch '{c}/direct-taken'); \
         rm -f '{r}/probe'; \
         '{bin}' replay {capture} -o '{r}/out.pcap' --json '{r}/out.json' --quiet \
         && ls '{r}' > '{c}/listing' && cp '{r}/out.pcap' '{r}/out.json' '{c}/'",
        bin = env!("CARGO_BIN_EXE_lsnat"),
    ))
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        !copied.join("direct-taken").exists(),
        "ramfs took O_DIRECT: this test no longer covers the fallback"
    );
    let listing = std::fs::read_to_string(copied.join("listing")).unwrap();
    assert_eq!(listing, "out.json\nout.pcap\n", "no .partial may be left");
    for (ours, theirs) in [("out.pcap", "ref.pcap"), ("out.json", "ref.json")] {
        let (a, b) = (copied.join(ours), base.join(theirs));
        let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
        assert!(a.len() > 1000, "{ours}: {} bytes", a.len());
        assert!(a == b, "{ours} on ramfs differs from {theirs}");
    }
}

#[test]
fn corrupt_truncated_and_unsupported_corpus_files() {
    let scratch = common::scratch();
    let Some(corpus) = common::corpus() else {
        eprintln!("skipping: the capture corpus is absent");
        return;
    };
    let cfg = "captures/rfc2391-fig1.toml";
    let run = |f: &str| lsnat(&["replay", corpus.join(f).to_str().unwrap(), "-c", cfg, "-q"]);
    // A record header claiming 4325376 bytes: an error naming packet 7 and its offset.
    one_error_line(
        &run("suricata__tls_DER-incomplete-header.pcap"),
        &["tls_DER-incomplete-header.pcap", "packet 7", "5035"],
    );
    // pcap version 1.4
    one_error_line(
        &run("libpcap__pcap-invalid-version-1.pcap"),
        &["pcap-invalid-version-1.pcap"],
    );
    // PPP link type
    one_error_line(
        &run("tcpdump__mpls-traceroute.pcap"),
        &["mpls-traceroute.pcap", "link type 9"],
    );
    // A file cut inside its last record: processed up to the last whole record, with a warning.
    let out = scratch.path().join("trunc.pcap");
    let o = lsnat(&[
        "replay",
        corpus
            .join("suricata__http-mime-truncated_input.pcap")
            .to_str()
            .unwrap(),
        "-c",
        cfg,
        "-q",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("warning"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(common::read_all(&out).len(), 2696);
}

#[test]
fn check_exits_1_on_a_changed_golden_and_0_when_equal() {
    let scratch = common::scratch();
    let dir = scratch.path().join("goldens");
    std::fs::create_dir_all(&dir).unwrap();
    let snap = common::root().join("golden/rfc2391-fig1.snap");
    let d = dir.to_str().unwrap();
    std::fs::copy(&snap, dir.join("rfc2391-fig1.snap")).unwrap();
    let o = lsnat(&["check", "captures/rfc2391-fig1.pcap", "--golden-dir", d]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let text = std::fs::read_to_string(&snap)
        .unwrap()
        .replacen("172.85.0.3", "172.85.0.2", 1);
    std::fs::write(dir.join("rfc2391-fig1.snap"), text).unwrap();
    let o = lsnat(&["check", "captures/rfc2391-fig1.pcap", "--golden-dir", d]);
    assert_eq!(o.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("DIFFERS") && stdout.contains("-") && stdout.contains("+"),
        "{stdout}"
    );
    let _ = Path::new(d);
}

/// A golden that is there but cannot be read is bad input (exit 2, the golden named), not a
/// missing golden; `--bless` into a folder whose name a file holds is refused, and a golden
/// that cannot be written leaves no partial file.
#[test]
fn check_tells_an_unreadable_golden_from_a_missing_one() {
    let scratch = common::scratch();
    let dir = scratch.path().join("goldens");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let cap = "captures/rfc2391-fig1.pcap";

    let o = lsnat(&["check", cap, "--golden-dir", d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("MISSING"));

    let snap = dir.join("rfc2391-fig1.snap");
    std::fs::write(&snap, b"---\nsource: x\n---\n\xff\xfe not text\n").unwrap();
    let o = lsnat(&["check", cap, "--golden-dir", d]);
    one_error_line(
        &o,
        &["rfc2391-fig1.snap", "cannot read the golden", "UTF-8"],
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("MISSING"));

    std::fs::remove_file(&snap).unwrap();
    std::fs::create_dir(&snap).unwrap();
    let o = lsnat(&["check", cap, "--golden-dir", d, "--bless"]);
    one_error_line(&o, &["rfc2391-fig1.snap", "output path is a folder"]);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["rfc2391-fig1.snap"], "only the folder in the way");

    let file = scratch.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let o = lsnat(&[
        "check",
        cap,
        "--golden-dir",
        file.to_str().unwrap(),
        "--bless",
    ]);
    one_error_line(&o, &["not-a-folder", "exists and is not a folder"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");

    // A capture whose golden would be the capture itself is not blessed over.
    let odd = scratch.path().join("odd");
    std::fs::create_dir(&odd).unwrap();
    let capture = std::fs::read(common::root().join(cap)).unwrap();
    std::fs::write(odd.join("x.snap"), &capture).unwrap();
    std::fs::copy(
        common::root().join("captures/rfc2391-fig1.toml"),
        odd.join("x.toml"),
    )
    .unwrap();
    let x = odd.join("x.snap");
    let o = lsnat(&[
        "check",
        x.to_str().unwrap(),
        "--golden-dir",
        odd.to_str().unwrap(),
        "--bless",
    ]);
    one_error_line(&o, &["x.snap", "is an input file"]);
    assert_eq!(std::fs::read(&x).unwrap(), capture);
}

#[test]
fn member_captures_hold_what_each_server_would_see() {
    let scratch = common::scratch();
    let dir = scratch.path().join("members");
    let o = lsnat(&[
        "replay",
        "captures/lsnat-router.pcap",
        "-q",
        "--members-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut total = 0;
    for m in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        let pkts = common::read_all(&dir.join(format!("member-{m}.pcap")));
        assert!(!pkts.is_empty(), "{m}: empty");
        let member: std::net::Ipv4Addr = m.parse().unwrap();
        for (meta, b) in &pkts {
            let lsnat::link::Payload::Ipv4 { offset } =
                lsnat::link::locate(meta.linktype, b).payload
            else {
                panic!("{m}: non-IPv4 packet {}", meta.index)
            };
            let ip = lsnat::wire::Ipv4::parse(&b[offset..]).unwrap();
            // The member sees client -> member and sends member -> client: never the VIP.
            assert!(
                ip.dst == member.octets() || ip.src == member.octets(),
                "{m}: packet {}",
                meta.index
            );
            assert_ne!(ip.src, [198, 18, 0, 100]);
            assert_ne!(ip.dst, [198, 18, 0, 100]);
        }
        total += pkts.len();
    }
    // Every translated packet of the capture is in exactly one member's capture.
    assert_eq!(total, 134);
}

#[test]
fn compare_replays_each_config_and_prints_them_side_by_side() {
    let scratch = common::scratch();
    let json = scratch.path().join("compare.json");
    let o = lsnat_ok(&[
        "replay",
        "captures/lsnat-client-side.pcap",
        "--compare",
        "tests/algorithms/lsnat-client-side/round-robin.toml",
        "--compare",
        "tests/algorithms/lsnat-client-side/source-hash.toml",
        "--compare",
        "tests/algorithms/lsnat-client-side/least-weighted-load.toml",
        "--interval",
        "2s",
        "--json",
        json.to_str().unwrap(),
    ]);
    let table = String::from_utf8_lossy(&o.stdout);
    for col in [
        "round-robin",
        "source-hash",
        "least-weighted-load",
        "Jain, sessions",
    ] {
        assert!(table.contains(col), "{col} missing in\n{table}");
    }
    // Round-robin spreads 13 sessions 5/4/4; source hashing puts each of the two clients on
    // one member (7 and 6).
    let row = table.lines().find(|l| l.contains("203.0.113.1")).unwrap();
    assert!(
        row.contains("5 (38.5%)") && row.contains("7 (53.8%)"),
        "{row}"
    );
    let report = common::read_json(&json);
    assert_eq!(report["schema"], "lsnat-compare/1");
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0]["label"], "round-robin");
    let sessions: Vec<u64> = runs[0]["load"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sessions"].as_u64().unwrap())
        .collect();
    assert_eq!(sessions, [5, 4, 4]);
    assert_eq!(runs[1]["load"]["fairness"]["max_min_sessions"], "inf");
    assert_eq!(
        runs[2]["load"]["algorithms"][0]["parameters"]["session_weight"],
        5
    );
    assert!(!runs[0]["load"]["intervals"].as_array().unwrap().is_empty());
}

#[test]
fn algorithm_flags_override_the_config_and_compare() {
    let o = lsnat_ok(&[
        "replay",
        "captures/lsnat-client-side.pcap",
        "--algorithm",
        "rr",
        "--algorithm",
        "least-load",
        "--algorithm",
        "maglev",
    ]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("least-load") && table.contains("maglev"),
        "{table}"
    );
    let o = lsnat(&[
        "replay",
        "captures/lsnat-client-side.pcap",
        "--algorithm",
        "fastest",
    ]);
    one_error_line(&o, &["--algorithm", "fastest", "maglev"]);
    let o = lsnat(&[
        "replay",
        "captures/lsnat-client-side.pcap",
        "--algorithm",
        "rr",
        "--algorithm",
        "maglev",
        "-o",
        "/tmp/never.pcap",
    ]);
    one_error_line(&o, &["comparison"]);
}

#[test]
fn json_session_records_explain_each_decision() {
    let scratch = common::scratch();
    let json = scratch.path().join("decisions.json");
    let o = lsnat(&[
        "replay",
        "captures/lsnat-client-side.pcap",
        "-c",
        "tests/algorithms/lsnat-client-side/cost-least-load.toml",
        "--json",
        json.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = common::read_json(&json);
    for s in report["sessions"].as_array().unwrap() {
        assert_eq!(s["algorithm"], "cost-least-load");
        let d = &s["decision"];
        assert_eq!(d["chosen"], s["member"]);
        let c = d["candidates"].as_array().unwrap();
        assert_eq!(c.len(), 3);
        // 203.0.113.3 costs "inf": listed, never chosen.
        assert_eq!(c[2]["member"], "203.0.113.3");
        assert_eq!(c[2]["figure"], "inf");
        assert_ne!(s["member"], "203.0.113.3");
    }
    assert!(
        report["load"]["fairness"]["jain_sessions"]
            .as_f64()
            .is_some()
    );
}

/// One path given for two outputs is refused before anything is written: each output is
/// written whole and renamed into place, so one would silently replace the other.
#[test]
fn one_path_for_two_outputs_is_refused() {
    let scratch = common::scratch();
    let out = scratch.path().join("same.out");
    let o = out.to_str().unwrap();
    let spelled_otherwise = scratch.path().join(".").join("same.out");
    let o2 = spelled_otherwise.to_str().unwrap();
    let cap = "captures/rfc2391-fig1.pcap";
    let r = lsnat(&["replay", cap, "-o", o, "--json", o2, "-q"]);
    one_error_line(&r, &["same.out", "--output and --json"]);
    let r = lsnat(&["replay", cap, "--json", o, "--golden", o, "-q"]);
    one_error_line(&r, &["same.out", "--json and --golden"]);
    let r = lsnat(&[
        "audit",
        cap,
        "--sweep",
        "tcp=1s..10s:2",
        "--json",
        o,
        "--svg",
        o,
    ]);
    one_error_line(&r, &["same.out", "--json and --svg"]);
    let left: Vec<_> = std::fs::read_dir(scratch.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing written: {left:?}");
    // A symbolic link to the other output is the same output: both are written through it.
    std::fs::write(&out, "kept").unwrap();
    let link = scratch.path().join("link.json");
    std::os::unix::fs::symlink(&out, &link).unwrap();
    let r = lsnat(&[
        "replay",
        cap,
        "-o",
        o,
        "--json",
        link.to_str().unwrap(),
        "-q",
    ]);
    one_error_line(&r, &["link.json", "--output and --json"]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "kept");
}

/// A capture piped in is refused in one line (it could not be read twice, as `--compare`
/// and `audit` do, nor sought in, as pcapng needs), not called empty; the same capture
/// redirected from its file replays.
#[test]
fn a_piped_capture_is_refused_clearly() {
    use std::io::Write;
    use std::process::Stdio;
    let bytes = std::fs::read(common::root().join("captures/rfc2391-fig1.pcap")).unwrap();
    let cfg = "captures/rfc2391-fig1.toml";
    let mut child = common::lsnat()
        .args(["replay", "/dev/stdin", "-c", cfg, "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&bytes); // lsnat may close the pipe first
    });
    let o = child.wait_with_output().expect("runs");
    feeder.join().unwrap();
    one_error_line(&o, &["/dev/stdin", "not a regular file"]);

    let file = std::fs::File::open(common::root().join("captures/rfc2391-fig1.pcap")).unwrap();
    let o = common::lsnat()
        .args(["replay", "/dev/stdin", "-c", cfg, "-q"])
        .stdin(file)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A member capture (`DIR/member-ADDR.EXT`) is an output like the others: it may not be the
/// input capture, nor the path given to `--output`.
#[test]
fn member_captures_never_replace_the_input_or_the_rewritten_capture() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let input = dir.join("member-203.0.113.1.pcap");
    let original = std::fs::read(common::root().join("captures/lsnat-router.pcap")).unwrap();
    std::fs::write(&input, &original).unwrap();
    let cfg = "captures/lsnat-router.toml";
    let d = dir.to_str().unwrap();
    let o = lsnat(&[
        "replay",
        input.to_str().unwrap(),
        "-c",
        cfg,
        "--members-dir",
        d,
        "-q",
    ]);
    one_error_line(&o, &["member-203.0.113.1.pcap", "is an input file"]);
    assert_eq!(std::fs::read(&input).unwrap(), original, "input untouched");

    let out = dir.join("member-203.0.113.2.pcap");
    let o = lsnat(&[
        "replay",
        "captures/lsnat-router.pcap",
        "--members-dir",
        d,
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    one_error_line(
        &o,
        &["member-203.0.113.2.pcap", "--output and --members-dir"],
    );
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["member-203.0.113.1.pcap"], "nothing written");
}

/// Inputs a replay must never write over, however they are reached: a file named like an
/// output's partial file (`OUT.partial`, written first) or a link by that name to an input, the
/// config in an `--algorithm` comparison, a capacity file the config names, the same file seen
/// through a bind mount; and outputs that would take each other's place (a member capture and
/// the golden, an output and another's partial file). Each is refused in one line, exit 2, and
/// every input is unchanged afterwards.
#[test]
fn inputs_are_never_written_over_by_any_name() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let fig1 = std::fs::read("captures/rfc2391-fig1.pcap").unwrap();
    let fig1_toml = std::fs::read("captures/rfc2391-fig1.toml").unwrap();
    std::fs::write(p("c.pcap"), &fig1).unwrap();
    std::fs::write(p("c.toml"), &fig1_toml).unwrap();
    std::fs::write(p("in.pcap.partial"), &fig1).unwrap();
    std::fs::write(p("cfg.partial"), &fig1_toml).unwrap();
    std::os::unix::fs::symlink(p("c.pcap"), p("o.pcap.partial")).unwrap();
    let (c, t) = (p("c.pcap"), p("c.toml"));
    let r = lsnat(&[
        "replay",
        &p("in.pcap.partial"),
        "-c",
        &t,
        "-o",
        &p("in.pcap"),
        "-q",
    ]);
    one_error_line(&r, &["in.pcap.partial", "input file"]);
    let r = lsnat(&[
        "replay",
        &c,
        "-c",
        &p("cfg.partial"),
        "--json",
        &p("cfg"),
        "-q",
    ]);
    one_error_line(&r, &["cfg.partial", "input file"]);
    let r = lsnat(&["replay", &c, "-c", &t, "-o", &p("o.pcap"), "-q"]);
    one_error_line(&r, &["o.pcap.partial", "input file"]);
    let r = lsnat(&[
        "replay",
        &c,
        "-c",
        &t,
        "--algorithm",
        "rr",
        "--algorithm",
        "lc",
        "--json",
        &t,
        "-q",
    ]);
    one_error_line(&r, &["c.toml", "input file"]);
    // The capacity file a reported-capacity config reads.
    let alg = Path::new("tests/algorithms/lsnat-router");
    std::fs::copy(alg.join("reported-capacity.toml"), p("rc.toml")).unwrap();
    std::fs::copy(alg.join("capacity.jsonl"), p("capacity.jsonl")).unwrap();
    let capacity = std::fs::read(p("capacity.jsonl")).unwrap();
    let router = "captures/lsnat-router.pcap";
    let r = lsnat(&[
        "replay",
        router,
        "-c",
        &p("rc.toml"),
        "--json",
        &p("capacity.jsonl"),
        "-q",
    ]);
    one_error_line(&r, &["capacity.jsonl", "input file"]);
    let r = lsnat(&[
        "audit",
        router,
        "-c",
        &p("rc.toml"),
        "--json",
        &p("capacity.jsonl"),
    ]);
    one_error_line(&r, &["capacity.jsonl", "input file"]);
    // Two outputs in one place.
    let members = p("m");
    let golden = format!("{members}/member-172.85.0.2.pcap");
    let r = lsnat(&[
        "replay",
        &c,
        "-c",
        &t,
        "--members-dir",
        &members,
        "--golden",
        &golden,
        "-q",
    ]);
    one_error_line(
        &r,
        &["member-172.85.0.2.pcap", "--golden and --members-dir"],
    );
    let r = lsnat(&[
        "replay",
        &c,
        "-c",
        &t,
        "-o",
        &p("x.partial"),
        "--json",
        &p("x"),
        "-q",
    ]);
    one_error_line(&r, &["partial"]);
    // Through a folder not made yet, or a link to an output not written yet.
    let r = lsnat(&[
        "replay",
        &c,
        "-c",
        &t,
        "--golden",
        &p("new/../c.toml"),
        "-q",
    ]);
    one_error_line(&r, &["new/../c.toml", "input file"]);
    assert!(
        !dir.join("new").exists(),
        "no folder made for a refused run"
    );
    std::os::unix::fs::symlink(p("later.pcap"), p("g.txt")).unwrap();
    let r = lsnat(&[
        "replay",
        &c,
        "-c",
        &t,
        "-o",
        &p("later.pcap"),
        "--golden",
        &p("g.txt"),
        "-q",
    ]);
    one_error_line(&r, &["g.txt", "--output and --golden"]);
    // A device as the config would be read without end.
    let r = lsnat(&["replay", &c, "-c", "/dev/zero", "-q"]);
    one_error_line(&r, &["/dev/zero", "not a regular file"]);

    for (name, bytes) in [
        ("c.pcap", &fig1),
        ("in.pcap.partial", &fig1),
        ("c.toml", &fig1_toml),
        ("cfg.partial", &fig1_toml),
        ("capacity.jsonl", &capacity),
    ] {
        assert_eq!(&std::fs::read(p(name)).unwrap(), bytes, "{name} unchanged");
    }
    for gone in ["in.pcap", "cfg", "o.pcap", "x", "x.partial", "later.pcap"] {
        assert!(!dir.join(gone).exists(), "{gone} not written");
    }
    assert!(
        std::fs::symlink_metadata(p("o.pcap.partial"))
            .unwrap()
            .is_symlink()
    );

    // The same folder through a bind mount (root only).
    let (a, b) = (dir.join("bm1"), dir.join("bm2"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("c.pcap"), &fig1).unwrap();
    std::fs::write(a.join("c.toml"), &fig1_toml).unwrap();
    let mounted = Command::new("mount")
        .args(["--bind", a.to_str().unwrap(), b.to_str().unwrap()])
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!("skipping the bind mount case: mount --bind needs root");
        return;
    }
    let r = lsnat(&[
        "replay",
        a.join("c.pcap").to_str().unwrap(),
        "-o",
        b.join("c.pcap").to_str().unwrap(),
        "-q",
    ]);
    let _ = Command::new("umount").arg(&b).output();
    one_error_line(&r, &["bm2/c.pcap", "input file"]);
    assert_eq!(std::fs::read(a.join("c.pcap")).unwrap(), fig1);
}

/// A run that fails after some outputs are whole leaves none of them (the README's promise),
/// and the files it would have replaced as they were: here the golden cannot be written (a
/// folder has the name of its partial file), after the capture, the JSON report and the member
/// captures were. Outputs take their names only when all are whole. An interrupted run
/// (SIGINT, here once its JSON report is whole and it goes on to the golden, a FIFO) removes
/// its partial files and exits 130.
#[test]
fn a_failed_or_interrupted_run_leaves_no_output() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let cap = "captures/rfc2391-fig1.pcap";
    // The golden's partial name is a folder: writing it fails at the very end.
    std::fs::create_dir_all(dir.join("g.snap.partial/x")).unwrap();
    std::fs::create_dir_all(dir.join("m")).unwrap();
    std::fs::write(dir.join("o.pcap"), "precious").unwrap();
    std::fs::write(dir.join("m/member-172.85.0.1.pcap"), "precious too").unwrap();
    let r = lsnat(&[
        "replay",
        cap,
        "-o",
        &p("o.pcap"),
        "--json",
        &p("o.json"),
        "--members-dir",
        &p("m"),
        "--golden",
        &p("g.snap"),
        "-q",
    ]);
    one_error_line(&r, &["g.snap"]);
    let mut left: Vec<String> = walk(dir);
    left.sort();
    assert_eq!(
        left,
        [
            "g.snap.partial",
            "g.snap.partial/x",
            "m",
            "m/member-172.85.0.1.pcap",
            "o.pcap"
        ],
        "only what was there"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("o.pcap")).unwrap(),
        "precious"
    );
    let m1 = std::fs::read_to_string(dir.join("m/member-172.85.0.1.pcap")).unwrap();
    assert_eq!(m1, "precious too");

    let fifo = dir.join("g.fifo");
    make_fifo(&fifo);
    let child = common::lsnat()
        .args([
            "replay",
            cap,
            "-o",
            &p("i.pcap"),
            "--json",
            &p("i.json"),
            "--golden",
        ])
        .arg(&fifo)
        .arg("-q")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_at_golden(&dir.join("i.json.partial"));
    assert!(dir.join("i.pcap.partial").exists() && !dir.join("i.pcap").exists());
    let out = interrupt(child, libc::SIGINT);
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    for gone in ["i.pcap", "i.json", "i.pcap.partial", "i.json.partial"] {
        assert!(!dir.join(gone).exists(), "{gone} removed");
    }
}

/// `captures/rfc2391-fig1.toml` with `from` replaced by `to`, written as `dir/name`.
fn bundled_config_with(dir: &Path, name: &str, from: &str, to: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(common::root().join("captures/rfc2391-fig1.toml")).unwrap();
    assert!(text.contains(from), "{from}");
    let path = dir.join(name);
    std::fs::write(&path, text.replace(from, to)).unwrap();
    path
}

/// `lsnat ARGS` run in the folder `dir`, its output.
fn lsnat_in(dir: &Path, args: &[&str]) -> Output {
    common::lsnat()
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// Makes a named pipe (FIFO) at `path`.
fn make_fifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the file.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Waits until a replay whose golden is a FIFO has written its whole JSON report, still under
/// its partial name (`report`): the replay then blocks opening the FIFO, its outputs still
/// partial files, which take their names only at the end. Fails after 30 s.
fn wait_at_golden(report: &Path) {
    let mut waited = 0;
    while !std::fs::read(report).is_ok_and(|b| b.ends_with(b"}\n")) {
        assert!(waited < 600, "the replay never got to its golden");
        std::thread::sleep(std::time::Duration::from_millis(50));
        waited += 1;
    }
}

/// Sends `signal` to the replay `child` and waits for it: it must exit with 130.
fn interrupt(child: std::process::Child, signal: i32) -> std::process::Output {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every path under `dir`, relative to it, folders included.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            out.push(
                path.strip_prefix(dir)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string(),
            );
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    out
}

/// Per-interval load rows grow with the capture's span divided by the interval: an interval
/// far too short for the capture (1 µs over the 5 s of lsnat-edges: 5 million rows) is refused in one line after
/// the replay, with no output left, instead of eating the machine's memory. 1 ms is fine.
#[test]
fn an_interval_too_short_for_the_capture_is_refused() {
    let scratch = common::scratch();
    let out = scratch.path().join("e.pcap");
    let json = scratch.path().join("e.json");
    let (o, j) = (out.to_str().unwrap(), json.to_str().unwrap());
    let cap = "captures/lsnat-edges.pcap";
    let r = lsnat(&[
        "replay",
        cap,
        "--interval",
        "1us",
        "-o",
        o,
        "--json",
        j,
        "-q",
    ]);
    one_error_line(&r, &["lsnat-edges.pcap", "--interval", "100000 intervals"]);
    assert!(walk(scratch.path()).is_empty(), "no output left");
    let r = lsnat(&[
        "replay",
        cap,
        "--interval",
        "1us",
        "--algorithm",
        "rr",
        "--algorithm",
        "lc",
        "-q",
    ]);
    one_error_line(&r, &["--interval", "100000 intervals"]);
    let r = lsnat(&[
        "replay",
        cap,
        "--interval",
        "1ms",
        "-o",
        o,
        "--json",
        j,
        "-q",
    ]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = report["load"]["intervals"].as_array().unwrap().len();
    assert!((1000..=100_000).contains(&rows), "{rows} rows of 1 ms");
}

/// Usage errors are one line too (exit 2), naming what was wrong; help still prints in full.
#[test]
fn usage_errors_are_one_line() {
    let cap = "captures/rfc2391-fig1.pcap";
    let r = lsnat(&["replay", cap, "--view", "bogus"]);
    one_error_line(&r, &["'bogus'", "--view", "router, client-side"]);
    let r = lsnat(&[
        "audit",
        cap,
        "--sweep",
        "udp=1s..2s",
        "--sweep",
        "tcp=1s..2s",
    ]);
    one_error_line(&r, &["--sweep", "multiple times"]);
    let r = lsnat(&["replay"]);
    one_error_line(&r, &["<CAPTURE>"]);
    let r = lsnat(&["replay", "--help"]);
    assert_eq!(r.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&r.stdout).lines().count() > 10);
}

/// A classic pcap's records: (header offset, record length with its 16-byte header).
fn pcap_records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let incl = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push((at, 16 + incl));
        at += 16 + incl;
    }
    out
}

/// The IP id and fragment offset of an Ethernet frame carrying IPv4.
fn frag_of(frame: &[u8]) -> Option<(u16, u16)> {
    (frame.len() >= 34 && frame[12..14] == [8, 0]).then(|| {
        let id = u16::from_be_bytes([frame[18], frame[19]]);
        let off = u16::from_be_bytes([frame[20], frame[21]]) & 0x1fff;
        (id, off * 8)
    })
}

/// Member captures (`--members-dir`) change nothing in the rewritten capture, and every
/// capture lists what the router sent in the same order. The member's reply of IP id 40935
/// in `lsnat-edges.pcap` is made to arrive last fragment first (the records' contents moved,
/// their timestamps kept in order), so the router holds two fragments and releases them after
/// their first; the client's datagram of IP id 19539 arrived that way when it was recorded.
#[test]
fn member_captures_leave_the_rewritten_capture_alone_and_keep_its_order() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let mut bytes = std::fs::read(common::root().join("captures/lsnat-edges.pcap")).unwrap();
    assert_eq!(
        &bytes[..4],
        &[0x4d, 0x3c, 0xb2, 0xa1],
        "little-endian ns pcap"
    );
    let recs = pcap_records(&bytes);
    let frags: Vec<(usize, usize)> = recs
        .iter()
        .copied()
        .filter(|&(at, _)| frag_of(&bytes[at + 16..]).is_some_and(|(id, _)| id == 40935))
        .collect();
    assert_eq!(frags.len(), 3, "the member's three fragments");
    let bodies: Vec<Vec<u8>> = frags
        .iter()
        .map(|&(at, len)| bytes[at + 8..at + len].to_vec())
        .collect();
    // The three records are consecutive: rewrite them as 1480, 2960, 0 with the original times.
    assert_eq!(frags[0].0 + frags[0].1, frags[1].0);
    assert_eq!(frags[1].0 + frags[1].1, frags[2].0);
    let times: Vec<Vec<u8>> = frags
        .iter()
        .map(|&(at, _)| bytes[at..at + 8].to_vec())
        .collect();
    let mut region = Vec::new();
    for (t, b) in times.iter().zip([&bodies[1], &bodies[2], &bodies[0]]) {
        region.extend_from_slice(t);
        region.extend_from_slice(b);
    }
    let start = frags[0].0;
    bytes.splice(start..start + region.len(), region);
    let cap = dir.join("edges-reordered.pcap");
    std::fs::write(&cap, &bytes).unwrap();
    std::fs::copy(
        common::root().join("captures/lsnat-edges.toml"),
        dir.join("edges-reordered.toml"),
    )
    .unwrap();

    let run = |out: &str, members: Option<&str>| {
        let mut c = common::lsnat();
        c.args(["replay", cap.to_str().unwrap(), "-q", "-o"])
            .arg(dir.join(out));
        if let Some(m) = members {
            c.arg("--members-dir").arg(dir.join(m));
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(dir.join(out)).unwrap()
    };
    let plain = run("plain.pcap", None);
    let with = run("with.pcap", Some("members"));
    assert!(
        plain == with,
        "--members-dir changed the rewritten capture: {} records without, {} with",
        pcap_records(&plain).len(),
        pcap_records(&with).len()
    );

    let order = |b: &[u8], id: u16| -> Vec<u16> {
        pcap_records(b)
            .iter()
            .filter_map(|&(at, _)| frag_of(&b[at + 16..]))
            .filter(|&(i, _)| i == id)
            .map(|(_, off)| off)
            .collect()
    };
    // The router forwards the held fragments right after their first.
    assert_eq!(order(&plain, 40935), [0, 1480, 2960]);
    assert_eq!(order(&plain, 19539), [0, 2960, 1480]);
    // Member 2 receives the client's datagram as the router forwards it.
    let m2 = std::fs::read(dir.join("members/member-203.0.113.2.pcap")).unwrap();
    assert_eq!(order(&m2, 19539), order(&plain, 19539));
    // Member 1's capture holds what it sent, once each.
    let m1 = std::fs::read(dir.join("members/member-203.0.113.1.pcap")).unwrap();
    let mut sent = order(&m1, 40935);
    sent.sort_unstable();
    assert_eq!(sent, [0, 1480, 2960]);
}

/// A folder laid out like a checkout (`captures/` with the bundled capture and config named
/// `names`, `golden/` with its committed golden), for `lsnat check` run from inside it.
fn check_folder(names: &[&str]) -> tempfile::TempDir {
    let scratch = common::scratch();
    let root = common::root();
    std::fs::create_dir_all(scratch.path().join("captures")).unwrap();
    std::fs::create_dir_all(scratch.path().join("golden")).unwrap();
    for n in names {
        for ext in ["pcap", "toml"] {
            std::fs::copy(
                root.join(format!("captures/{n}.{ext}")),
                scratch.path().join(format!("captures/{n}.{ext}")),
            )
            .unwrap();
        }
        std::fs::copy(
            root.join(format!("golden/{n}.snap")),
            scratch.path().join(format!("golden/{n}.snap")),
        )
        .unwrap();
    }
    scratch
}

/// `x.pcap` and `x.pcapng` (default discovery takes both) would share `golden/x.snap`: `check`
/// could never pass and `--bless` would write one over the other. Refused before anything is
/// written, in one line naming both captures and the golden; the golden stays. The same
/// capture given twice is checked once.
#[test]
fn two_captures_sharing_a_golden_are_refused_before_anything_is_written() {
    let dir = check_folder(&["rfc2391-fig1"]);
    let d = dir.path();
    // Another capture under the same stem (pcap or pcapng is told by the magic number).
    std::fs::copy(
        common::root().join("captures/rfc2391-fig1.raw.pcap"),
        d.join("captures/rfc2391-fig1.pcapng"),
    )
    .unwrap();
    let golden = std::fs::read(d.join("golden/rfc2391-fig1.snap")).unwrap();
    let before = walk(d);
    for args in [&["check"][..], &["check", "--bless"]] {
        let o = common::lsnat().current_dir(d).args(args).output().unwrap();
        one_error_line(
            &o,
            &[
                "golden/rfc2391-fig1.snap",
                "captures/rfc2391-fig1.pcap ",
                "captures/rfc2391-fig1.pcapng",
            ],
        );
        assert!(
            o.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert_eq!(
            std::fs::read(d.join("golden/rfc2391-fig1.snap")).unwrap(),
            golden
        );
        let mut now = walk(d);
        now.sort();
        let mut was = before.clone();
        was.sort();
        assert_eq!(now, was, "nothing written");
    }
    std::fs::remove_file(d.join("captures/rfc2391-fig1.pcapng")).unwrap();
    let abs = d.join("captures/rfc2391-fig1.pcap");
    let o = common::lsnat()
        .current_dir(d)
        .args([
            "check",
            "captures/rfc2391-fig1.pcap",
            "./captures/rfc2391-fig1.pcap",
        ])
        .arg(&abs)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("1 checked, 0 differ"), "{stdout}");
}

/// `replay --golden FILE` writes byte for byte what `check --bless` writes (insta header, title
/// of file names, pool events, summary), so `check` passes on it; here for a capture with pool
/// events, its paths typed in a roundabout way.
#[test]
fn replay_golden_is_what_check_blesses() {
    let dir = check_folder(&["lsnat-pool", "rfc2391-fig1"]);
    let d = dir.path();
    for name in ["lsnat-pool", "rfc2391-fig1"] {
        let o = common::lsnat()
            .current_dir(d)
            .args(["replay", &format!("./captures/../captures/{name}.pcap")])
            .args(["-c", &format!("captures//{name}.toml"), "-q", "--golden"])
            .arg(d.join(format!("replayed/{name}.snap")))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = lsnat_in(d, &["check", "--bless", "--golden-dir", "blessed"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in ["lsnat-pool", "rfc2391-fig1"] {
        let replayed = std::fs::read(d.join(format!("replayed/{name}.snap"))).unwrap();
        let blessed = std::fs::read(d.join(format!("blessed/{name}.snap"))).unwrap();
        assert!(replayed == blessed, "{name}: replay --golden differs");
        let committed = std::fs::read(d.join(format!("golden/{name}.snap"))).unwrap();
        assert!(
            replayed == committed,
            "{name}: differs from the committed golden"
        );
    }
    let o = lsnat_in(d, &["check", "--golden-dir", "replayed"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// `lsnat check | head -1`: a reader that goes away is no error. The check goes on, the exit
/// code still says whether anything differed, and `--bless` commits its goldens (no panic, no
/// `.partial` left).
#[test]
fn check_carries_on_when_its_reader_goes_away() {
    let dir = check_folder(&["rfc2391-fig1", "modes-gre"]);
    let d = dir.path();
    let snap = d.join("golden/rfc2391-fig1.snap");
    let changed = std::fs::read_to_string(&snap)
        .unwrap()
        .replacen("172.85.0.3", "172.85.0.2", 1);
    std::fs::write(&snap, &changed).unwrap();
    let closed = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    // `lsnat check ARGS` with stdout closed: its exit code, and nothing on stderr.
    let check_closed = |args: &[&str], code: i32| {
        let o = common::lsnat()
            .current_dir(d)
            .arg("check")
            .args(args)
            .stdout(closed())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "check {args:?}: {err}");
        assert!(o.stderr.is_empty(), "check {args:?}: {err}");
    };
    check_closed(&[], 1);
    check_closed(&["--bless"], 0);
    let mut left = walk(&d.join("golden"));
    left.sort();
    assert_eq!(left, ["modes-gre.snap", "rfc2391-fig1.snap"]);
    let committed = std::fs::read(common::root().join("golden/rfc2391-fig1.snap")).unwrap();
    assert!(std::fs::read(&snap).unwrap() == committed, "blessed again");
    check_closed(&[], 0);
}

/// `packets.written` counts the packets the rewritten capture holds, written to a file or not:
/// the same with and without `-o`, and the number of records `-o` writes (lsnat-edges has
/// released fragments and an ICMP time exceeded the router sent).
#[test]
fn packets_written_is_the_same_with_and_without_an_output() {
    let scratch = common::scratch();
    let dir = scratch.path();
    for name in ["lsnat-pool", "lsnat-edges"] {
        let cap = common::root().join(format!("captures/{name}.pcap"));
        let without = common::replay_json(dir, &cap, &[]);
        let out = dir.join("out.pcap");
        let with = common::replay_json(dir, &cap, &["-o".as_ref(), out.as_os_str()]);
        let records = pcap_records(&std::fs::read(&out).unwrap()).len() as u64;
        assert_eq!(with["packets"]["written"], records, "{name}");
        assert_eq!(without["packets"]["written"], records, "{name}");
        assert_eq!(without["packets"], with["packets"], "{name}");
    }
}

/// rfc2391-fig1.pcap with its third packet stamped a second before the capture began and its
/// last record cut short: a reader warning and a timestamps-backwards warning.
fn capture_with_warnings(dir: &Path) -> std::path::PathBuf {
    let mut bytes = std::fs::read(common::root().join("captures/rfc2391-fig1.pcap")).unwrap();
    let records = pcap_records(&bytes);
    let (first, third) = (records[0].0, records[2].0);
    let early = u32::from_le_bytes(bytes[first..first + 4].try_into().unwrap()) - 1;
    bytes[third..third + 4].copy_from_slice(&early.to_le_bytes());
    bytes.truncate(bytes.len() - 3);
    let cap = dir.join("warned.pcap");
    std::fs::write(&cap, bytes).unwrap();
    std::fs::copy(
        common::root().join("captures/rfc2391-fig1.toml"),
        dir.join("warned.toml"),
    )
    .unwrap();
    cap
}

/// Without `-q` every warning is in the summary on stdout, at its end (before: above the load
/// report); with `-q` every one goes to stderr
/// as `lsnat: warning: ...`, the timestamps-backwards one included (`replay`, and a comparison).
#[test]
fn warnings_go_to_the_summary_or_with_q_to_stderr() {
    let scratch = common::scratch();
    let cap = capture_with_warnings(scratch.path());
    let c = cap.to_str().unwrap();
    let both = ["ends inside record", "1 packets had a timestamp earlier"];
    for extra in [&[][..], &["--algorithm", "rr", "--algorithm", "lc"][..]] {
        let o = lsnat(&[&["replay", c][..], extra].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let stdout = String::from_utf8_lossy(&o.stdout);
        for w in both {
            let line = stdout.lines().find(|l| l.contains(w));
            assert!(
                line.is_some_and(|l| l.starts_with("warning: ")),
                "{w}: {stdout}"
            );
        }
        // The warnings end the summary (README), after the load report too.
        let last: Vec<&str> = stdout.lines().rev().take(2).collect();
        assert!(
            last.iter().all(|l| l.starts_with("warning: ")),
            "the warnings end the summary: {stdout}"
        );
        assert!(
            o.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = lsnat(&[&["replay", c, "-q"][..], extra].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            o.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(stderr.lines().count(), 2, "{stderr}");
        for w in both {
            let line = stderr.lines().find(|l| l.contains(w));
            assert!(
                line.is_some_and(|l| l.starts_with("lsnat: warning: ")),
                "{w}: {stderr}"
            );
        }
    }
    // The audit lists both under its header, or with `-q` on stderr (before: the
    // timestamps-backwards one was missing from the audit).
    let o = lsnat(&["audit", c, "-p", "config"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let warned: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warned.len(), 2, "{stdout}");
    for w in both {
        assert!(warned.iter().any(|l| l.contains(w)), "{w}: {stdout}");
    }
    let o = lsnat(&["audit", c, "-p", "config", "-q"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    for w in both {
        let line = stderr.lines().find(|l| l.contains(w));
        assert!(
            line.is_some_and(|l| l.starts_with("lsnat: warning: ")),
            "{w}: {stderr}"
        );
    }
}

/// When stdout is itself an output (`-o /dev/stdout`, `--json /dev/stdout`, or the file stdout
/// was redirected to, named as an output), the summary goes to stderr: the output stream holds
/// the output alone.
#[test]
fn the_summary_stays_out_of_an_output_that_is_stdout() {
    let scratch = common::scratch();
    let cap = "captures/rfc2391-fig1.pcap";
    let o = lsnat(&["replay", cap, "-o", "/dev/stdout"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pcap = std::fs::read(common::root().join(cap)).unwrap();
    assert_eq!(o.stdout[..24], pcap[..24], "a pcap on stdout");
    assert_eq!(pcap_records(&o.stdout).len(), pcap_records(&pcap).len());
    let end = pcap_records(&o.stdout).last().map(|(at, len)| at + len);
    assert_eq!(end, Some(o.stdout.len()), "nothing after the last record");
    assert!(String::from_utf8_lossy(&o.stderr).contains("172.85.0.3"));

    let o = lsnat_ok(&["replay", cap, "--json", "/dev/stdout", "--interval", "1s"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("only JSON");
    assert_eq!(report["schema"], "lsnat-replay/1");
    assert!(String::from_utf8_lossy(&o.stderr).contains("172.85.0.3"));

    let json = scratch.path().join("r.json");
    let o = common::lsnat()
        .args(["replay", cap, "--json"])
        .arg(&json)
        .stdout(std::fs::File::create(&json).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("172.85.0.3"));
    common::read_json(&json);

    // A comparison's --json and an audit's --json alike.
    let o = lsnat_ok(&[
        "replay",
        cap,
        "--algorithm",
        "rr",
        "--algorithm",
        "lc",
        "--json",
        "/dev/stdout",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("only JSON");
    assert_eq!(report["schema"], "lsnat-compare/1");
    let o = lsnat_ok(&["audit", cap, "-p", "ipvs", "--json", "/dev/stdout"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("only JSON");
    assert_eq!(report["schema"], "lsnat-audit/1");

    // The null device is no stream: the summary stays on stdout.
    let o = common::lsnat()
        .args(["replay", cap, "-o", "/dev/null"])
        .stdout(std::fs::File::create("/dev/null").unwrap())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A run that fails (a corrupt record) or is interrupted (SIGTERM) removes the folders it
/// created for its outputs (`--members-dir`, the parents of `-o`, `--json`, `--golden`),
/// nested ones too, but never a folder that was there before, even an empty one.
#[test]
fn a_failed_or_interrupted_run_removes_the_folders_it_made() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let mut bytes = std::fs::read(common::root().join("captures/rfc2391-fig1.pcap")).unwrap();
    let (sixth, _) = pcap_records(&bytes)[5];
    bytes[sixth + 8..sixth + 12].copy_from_slice(&0x7fff_ff00u32.to_le_bytes());
    let corrupt = dir.join("corrupt.pcap");
    std::fs::write(&corrupt, bytes).unwrap();
    let config = common::root().join("captures/rfc2391-fig1.toml");
    std::fs::create_dir(dir.join("was-there")).unwrap();
    let out = |p: &str| dir.join(p).to_str().unwrap().to_string();
    let r = lsnat(&[
        "replay",
        corrupt.to_str().unwrap(),
        "-c",
        config.to_str().unwrap(),
        "--members-dir",
        &out("new/members"),
        "-o",
        &out("o1/o2/o.pcap"),
        "--json",
        &out("was-there/j/x.json"),
        "--golden",
        &out("g/../g2/x.snap"),
    ]);
    one_error_line(&r, &["corrupt.pcap", "packet 6"]);
    let mut left = walk(dir);
    left.sort();
    assert_eq!(left, ["corrupt.pcap", "was-there"], "folders made removed");

    // Interrupted: the golden, a FIFO, blocks the run at its end, its outputs still partial.
    let fifo = dir.join("was-there/g.fifo");
    make_fifo(&fifo);
    let child = common::lsnat()
        .args(["replay", "captures/rfc2391-fig1.pcap", "--members-dir"])
        .arg(dir.join("new/members"))
        .arg("--json")
        .arg(dir.join("j1/j2/x.json"))
        .arg("--golden")
        .arg(&fifo)
        .arg("-q")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_at_golden(&dir.join("j1/j2/x.json.partial"));
    assert!(dir.join("new/members").read_dir().unwrap().next().is_some());
    interrupt(child, libc::SIGTERM);
    let mut left = walk(dir);
    left.sort();
    assert_eq!(
        left,
        ["corrupt.pcap", "was-there", "was-there/g.fifo"],
        "folders made removed"
    );
}

/// `check`'s diff numbers its lines as the snapshot file does (its insta header counted), and
/// says nothing of a missing newline at the end when both end with one.
#[test]
fn check_diff_line_numbers_are_the_snapshot_files() {
    let dir = check_folder(&["rfc2391-fig1"]);
    let snap = dir.path().join("golden/rfc2391-fig1.snap");
    let text = std::fs::read_to_string(&snap).unwrap();
    // A line near the top, and the last line.
    let last = text.trim_end().rsplit_once('\n').unwrap().0.len() + 1;
    for changed in [
        text.replacen("172.85.0.3", "172.85.0.2", 1),
        format!("{}changed\n", &text[..last]),
    ] {
        std::fs::write(&snap, &changed).unwrap();
        let file: Vec<&str> = changed.lines().collect();
        let o = common::lsnat()
            .current_dir(dir.path())
            .arg("check")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(!out.contains("No newline"), "{out}");
        let mut line = None;
        let mut removed = 0;
        for l in out.lines() {
            if let Some(h) = l.strip_prefix("@@ -") {
                let start: usize = h.split([',', ' ']).next().unwrap().parse().unwrap();
                line = Some(start);
                continue;
            }
            let Some(n) = line.as_mut() else {
                continue;
            };
            if let Some(t) = l.strip_prefix(' ').or(l.strip_prefix('-')) {
                assert_eq!(file[*n - 1], t, "line {n} of the snapshot file: {out}");
                removed += usize::from(l.starts_with('-'));
                *n += 1;
            }
        }
        assert!(removed > 0, "{out}");
    }
}

/// The help and the messages say what the command does: `audit`'s default policies include the
/// config's `[[policy]]` tables; an unknown duration unit lists every unit accepted.
#[test]
fn help_and_unit_errors_tell_the_whole_story() {
    let r = lsnat(&["audit", "--help"]);
    assert_eq!(r.status.code(), Some(0));
    let help = String::from_utf8_lossy(&r.stdout);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("Default: config, every preset and every `[[policy]]` of the config file"),
        "{help}"
    );
    let r = lsnat(&["replay", "captures/rfc2391-fig1.pcap", "--interval", "5x"]);
    one_error_line(
        &r,
        &["--interval", "`x`", "ns, us or µs, ms, s, m or min, h, d"],
    );
    for unit in ["900000000ns", "900000us", "900000µs", "1min"] {
        let r = lsnat(&[
            "replay",
            "captures/rfc2391-fig1.pcap",
            "-q",
            "--interval",
            unit,
        ]);
        assert_eq!(r.status.code(), Some(0), "{unit}");
    }
}

/// A timeline `add` names its virtual server (`to web`), in the terminal's pool events as in the
/// JSON report, not by its index.
#[test]
fn pool_events_name_the_virtual_server() {
    let scratch = common::scratch();
    let json = scratch.path().join("r.json");
    let o = lsnat_ok(&[
        "replay",
        "captures/lsnat-pool.pcap",
        "-c",
        "tests/pool/lsnat-pool-timeline.toml",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let added: Vec<&str> = stdout.lines().filter(|l| l.contains(" added ")).collect();
    assert_eq!(added.len(), 2, "{stdout}");
    assert!(
        added[0].contains("to web") && added[1].contains("to echo"),
        "{added:?}"
    );
    let report = common::read_json(&json);
    let evidence: Vec<&str> = report["pool_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["transition"] == "added")
        .map(|e| e["evidence"].as_str().unwrap())
        .collect();
    assert_eq!(evidence, ["to web", "to echo"]);
}

/// `--compare x/lb.toml --compare y/lb.toml` labels its columns `x/lb` and `y/lb`, not `lb`
/// twice; a `-c` given with `--compare` is refused (exit 2), not silently ignored.
#[test]
fn compare_labels_tell_clashing_configs_apart_and_c_is_refused() {
    let scratch = common::scratch();
    let d = scratch.path();
    let algs = common::root().join("tests/algorithms/lsnat-client-side");
    for (dir, alg) in [("x", "round-robin"), ("y", "source-hash"), ("z", "maglev")] {
        std::fs::create_dir_all(d.join(dir)).unwrap();
        std::fs::copy(
            algs.join(format!("{alg}.toml")),
            d.join(dir).join("lb.toml"),
        )
        .unwrap();
    }
    std::fs::copy(algs.join("least-load.toml"), d.join("other.toml")).unwrap();
    let json = d.join("c.json");
    let cap = common::root().join("captures/lsnat-client-side.pcap");
    let o = common::lsnat()
        .current_dir(d)
        .arg("replay")
        .arg(&cap)
        .args(["--compare", "x/lb.toml", "--compare", "y/lb.toml"])
        .args(["--compare", "other.toml", "--compare"])
        .arg(d.join("z/lb.toml"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = common::read_json(&json);
    let labels: Vec<&str> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["x/lb", "y/lb", "other", "z/lb"]);
    let header = String::from_utf8_lossy(&o.stdout);
    let header = header.lines().nth(1).unwrap();
    assert!(
        header.contains("x/lb") && header.contains("y/lb"),
        "{header}"
    );

    let o = common::lsnat()
        .current_dir(d)
        .arg("replay")
        .arg(&cap)
        .args([
            "-c",
            "other.toml",
            "--compare",
            "x/lb.toml",
            "--compare",
            "y/lb.toml",
        ])
        .output()
        .unwrap();
    one_error_line(&o, &["--compare", "-c"]);
}

/// The README's configuration examples load: each ```toml block of its `## Configuration`
/// section that holds a `[[virtual_server]]` with a VIP (the main example, with every
/// router-wide field) replays the figure 1 capture. Before, the main example's static mapping
/// named a member outside its pool and was refused.
#[test]
fn the_readme_configuration_example_loads() {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Configuration section");
    let blocks: Vec<&str> = section
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .filter(|b| b.contains("[[virtual_server]]") && b.contains("vip ="))
        .collect();
    assert!(!blocks.is_empty(), "no example with a virtual server");
    let scratch = common::scratch();
    for (i, b) in blocks.iter().enumerate() {
        let config = scratch.path().join(format!("readme-{i}.toml"));
        std::fs::write(&config, b).unwrap();
        let o = common::lsnat()
            .current_dir(common::root())
            .args(["replay", "captures/rfc2391-fig1.pcap", "-q", "-c"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "example {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// A named pipe as the capture is refused in one line, exit 2, whether or not anything writes
/// to it: before, opening it waited for a writer for ever (`replay`, `audit`, and the member
/// captures' names). The child is killed if it has not ended after a minute, so a hang fails
/// the test rather than the suite; how fast it ends is not asserted.
#[cfg(unix)]
#[test]
fn a_named_pipe_as_the_capture_is_refused_without_waiting_for_a_writer() {
    let scratch = common::scratch();
    let fifo = scratch.path().join("capture.pcap");
    make_fifo(&fifo);
    let config = common::root().join("captures/rfc2391-fig1.toml");
    let members = scratch.path().join("members");
    let runs: [Vec<&std::ffi::OsStr>; 3] = [
        vec![
            "replay".as_ref(),
            fifo.as_ref(),
            "-c".as_ref(),
            config.as_ref(),
        ],
        vec![
            "replay".as_ref(),
            fifo.as_ref(),
            "-c".as_ref(),
            config.as_ref(),
            "--members-dir".as_ref(),
            members.as_ref(),
        ],
        vec![
            "audit".as_ref(),
            fifo.as_ref(),
            "-c".as_ref(),
            config.as_ref(),
        ],
    ];
    for args in runs {
        let mut child = common::lsnat()
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut status = None;
        for _ in 0..600 {
            if let Some(s) = child.try_wait().unwrap() {
                status = Some(s);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?}: still waiting on the pipe");
        }
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("not a regular file"), "{err}");
        assert!(!members.exists(), "{args:?} left the members folder");
    }
}

/// `check` names what is wrong in what it was given: a capture that is not there is reported as
/// such (before: as its missing config), and the `MISSING` hint gives the command that blesses
/// that golden, in that folder (before: `lsnat check --bless`, which blesses `captures/*`
/// into `golden/`).
#[test]
fn check_names_a_missing_capture_and_hints_the_bless_that_fits() {
    let dir = check_folder(&["rfc2391-fig1"]);
    let d = dir.path();
    let o = lsnat_in(d, &["check", "captures/typo.pcap"]);
    one_error_line(&o, &["captures/typo.pcap", "cannot open"]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("typo.toml"));

    let o = lsnat_in(
        d,
        &[
            "check",
            "captures/rfc2391-fig1.pcap",
            "--golden-dir",
            "new gold",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let hint =
        "run `lsnat check --golden-dir 'new gold' --bless captures/rfc2391-fig1.pcap` to create it";
    assert!(stdout.contains(hint), "{stdout}");
    // The hint does what it says.
    let o = std::process::Command::new("sh")
        .current_dir(d)
        .arg("-c")
        .arg(format!(
            "{} check --golden-dir 'new gold' --bless captures/rfc2391-fig1.pcap",
            env!("CARGO_BIN_EXE_lsnat")
        ))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read(d.join("new gold/rfc2391-fig1.snap")).unwrap(),
        std::fs::read(d.join("golden/rfc2391-fig1.snap")).unwrap()
    );
}

/// `--bless` says which goldens it wrote once they are written: a run that fails on a later
/// capture writes none and says so, where it used to print `blessed` for a golden it then
/// never wrote. A run that does write them says `blessed` for each and how many.
#[test]
fn bless_reports_goldens_only_once_written() {
    let dir = check_folder(&["rfc2391-fig1"]);
    let d = dir.path();
    std::fs::copy(
        d.join("captures/rfc2391-fig1.pcap"),
        d.join("captures/noconfig.pcap"),
    )
    .unwrap();
    let o = lsnat_in(
        d,
        &[
            "check",
            "--golden-dir",
            "fresh",
            "--bless",
            "captures/rfc2391-fig1.pcap",
            "captures/noconfig.pcap",
        ],
    );
    one_error_line(&o, &["noconfig.toml"]);
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!d.join("fresh").exists());

    let o = lsnat_in(
        d,
        &[
            "check",
            "--golden-dir",
            "fresh",
            "--bless",
            "captures/rfc2391-fig1.pcap",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "blessed fresh/rfc2391-fig1.snap\n1 blessed\n"
    );
}

/// A capture given under another name (a symbolic link) has its own config and golden beside
/// that name, so `check` checks it under each (before: once, and the other golden was never
/// compared, so a stale one passed). The same name spelled twice is still checked once.
#[cfg(unix)]
#[test]
fn check_checks_a_capture_under_each_of_its_names() {
    let dir = check_folder(&["rfc2391-fig1"]);
    let d = dir.path();
    std::os::unix::fs::symlink("rfc2391-fig1.pcap", d.join("captures/other.pcap")).unwrap();
    let config = std::fs::read_to_string(d.join("captures/rfc2391-fig1.toml")).unwrap();
    let other = config.replacen(
        "algorithm = \"round-robin\"",
        "algorithm = \"least-load\"",
        1,
    );
    assert_ne!(config, other);
    std::fs::write(d.join("captures/other.toml"), other).unwrap();
    let o = lsnat_in(
        d,
        &[
            "check",
            "--golden-dir",
            "g",
            "--bless",
            "captures/rfc2391-fig1.pcap",
            "captures/other.pcap",
            "./captures/other.pcap",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).ends_with("\n2 blessed\n"));
    let mine = std::fs::read_to_string(d.join("g/other.snap")).unwrap();
    assert!(mine.contains("with other.toml"), "{mine}");
    // A stale golden under the other name fails the check.
    std::fs::copy(d.join("golden/rfc2391-fig1.snap"), d.join("g/other.snap")).unwrap();
    let o = lsnat_in(
        d,
        &[
            "check",
            "--golden-dir",
            "g",
            "captures/rfc2391-fig1.pcap",
            "captures/other.pcap",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("DIFFERS captures/other.pcap"), "{stdout}");
    assert!(stdout.ends_with("2 checked, 1 differ\n"), "{stdout}");
}

/// Three edges of `check`, `--golden` and comparisons: `check` that finds no capture to check
/// is an error (before: `0 checked, 0 differ`, exit 0, so a CI job passed on nothing); a
/// golden written to a reader that goes away (`--golden /dev/stdout | head`) is no error, as
/// for `check`'s own output (before: exit 2, "Broken pipe"); an algorithm compared twice gets
/// a column label of its own (`maglev #2`), as a config compared twice does.
#[test]
fn check_of_nothing_fails_a_golden_to_a_closed_pipe_does_not_and_repeats_are_numbered() {
    let scratch = common::scratch();
    std::fs::create_dir(scratch.path().join("captures")).unwrap();
    let o = common::lsnat()
        .current_dir(scratch.path())
        .arg("check")
        .output()
        .unwrap();
    one_error_line(&o, &["captures", "no capture with a config beside it"]);

    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = common::lsnat()
        .args([
            "replay",
            "captures/lsnat-router.pcap",
            "--golden",
            "/dev/stdout",
            "-q",
        ])
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(o.stderr.is_empty(), "{err}");

    let o = lsnat_ok(&[
        "replay",
        "captures/lsnat-router.pcap",
        "--algorithm",
        "maglev",
        "--algorithm",
        "maglev",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("┆    maglev ┆ maglev #2 │"), "{stdout}");
}

/// A golden written by `replay --golden` with `--view` or `--algorithm` says so in its title, so
/// a later `check` of it against the capture's own config shows why it differs.
#[test]
fn an_overridden_golden_says_what_was_overridden() {
    let scratch = common::scratch();
    let dir = scratch.path().join("g");
    let snap = dir.join("lsnat-router.snap");
    lsnat_ok(&[
        "replay",
        "captures/lsnat-router.pcap",
        "--view",
        "router",
        "--algorithm",
        "maglev",
        "--golden",
        snap.to_str().unwrap(),
        "-q",
    ]);
    let text = std::fs::read_to_string(&snap).unwrap();
    let title = "# lsnat replay of lsnat-router.pcap with lsnat-router.toml (overridden: view router, algorithm maglev)\n";
    assert!(text.contains(title), "{text}");
    let o = lsnat(&[
        "check",
        "captures/lsnat-router.pcap",
        "--golden-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains(&format!("\n-{title}")), "{stdout}");
}

/// A golden whose line ends a checkout turned into CRLF (git's `autocrlf`) still matches: the
/// diff showed every line changed, each looking the same (`.gitattributes` also keeps
/// `golden/**/*.snap` LF on checkout).
#[test]
fn check_reads_a_golden_with_crlf_line_ends() {
    let dir = check_folder(&["rfc2391-fig1"]);
    let d = dir.path();
    let snap = d.join("golden/rfc2391-fig1.snap");
    let crlf = std::fs::read_to_string(&snap)
        .unwrap()
        .replace('\n', "\r\n");
    std::fs::write(&snap, crlf).unwrap();
    let o = lsnat_in(d, &["check", "captures/rfc2391-fig1.pcap"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    assert!(stdout.ends_with("1 checked, 0 differ\n"), "{stdout}");
}

/// The comparison table shows what differs between configurations: the sessions each bound,
/// every reason any of them dropped packets for (here maglev chooses other members than the
/// recorded router did, whose replies then have no session), and `-` for a member one
/// configuration does not have (before: `0 (0.0%)`, as for a member never chosen, and only
/// `no-member-available` drops).
#[test]
fn compare_shows_sessions_bound_every_drop_reason_and_absent_members() {
    let scratch = common::scratch();
    let base = std::fs::read_to_string(common::root().join("captures/lsnat-router.toml")).unwrap();
    let maglev = scratch.path().join("maglev.toml");
    std::fs::write(&maglev, base.replace("\"round-robin\"", "\"maglev\"")).unwrap();
    let two = scratch.path().join("two.toml");
    std::fs::write(&two, base.replace(", \"203.0.113.3\"]", "]")).unwrap();
    let o = lsnat_ok(&[
        "replay",
        "captures/lsnat-router.pcap",
        "--compare",
        "captures/lsnat-router.toml",
        "--compare",
        maglev.to_str().unwrap(),
        "--compare",
        two.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("│ {name} ")))
            .unwrap_or_else(|| panic!("no row {name}: {stdout}"))
            .split('┆')
            .skip(1)
            .map(|c| {
                c.trim_matches(|c: char| c == '│' || c.is_whitespace())
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(row("203.0.113.3")[2], "-", "{stdout}");
    assert_ne!(row("203.0.113.3")[0], "-", "{stdout}");
    assert_eq!(row("sessions bound"), ["13", "13", "13"], "{stdout}");
    let no_session = row("dropped: tcp-no-session");
    assert_eq!(no_session[0], "0", "{stdout}");
    assert_ne!(no_session[1], "0", "{stdout}");
}

/// A replay whose outcome suggests a config or a view that does not fit the capture says so,
/// last in the summary (or with `-q` on stderr): the wrong view, both ways, and a config
/// whose VIP is not in the capture. A replay that fits gives no such hint.
#[test]
fn a_replay_that_does_not_fit_its_capture_hints_why() {
    let last_line = |args: &[&str]| {
        let o = lsnat_ok(args);
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        stdout.lines().last().unwrap_or_default().to_string()
    };
    let hint = last_line(&[
        "replay",
        "captures/lsnat-router.pcap",
        "--view",
        "client-side",
    ]);
    assert!(
        hint.starts_with(
            "warning: no packet was translated member → client and 60 passed as unrelated"
        ) && hint.ends_with("it needs --view router"),
        "{hint}"
    );
    let hint = last_line(&[
        "replay",
        "captures/lsnat-client-side.pcap",
        "--view",
        "router",
    ]);
    assert!(hint.ends_with("it needs --view client-side"), "{hint}");
    assert!(!last_line(&["replay", "captures/lsnat-router.pcap"]).starts_with("warning: "));
    assert!(!last_line(&["replay", "captures/lsnat-client-side.pcap"]).starts_with("warning: "));

    let scratch = common::scratch();
    // The hint a quiet replay of `capture` with `config` leaves on stderr.
    let quiet_stderr = |capture: &Path, config: &Path| {
        let o = lsnat_ok(&[
            "replay",
            capture.to_str().unwrap(),
            "-c",
            config.to_str().unwrap(),
            "-q",
        ]);
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let fig1 = common::root().join("captures/rfc2391-fig1.pcap");
    let config = bundled_config_with(
        scratch.path(),
        "elsewhere.toml",
        "172.87.0.100",
        "192.0.2.200",
    );
    let stderr = quiet_stderr(&fig1, &config);
    assert!(
        stderr.starts_with("lsnat: warning: no session was bound"),
        "{stderr}"
    );

    // The virtual servers fit, but no member takes a session: the hint names the drops, not
    // the virtual servers (before: "no packet to a virtual server's address and service port
    // started one").
    let unreachable = r#"{ addr = "172.85.0.1", cost = "inf" }, { addr = "172.85.0.3", cost = "inf" }, { addr = "172.85.0.2", cost = "inf" }"#;
    let config = bundled_config_with(
        scratch.path(),
        "unreachable.toml",
        r#"members = ["172.85.0.1", "172.85.0.3", "172.85.0.2"]"#,
        &format!("members = [{unreachable}]"),
    );
    let stderr = quiet_stderr(&fig1, &config);
    assert!(
        stderr.starts_with(
            "lsnat: warning: no session was bound: the packets that would have started one were \
             dropped (2 no-member-available); check the pool"
        ),
        "{stderr}"
    );

    // A capture of no packet at all (its file header only).
    let empty = scratch.path().join("empty.pcap");
    std::fs::write(&empty, &std::fs::read(&fig1).unwrap()[..24]).unwrap();
    assert_eq!(
        quiet_stderr(&empty, &fig1.with_extension("toml")),
        "lsnat: warning: the capture holds no packet: there was nothing to replay\n"
    );
}

/// A capture without its config says why that file was looked for and what to do (before:
/// "cannot read configuration: No such file or directory"), for `replay`, `audit` and `check`;
/// `check` where there is no `captures/` folder says what it looked for. A config named with
/// `-c` that is not there stays a plain read error.
#[test]
fn a_missing_default_config_or_captures_folder_says_what_to_do() {
    let scratch = common::scratch();
    let d = scratch.path();
    std::fs::copy(
        common::root().join("captures/rfc2391-fig1.pcap"),
        d.join("alone.pcap"),
    )
    .unwrap();
    let run = |args: &[&str]| lsnat_in(d, args);
    for cmd in ["replay", "audit"] {
        one_error_line(
            &run(&[cmd, "alone.pcap"]),
            &[
                "alone.toml: no config beside the capture",
                "by default its name with .toml",
                "give one with -c CONFIG",
            ],
        );
    }
    one_error_line(
        &run(&["check", "alone.pcap"]),
        &["alone.toml: no config beside the capture", "lsnat check"],
    );
    one_error_line(
        &run(&["replay", "alone.pcap", "-c", "other.toml"]),
        &["other.toml: cannot read configuration"],
    );
    one_error_line(
        &run(&["check"]),
        &[
            "captures: no such folder here",
            "name the captures to check",
        ],
    );
}
