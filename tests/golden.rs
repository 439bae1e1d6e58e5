//! Every capture in `captures/` against its golden in `golden/` (per-packet translation,
//! session table, summary), and every rewritten packet against an independent full checksum
//! recompute.

mod common;

use lsnat::check;
use std::path::PathBuf;

/// The bundled captures that have a config beside them.
fn captures() -> Vec<PathBuf> {
    common::captures(&common::root().join("captures"))
        .into_iter()
        .filter(|p| p.with_extension("toml").exists())
        .collect()
}

#[test]
fn every_capture_matches_its_golden() {
    let caps = captures();
    assert!(
        caps.len() >= 4,
        "expected the bundled captures, found {caps:?}"
    );
    let scratch = common::scratch();
    let out_dir = scratch.path();
    for cap in caps {
        let name = check::name(&cap);
        let out = out_dir.join(format!("{name}.pcap"));
        let g = check::render(&cap, None, Some(&out))
            .unwrap_or_else(|e| panic!("{}: {e}", cap.display()));
        insta::with_settings!({
            snapshot_path => "../golden",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name.clone(), g.text);
        });
        let compared = common::assert_checksums_preserved(&cap, &out, &g.log.written);
        assert!(compared > 0, "{name}: no packet was checksum-checked");
    }
}

#[test]
fn replays_are_byte_identical_run_to_run() {
    let scratch = common::scratch();
    let out = scratch.path();
    for cap in captures() {
        let a = out.join("a.pcap");
        let b = out.join("b.pcap");
        let ga = check::render(&cap, None, Some(&a)).unwrap();
        let gb = check::render(&cap, None, Some(&b)).unwrap();
        assert_eq!(ga.text, gb.text);
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }
}
