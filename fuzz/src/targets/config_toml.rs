//! Fuzz target `config_toml`: arbitrary text to the configuration loader
//! (`lsnat::config::parse`), which must answer an error, never panic. A config it accepts is
//! also built into an engine (`Engine::new`) and given one packet and the end of a replay,
//! which must not panic either: validation must refuse what the engine cannot take.
//!
//! The path given is tests/algorithms/lsnat-router/fuzz.toml, so a `capacity_file` such as
//! "capacity.jsonl" resolves to a real file beside it.

use lsnat::engine::Engine;
use lsnat::time::Timestamp;
use std::path::PathBuf;
use std::sync::OnceLock;

/// A SYN from 198.51.100.7:40000 to 198.18.0.100:80 (the bundled configs' VIP), checksums
/// right.
fn syn() -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 198, 51, 100, 7, 198, 18, 0, 100, //
        0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ];
    crate::fix_checksums(&mut p);
    p
}

/// One fuzz input: what libFuzzer hands the target, and what `corpus` replays.
pub fn run(data: &[u8]) {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    let path = PATH.get_or_init(|| crate::root().join("tests/algorithms/lsnat-router/fuzz.toml"));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = lsnat::config::parse(path, text) else {
        return;
    };
    let mut e = Engine::new(cfg);
    let t = Timestamp(1_700_000_000_000_000_000);
    let mut p = syn();
    std::hint::black_box(e.handle(t, &mut p));
    e.drain_events(|ev| {
        std::hint::black_box(ev);
    });
    while e.poll_emitted().is_some() {}
    while e.poll_pool_event().is_some() {}
    e.pass_time(Timestamp(t.0 + 3_600_000_000_000));
    e.finish(Timestamp(t.0 + 7_200_000_000_000));
    e.drain_events(|ev| {
        std::hint::black_box(ev);
    });
}
