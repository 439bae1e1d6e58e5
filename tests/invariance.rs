//! What must not change a replay: where its batches end, which outputs were asked for, and
//! when the capture was taken.
//!
//! Batches: the reader reads, the engine's thread handles and the writer writes a capture batch
//! by batch (4096 packets): a whole batch is written from its own memory when its records line
//! up with the output, packets the router emits or releases are written beside a batch's own,
//! pcapng blocks travel with the batch they came in. Every capture is replayed with batches of
//! 1, 2, 3, 7 and 64 packets and of 4096, and the rewritten capture, the JSON report, the
//! golden text and the members' captures must be byte for byte the same. The bundled captures
//! (with their configs) and the public corpus (pcap and pcapng, with a config derived from
//! each; skipped when absent). The one documented exception: a fragment a member sent in an
//! earlier batch than its first fragment goes into the member's capture just before that
//! first fragment (README, "Reports"). None of these captures has one (lsnat-edges holds two
//! fragments, but clients sent them), so members' captures are compared for every one; a
//! capture added with such a fragment fails here and must be exempted by name.
//!
//! Outputs: the golden text of a replay with every output equals that of a replay with none.
//!
//! Time: the engine runs on capture time alone, so a capture moved to another date replays
//! the same (its golden text shows times from the first packet). Every bundled capture is
//! moved to start at the Unix epoch itself (0.000000, as captures made by tools without a
//! clock are) and in 2096 (past 2038, near the end of a classic pcap's 32-bit seconds); and
//! as a pcapng, whose timestamps are 64-bit counts of its interface's unit, to the epoch, 2096
//! and 2191 (a float in the pcapng timestamp's decoding, which loses nanoseconds there,
//! fails it).

mod common;

use lsnat::check;
use lsnat::config;
use lsnat::replay::{self, Observer, ReplayJob};
use lsnat::report::{Summary, golden::GoldenLog, json::JsonReport};
use std::collections::BTreeMap;
use std::path::Path;

/// Batch sizes besides the replay's own.
const SIZES: [usize; 5] = [1, 2, 3, 7, 64];

/// What one replay wrote.
struct Written {
    golden: String,
    capture: Vec<u8>,
    report: Vec<u8>,
    members: BTreeMap<String, Vec<u8>>,
}

/// Replays `cap` with every output into `dir`; `Err` when the replay refuses the capture.
fn replay(
    cap: &Path,
    cfg_path: &Path,
    dir: &Path,
    batch: Option<usize>,
) -> Result<Written, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let cfg = config::load(cfg_path).unwrap_or_else(|e| panic!("{}: {e}", cfg_path.display()));
    let names: Vec<String> = cfg.virtual_servers.iter().map(|v| v.name.clone()).collect();
    let ext = cap.extension().unwrap().to_string_lossy().into_owned();
    let out = dir.join(format!("out.{ext}"));
    let members = dir.join("members");
    let json = dir.join("report.json");
    let job = ReplayJob {
        input: cap.to_path_buf(),
        config_path: cfg_path.to_path_buf(),
        config: cfg,
        output: Some(out.clone()),
        member_dir: Some(members.clone()),
    };
    let mut report = JsonReport::create(&json, cap, cfg_path, &job.config).unwrap();
    let mut log = GoldenLog::default();
    let mut summary = Summary::default();
    let totals = {
        let mut observers: Vec<&mut dyn Observer> = vec![&mut log, &mut summary, &mut report];
        match batch {
            Some(n) => replay::run_in_batches(&job, &mut observers, n),
            None => replay::run(&job, &mut observers),
        }
    }
    .map_err(|e| e.to_string())?;
    report.finish(&summary, &totals).unwrap();
    let golden = check::text(cap, cfg_path, &[], &names, &log, &summary, &totals);
    let members = std::fs::read_dir(&members)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    Ok(Written {
        golden,
        capture: std::fs::read(&out).unwrap(),
        report: std::fs::read(&json).unwrap(),
        members,
    })
}

