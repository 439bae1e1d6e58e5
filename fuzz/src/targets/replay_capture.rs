//! Fuzz target `replay_capture`: a whole capture file through the full replay.
//!
//! Input: one config byte, then the capture file's bytes (pcap or pcapng, any link type).
//! The byte picks one of `lsnat_fuzz::configs()` (modulo their count + 1); the value past the
//! last picks a config derived from the capture itself (client-side view, virtual servers at
//! its first SYN's and first UDP datagram's destinations), so that any capture gets
//! translated. The file is written to a scratch folder in /dev/shm and replayed as
//! `lsnat replay` does it (reader thread → link → engine → writer), with every output: the
//! rewritten capture, per-member captures, the JSON report (with the load report), the golden
//! text, the summary tables, per-second load rows and the decision list. An `Err` anywhere is
//! fine; a panic (in any thread: libfuzzer-sys aborts on it), a hang or a crash is not. After
//! a run that succeeded, the rewritten capture is read back: every packet carries the checksum
//! errors of the input packet it came from (etherparse's full recompute, as tests/common's
//! `assert_checksums_preserved`), originated ones none, and the JSON report must parse.

use lsnat::check;
use lsnat::replay::{self, Observer, ReplayJob};
use lsnat::report::{Summary, golden::GoldenLog, json::JsonReport, load::LoadReport, table};
use lsnat::time::Span;
use std::path::PathBuf;
use std::sync::OnceLock;

/// This process's scratch folder.
fn scratch() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let d = PathBuf::from(format!("/dev/shm/lsnat-fuzz-replay-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch folder");
        d
    })
}

/// One fuzz input: what libFuzzer hands the target, and what `corpus` replays.
pub fn run(data: &[u8]) {
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let dir = scratch();
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("output folder");
    let ext = if file.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        "pcapng"
    } else {
        "pcap"
    };
    let input = dir.join(format!("in.{ext}"));
    std::fs::write(&input, file).expect("input");
    let all = crate::configs();
    let pick = usize::from(pick) % (all.len() + 1);
    let (config_path, cfg) = match all.get(pick) {
        Some(c) => (c.path.clone(), c.config.clone()),
        None => match crate::derive_config(&input) {
            Some(c) => (dir.join("derived.toml"), c),
            None => return,
        },
    };
    let names: Vec<String> = cfg.virtual_servers.iter().map(|v| v.name.clone()).collect();
    let json_path = out.join("report.json");
    let job = ReplayJob {
        input: input.clone(),
        config_path: config_path.clone(),
        config: cfg,
        output: Some(out.join(format!("out.{ext}"))),
        member_dir: Some(out.join("members")),
    };
    let mut load = LoadReport::new(&job.config, Some(Span::from_secs(1)), true);
    let Ok(mut json) = JsonReport::create(&json_path, &input, &config_path, &job.config) else {
        return;
    };
    let mut summary = Summary::default();
    let mut log = GoldenLog::default();
    let totals = {
        let mut observers: Vec<&mut dyn Observer> =
            vec![&mut summary, &mut load, &mut json, &mut log];
        replay::run(&job, &mut observers)
    };
    let Ok(totals) = totals else {
        return;
    };
    if load.interval_error().is_some() {
        return;
    }
    json.set_load(load.to_json());
    if json.finish(&summary, &totals).is_err() {
        return;
    }
    let text = check::text(&input, &config_path, &[], &names, &log, &summary, &totals);
    std::hint::black_box(check::snapshot_file(&text));
    let mut t = table::render_tables(&summary, &totals, None);
    t.push_str(&load.render(None));
    t.push_str(&load.fairness_line());
    if let Some(start) = totals.first_ts {
        t.push_str(&load.render_decisions(start));
    }
    for w in totals.all_warnings() {
        t.push_str(&w);
    }
    t.push_str(&table::hint(&summary, job.config.view).unwrap_or_default());
    std::hint::black_box(t);
    checksums_preserved(
        &input,
        job.output.as_deref().expect("an output"),
        &log.written,
    );
    // The report must be one JSON document (it is written in pieces by two threads).
    let report = std::fs::read(&json_path).expect("the report was written");
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&report) {
        panic!("report.json is not JSON: {e}");
    }
}

/// Every packet of a capture: link type and bytes.
fn read_all(path: &std::path::Path) -> Vec<(lsnat::capture::LinkType, Vec<u8>)> {
    let mut r = lsnat::capture::CaptureReader::open(path).expect("read again");
    let mut b = lsnat::capture::Batch::default();
    let mut out = Vec::new();
    while r.read_batch(&mut b, 1024).expect("read again") {
        for i in 0..b.packets.len() {
            out.push((b.packets[i].linktype, b.bytes(i).to_vec()));
        }
    }
    out
}

/// Checksum errors of a frame's IPv4 datagram, by full recompute.
fn errors(linktype: lsnat::capture::LinkType, frame: &[u8]) -> Option<(u16, Option<u16>)> {
    let lsnat::link::Payload::Ipv4 { offset } = lsnat::link::locate(linktype, frame).payload else {
        return None;
    };
    crate::checksum_errors(frame.get(offset..)?)
}

/// As tests/common `assert_checksums_preserved`: every packet of the rewritten capture carries
/// the checksum errors (usually none) of the input packet it came from, and the packets the
/// router originated carry none.
fn checksums_preserved(
    input: &std::path::Path,
    output: &std::path::Path,
    written: &[lsnat::report::golden::Written],
) {
    use lsnat::report::golden::Written;
    let ins = read_all(input);
    let outs = read_all(output);
    assert_eq!(written.len(), outs.len(), "written packet count");
    for (n, (w, (lo, bo))) in written.iter().zip(&outs).enumerate() {
        let theirs = errors(*lo, bo);
        match *w {
            Written::Packet(i) | Written::Released(i) => {
                let (li, bi) = &ins[(i - 1) as usize];
                if let (Some(a), Some(b)) = (errors(*li, bi), theirs) {
                    assert_eq!(
                        a, b,
                        "output packet {n} (input {i}): checksum error changed by the rewrite"
                    );
                }
            }
            Written::Originated => {
                assert_eq!(theirs, Some((0, Some(0))), "output packet {n}: originated");
            }
        }
    }
}
