//! Replays saved fuzz inputs through the targets' bodies without libFuzzer: every file in
//! `fuzz/corpus/TARGET/` (the seeds `--bin seeds` writes, and whatever a campaign added) and
//! in `fuzz/regressions/TARGET/` (committed inputs that once failed). An input fails when its
//! target panics: a crash or a broken oracle (checksum errors changed by a rewrite, a passed
//! packet changed, a report that is not JSON, ...). Prints one line per failing input and a
//! count per target; exits 1 when any failed, 2 when there was nothing to run.
//!
//! cargo run --release --manifest-path fuzz/Cargo.toml --bin seeds    # fuzz/corpus/*
//! cargo run --release --manifest-path fuzz/Cargo.toml --bin corpus   # [TARGET...]

use lsnat_fuzz::{root, targets};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::ExitCode;

/// The files of `dir`, sorted by name; none when it does not exist.
fn inputs(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn main() -> ExitCode {
    let only: Vec<String> = std::env::args().skip(1).collect();
    if let Some(bad) = only
        .iter()
        .find(|t| !targets::ALL.iter().any(|(n, _)| n == t))
    {
        eprintln!("corpus: no target named {bad}");
        return ExitCode::from(2);
    }
    let fuzz = root().join("fuzz");
    let (mut ran, mut failed) = (0usize, 0usize);
    for (name, run) in targets::ALL {
        if !only.is_empty() && !only.iter().any(|t| t == name) {
            continue;
        }
        let mut files = inputs(&fuzz.join("corpus").join(name));
        files.extend(inputs(&fuzz.join("regressions").join(name)));
        let mut bad = 0;
        for f in &files {
            let data = match std::fs::read(f) {
                Ok(d) => d,
                Err(e) => {
                    println!("FAIL {name} {}: cannot read: {e}", f.display());
                    bad += 1;
                    continue;
                }
            };
            // The panic's own message goes to stderr through the default hook.
            if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
                println!("FAIL {name} {}", f.display());
                bad += 1;
            }
        }
        println!("{name}: {} inputs, {bad} failed", files.len());
        ran += files.len();
        failed += bad;
    }
    if ran == 0 {
        eprintln!("corpus: no inputs (run `--bin seeds` first)");
        return ExitCode::from(2);
    }
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
