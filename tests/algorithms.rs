//! One golden per load-share algorithm configuration and capture: `tests/algorithms/CAPTURE/`
//! holds configurations for `captures/CAPTURE.pcap` (one per algorithm or variant); each
//! replay's decisions and load report are compared with `golden/algorithms/CAPTURE--NAME.snap`.
//! To cover another capture, add a folder named after it with its configurations.

mod common;

use lsnat::check;
use lsnat::time::Span;
use std::path::PathBuf;

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
