//! Memory grows with live sessions, not with the capture's length (issue 2, Speed).
//!
//! Each bundled capture is replayed through the engine 200 times in a row, every round
//! shifted in capture time by its own length plus two days (longer than any timeout, so each
//! round starts with the sessions of the one before unbound). The heap the engine holds is
//! measured by a counting allocator after every packet. A leak of even one entry per round
//! (a session slot, a flow-table key, a timer, a held fragment, a TU port, an affinity
//! entry, a queued event...) makes some table grow past the size the first rounds needed,
//! so the most heap of rounds 101–200 must not exceed that of rounds 1–100.
//!
//! This file holds one test, so no other test allocates while it measures.

use lsnat::capture::CaptureDirection;
use lsnat::engine::Engine;
use lsnat::link::{self, Payload};
use lsnat::time::Timestamp;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

/// Bytes allocated and not yet freed, by every thread.
static HELD: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: every call goes to `System` unchanged; only the count is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            HELD.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            HELD.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HELD.fetch_sub(layout.size(), Ordering::Relaxed);
            HELD.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ROUNDS: usize = 200;

/// What replaying `capture` `ROUNDS` times showed: the most heap held during each half of the
/// rounds (beyond what was held before the engine was built), and sessions bound per round.
struct Rounds {
    most: [usize; 2],
    bound_per_round: Vec<u64>,
}

fn replay_rounds(capture: &std::path::Path, limit: Option<usize>) -> Rounds {
    let mut cfg = lsnat::config::load(&capture.with_extension("toml")).unwrap();
    if limit.is_some() {
        cfg.max_sessions = limit;
    }
    // As the replay does: IPv4 datagrams only, and under `tcpdump -i any` only those arriving.
    let packets: Vec<(u64, Vec<u8>)> = common::read_all(capture)
        .into_iter()
        .filter_map(|(meta, frame)| {
            let view = link::locate(meta.linktype, &frame);
            let Payload::Ipv4 { offset } = view.payload else {
                return None;
            };
            let outbound = meta.direction == CaptureDirection::Outbound
                || view.direction == CaptureDirection::Outbound;
            (!outbound).then(|| (meta.ts.nanos(), frame[offset..].to_vec()))
        })
        .collect();
    let first = packets.first().map_or(0, |p| p.0);
    let last = packets.iter().map(|p| p.0).max().unwrap_or(first);
    let shift = last - first + 2 * 86_400 * 1_000_000_000;
    let mut scratch = Vec::new();
    let base = HELD.load(Ordering::Relaxed);
    let mut engine = Engine::new(cfg);
    let mut most = [0usize; 2];
    let mut bound_per_round = Vec::with_capacity(ROUNDS);
    let mut bound_before = 0;
    for round in 0..ROUNDS {
        for (ts, bytes) in &packets {
            // The engine rewrites what it is given: each round starts from the capture's bytes.
            scratch.clear();
            scratch.extend_from_slice(bytes);
            let now = Timestamp(*ts + round as u64 * shift);
            engine.handle(now, &mut scratch);
            while engine.poll_emitted().is_some() {}
            engine.drain_events(|_| {});
            while engine.poll_pool_event().is_some() {}
            let held = HELD.load(Ordering::Relaxed).saturating_sub(base);
            let half = &mut most[usize::from(round >= ROUNDS / 2)];
            *half = (*half).max(held);
        }
        let bound = engine.stats().sessions_bound;
        bound_per_round.push(bound - bound_before);
        bound_before = bound;
    }
    Rounds {
        most,
        bound_per_round,
    }
}

#[test]
fn engine_memory_stays_flat_over_200_rounds_of_every_bundled_capture() {
    let mut checked = 0;
    for capture in common::bundled() {
        // As configured, and with a session-table limit never reached (its longest-idle
        // order is kept only with a limit).
        for limit in [None, Some(1 << 20)] {
            let name = format!(
                "{} (table limit {limit:?})",
                capture.file_name().unwrap().to_string_lossy()
            );
            check_rounds(&name, replay_rounds(&capture, limit));
        }
        checked += 1;
    }
    assert!(
        checked >= 10,
        "only {checked} bundled captures with configs"
    );
}

fn check_rounds(name: &str, r: Rounds) {
    // Every round binds sessions again: the rounds are real replays, not no-ops.
    // Every round binds as many as the round a cycle before it. The cycle is one round, or, for
    // lsnat-ftp, three: its five control sessions per round move round-robin's turn on by
    // two of three members, and a control session bound to another member than the
    // recorded one gets no data connection (the recorded member's `227` is not its reply),
    // so its round binds fewer.
    let n = &r.bound_per_round;
    assert!(n.iter().all(|&k| k > 0), "{name}: no sessions bound");
    let cycle = (1..=3)
        .find(|&c| (c..n.len()).all(|i| n[i] == n[i - c]))
        .unwrap_or_else(|| panic!("{name}: rounds bound different numbers of sessions: {n:?}"));
    assert!(
        cycle == 1 || name.starts_with("lsnat-ftp"),
        "{name}: a cycle of {cycle} rounds: {n:?}"
    );
    assert!(r.most[0] > 0, "{name}: the engine held no heap");
    assert!(
        r.most[1] <= r.most[0],
        "{name}: the engine held {} bytes at most in rounds 101–200 against {} in rounds \
         1–100: its state grows with the capture's length",
        r.most[1],
        r.most[0]
    );
}