/// Replays `cap` whole-batch and in each of [`SIZES`], and compares every output. `Err` when
/// the replay refuses the capture (malformed, an unsupported link type: the corpus test's
/// business), in batches of any size as in one.
fn assert_batch_independent(cap: &Path, cfg_path: &Path, scratch: &Path) -> Result<(), String> {
    let name = cap.file_name().unwrap().to_string_lossy().into_owned();
    let base = replay(cap, cfg_path, &scratch.join("base"), None)?;
    assert!(!base.capture.is_empty(), "{name}: nothing written");
    for n in SIZES {
        let other = replay(cap, cfg_path, &scratch.join(format!("b{n}")), Some(n))
            .unwrap_or_else(|e| panic!("{name}, batches of {n}: {e}"));
        let what = format!("{name}, batches of {n}");
        assert_eq!(other.golden, base.golden, "{what}: golden text differs");
        assert!(
            other.capture == base.capture,
            "{what}: rewritten capture differs"
        );
        assert!(other.report == base.report, "{what}: JSON report differs");
        assert_eq!(
            other.members.keys().collect::<Vec<_>>(),
            base.members.keys().collect::<Vec<_>>(),
            "{what}: member captures"
        );
        for (m, bytes) in &base.members {
            assert!(other.members[m] == *bytes, "{what}: {m} differs");
        }
    }
    Ok(())
}

