//! Fuzz target `engine_packets`: the sans-IO engine fed a sequence of IPv4 packets.
//!
//! Input: one config byte (picks one of `lsnat_fuzz::configs()`: the bundled captures'
//! configs, the pool-timeline and per-algorithm test configs, and three inline stress
//! configs), then chunks `flags u8, dt u16 LE, len u16 LE, bytes[len]` (see
//! `lsnat_fuzz::flags`: time unit and direction, pass_time only, precomputed handling, fix the
//! checksums first, finish_fragments after). Events, pool events and emitted packets are
//! drained after every chunk; `finish_fragments` and `finish_sessions` run at the end.
//!
//! Oracles besides "no panic":
//! - a Translated packet (or the resized datagram the FTP gateway built) carries exactly the
//!   checksum errors the input carried, IPv4 header and TCP/UDP/ICMP, recomputed in full by
//!   etherparse (so right in, right out); the IPv4 header an ICMP error quotes likewise;
//! - a Passed packet is forwarded unchanged;
//! - an ICMP time exceeded the router originates has right checksums;
//! - a held fragment released translated keeps its header checksum error, one released as
//!   passed is unchanged.

use crate::{checksum_errors, chunks, configs, fix_checksums, flags, quoted_header_error};
use lsnat::engine::{EmitKind, Engine, Verdict};
use lsnat::time::Timestamp;
use std::collections::HashMap;

/// Compares the checksum errors of a datagram before and after the engine rewrote it.
fn same_errors(what: &str, before: &[u8], after: &[u8]) {
    let (Some((ib, lb)), Some((ia, la))) = (checksum_errors(before), checksum_errors(after)) else {
        return;
    };
    assert_eq!(
        ib, ia,
        "{what}: IPv4 header checksum error changed by the rewrite\n  before {before:02x?}\n  after  {after:02x?}"
    );
    if let (Some(lb), Some(la)) = (lb, la) {
        assert_eq!(
            lb, la,
            "{what}: transport checksum error changed by the rewrite\n  before {before:02x?}\n  after  {after:02x?}"
        );
    }
    if let (Some(qb), Some(qa)) = (quoted_header_error(before), quoted_header_error(after)) {
        assert_eq!(
            qb, qa,
            "{what}: quoted IPv4 header checksum error changed by the rewrite\n  before {before:02x?}\n  after  {after:02x?}"
        );
    }
}

/// Drains everything the engine queued; checks what it emitted.
fn drain(engine: &mut Engine, held: &mut HashMap<u64, Vec<u8>>) {
    engine.drain_events(|e| {
        std::hint::black_box(e);
    });
    while let Some(e) = engine.poll_pool_event() {
        std::hint::black_box(e.kind.name());
    }
    while let Some(e) = engine.poll_emitted() {
        match e.kind {
            EmitKind::IcmpTimeExceeded { .. } => {
                let errs = checksum_errors(e.bytes);
                assert_eq!(
                    errs,
                    Some((0, Some(0))),
                    "originated time exceeded has wrong checksums: {:02x?}",
                    e.bytes
                );
            }
            EmitKind::HeldFragment { hold, outcome } => {
                let original = held.remove(&hold);
                if let Some(original) = original.filter(|_| !e.bytes.is_empty()) {
                    match outcome.verdict {
                        Verdict::Translated => same_errors("released fragment", &original, e.bytes),
                        Verdict::Pass(_) => {
                            assert_eq!(&original[..], e.bytes, "released passed fragment changed")
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// One fuzz input: what libFuzzer hands the target, and what `corpus` replays.
pub fn run(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let all = configs();
    let cfg = &all[usize::from(pick) % all.len()];
    let mut engine = Engine::new(cfg.config.clone());
    let mut now: u64 = 1_700_000_000_000_000_000;
    let mut held: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut buf = Vec::new();
    for c in chunks(rest) {
        now = if c.flags & flags::BACKWARDS != 0 {
            now.saturating_sub(c.delta_ns())
        } else {
            now.saturating_add(c.delta_ns())
        };
        let ts = Timestamp(now);
        if c.flags & flags::PASS_TIME != 0 {
            engine.pass_time(ts);
        } else {
            buf.clear();
            buf.extend_from_slice(c.bytes);
            if c.flags & flags::FIX_CHECKSUMS != 0 {
                fix_checksums(&mut buf);
            }
            let before = buf.clone();
            let out = if c.flags & flags::PRECOMPUTED != 0 {
                let pre = lsnat::engine::precompute(&buf);
                engine.handle_precomputed(ts, &mut buf, &pre)
            } else {
                engine.handle(ts, &mut buf)
            };
            match out.verdict {
                Verdict::Translated => {
                    if out.alg.resized != 0 {
                        let resized = engine.resized();
                        assert!(!resized.is_empty(), "resized but no datagram");
                        same_errors("resized datagram", &before, resized);
                    } else {
                        same_errors("translated packet", &before, &buf);
                    }
                }
                Verdict::Pass(r) => {
                    assert_eq!(before, buf, "passed packet ({}) was changed", r.name());
                }
                Verdict::Held(id) => {
                    held.insert(id, before);
                }
                Verdict::Drop(_) => {}
            }
        }
        drain(&mut engine, &mut held);
        if c.flags & flags::FINISH_FRAGMENTS != 0 {
            engine.finish_fragments(ts);
            drain(&mut engine, &mut held);
        }
    }
    let end = Timestamp(now);
    engine.finish_fragments(end);
    drain(&mut engine, &mut held);
    engine.finish_sessions(
        end,
        Some(&mut |e| {
            std::hint::black_box(e);
        }),
    );
    drain(&mut engine, &mut held);
    std::hint::black_box((
        engine.stats(),
        engine.live_sessions(),
        engine.members().len(),
    ));
}