#[test]
fn bundled_captures_replay_the_same_in_batches_of_any_size() {
    let scratch = common::scratch();
    let caps = common::bundled();
    assert!(caps.len() >= 17, "expected the bundled captures: {caps:?}");
    for cap in &caps {
        assert_batch_independent(cap, &cap.with_extension("toml"), scratch.path())
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn the_outputs_asked_for_do_not_change_the_replay() {
    // Member captures in the router view keep each packet's original bytes, the JSON report
    // runs its formatter threads: none of it may change what the engine did. The golden text
    // of a replay with every output equals that of a replay with none.
    let scratch = common::scratch();
    for cap in common::bundled() {
        let all = replay(&cap, &cap.with_extension("toml"), scratch.path(), None).unwrap();
        let none = check::render(&cap, None, None).unwrap();
        assert_eq!(all.golden, none.text, "{}", cap.display());
    }
}

#[test]
fn corpus_captures_replay_the_same_in_batches_of_any_size() {
    let Some(dir) = common::corpus() else {
        eprintln!("SKIP: no shared corpus (../shared/corpus or LSNAT_CORPUS)");
        return;
    };
    let scratch = common::scratch();
    let cfg_path = scratch.path().join("derived.toml");
    let (mut pcap, mut pcapng) = (0, 0);
    for cap in common::captures(&dir) {
        // Small files only: each is replayed six times in a debug build.
        if std::fs::metadata(&cap).map_or(true, |m| m.len() > 2_000_000) {
            continue;
        }
        let Some(text) = common::derive_config(&cap) else {
            continue;
        };
        std::fs::write(&cfg_path, text).unwrap();
        if assert_batch_independent(&cap, &cfg_path, scratch.path()).is_err() {
            continue;
        }
        match cap.extension().and_then(|e| e.to_str()) {
            Some("pcapng") => pcapng += 1,
            _ => pcap += 1,
        }
    }
    eprintln!("compared {pcap} pcap and {pcapng} pcapng files of the corpus");
    assert!(pcap > 0 && pcapng > 0, "{pcap} pcap, {pcapng} pcapng");
}

/// A copy of the classic pcap `cap` whose packets are all moved by the same amount, so that
/// the first is at `first_sec` seconds (its fraction kept).
fn moved(cap: &Path, first_sec: u32) -> Vec<u8> {
    let mut b = std::fs::read(cap).unwrap();
    let le = match b[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("{}: not a classic pcap", cap.display()),
    };
    let get = |b: &[u8], at: usize| {
        let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    let mut at = 24;
    let mut shift = None;
    while at + 16 <= b.len() {
        let sec = get(&b, at);
        let shift = *shift.get_or_insert(i64::from(first_sec) - i64::from(sec));
        let new = u32::try_from(i64::from(sec) + shift).expect("timestamps in order");
        let w = if le {
            new.to_le_bytes()
        } else {
            new.to_be_bytes()
        };
        b[at..at + 4].copy_from_slice(&w);
        at += 16 + get(&b, at + 8) as usize;
    }
    b
}

/// Writes `bytes`, `cap` moved to start at `first` seconds, as `name` in the folder `dir` of
/// `scratch`, and asserts that it replays as `cap` did (`base`, its golden) and starts there.
fn assert_moved_replays_the_same(
    scratch: &Path,
    cap: &Path,
    base: &check::Golden,
    (dir, name): (&str, &std::ffi::OsStr),
    first: u64,
    bytes: &[u8],
) {
    let d = scratch.join(dir);
    std::fs::create_dir_all(&d).unwrap();
    let copy = d.join(name);
    std::fs::write(&copy, bytes).unwrap();
    let g = check::render(&copy, Some(&cap.with_extension("toml")), None)
        .unwrap_or_else(|e| panic!("{}: {e}", copy.display()));
    assert_eq!(
        g.text.lines().skip(1).collect::<Vec<_>>(),
        base.text.lines().skip(1).collect::<Vec<_>>(),
        "{} moved to start at {first} s",
        copy.display()
    );
    assert_eq!(
        g.totals.first_ts.map(|t| t.0 / 1_000_000_000),
        Some(first),
        "{}",
        copy.display()
    );
}

#[test]
fn a_capture_moved_in_time_replays_the_same() {
    let scratch = common::scratch();
    let mut moved_count = 0;
    for cap in common::bundled() {
        let name = cap.file_name().unwrap();
        // The same shift for every record (lsnat-pool's seven that go back included); none
        // falls before the first packet's second, or `moved` would panic.
        let base = check::render(&cap, None, None).unwrap();
        for (dir, first) in [("epoch", 0u32), ("2096", 4_000_000_000)] {
            let bytes = moved(&cap, first);
            assert_moved_replays_the_same(
                scratch.path(),
                &cap,
                &base,
                (dir, name),
                u64::from(first),
                &bytes,
            );
            moved_count += 1;
        }
    }
    assert!(moved_count >= 34, "{moved_count}");
}

/// The same as [`a_capture_moved_in_time_replays_the_same`] for pcapng, whose timestamps are
/// 64-bit counts of the interface's unit: every bundled capture as a pcapng of one interface
/// (its link type, its resolution), moved to start at the epoch, in 2096 and in 2191, past
/// the last second a classic pcap can hold (2106).
#[test]
fn a_pcapng_moved_in_time_replays_the_same() {
    let scratch = common::scratch();
    let mut moved_count = 0;
    for cap in common::bundled() {
        let base = check::render(&cap, None, None).unwrap();
        let pcap = common::Pcap::read(&cap);
        let first_sec = u64::from(u32::from_le_bytes(
            pcap.records[0].0[..4].try_into().unwrap(),
        ));
        let name = cap.with_extension("pcapng");
        for (dir, first) in [
            ("epoch", 0u64),
            ("2096", 4_000_000_000),
            ("2191", 7_000_000_000),
        ] {
            let shift = i64::try_from(first).unwrap() - i64::try_from(first_sec).unwrap();
            let ng = pcap.to_pcapng_moved(shift, |f| (f.to_vec(), None));
            assert_moved_replays_the_same(
                scratch.path(),
                &cap,
                &base,
                (dir, name.file_name().unwrap()),
                first,
                &ng.out,
            );
            moved_count += 1;
        }
    }
    assert!(moved_count >= 51, "{moved_count}");
}
