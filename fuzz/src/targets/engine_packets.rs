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
//! - every packet also goes through a twin engine by the other entry point (`handle` or
//!   `precompute` + `handle_precomputed`): the same outcome, bytes, events, pool events and
//!   emitted packets;
//! - a Translated packet (or the resized datagram the FTP gateway built) carries exactly the
//!   checksum errors the input carried, IPv4 header and TCP/UDP/ICMP, recomputed in full by
//!   etherparse (so right in, right out); the IPv4 header an ICMP error quotes likewise;
//! - a Passed packet is forwarded unchanged;
//! - an ICMP time exceeded the router originates has right checksums;
//! - a held fragment released translated keeps its header checksum error, one released as
//!   passed is unchanged.

use crate::{checksum_errors, chunks, configs, fix_checksums, flags, quoted_header_error};
use lsnat::engine::{EmitKind, Engine, Event, PoolEvent, Verdict};
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

/// What an engine queued after one step: session events, pool events, emitted packets.
#[derive(Debug, Default, PartialEq)]
struct Drained {
    events: Vec<Event>,
    pool: Vec<PoolEvent>,
    emitted: Vec<(EmitKind, Vec<u8>)>,
}

/// Drains everything the engine queued.
fn drain(engine: &mut Engine) -> Drained {
    let mut d = Drained::default();
    engine.drain_events(|e| d.events.push(*e));
    while let Some(e) = engine.poll_pool_event() {
        d.pool.push(e);
    }
    while let Some(e) = engine.poll_emitted() {
        d.emitted.push((e.kind, e.bytes.to_vec()));
    }
    d
}

/// Checks what the engine emitted: the time exceeded it originates has right checksums, a
/// held fragment is released with its checksum errors (translated) or unchanged (passed).
fn check_emitted(d: &Drained, held: &mut HashMap<u64, Vec<u8>>) {
    for (kind, bytes) in &d.emitted {
        match *kind {
            EmitKind::IcmpTimeExceeded { .. } => {
                let errs = checksum_errors(bytes);
                assert_eq!(
                    errs,
                    Some((0, Some(0))),
                    "originated time exceeded has wrong checksums: {bytes:02x?}"
                );
            }
            EmitKind::HeldFragment { hold, outcome } => {
                let original = held.remove(&hold);
                if let Some(original) = original.filter(|_| !bytes.is_empty()) {
                    match outcome.verdict {
                        Verdict::Translated => same_errors("released fragment", &original, bytes),
                        Verdict::Pass(_) => {
                            assert_eq!(
                                &original[..],
                                &bytes[..],
                                "released passed fragment changed"
                            )
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// The main engine and its twin, which takes every packet through the other entry point
/// (`handle` where the main one takes `precompute` + `handle_precomputed`, and the reverse):
/// the replay hands packets to the engine precomputed on its reader thread, the library's
/// callers plainly, and the two must behave alike in everything.
struct Pair {
    main: Engine,
    twin: Engine,
}

impl Pair {
    /// Drains both; the twin must have queued exactly what the main engine did.
    /// `after` names the step, formatted only for a failure.
    fn drain(&mut self, held: &mut HashMap<u64, Vec<u8>>, after: std::fmt::Arguments) {
        let d = drain(&mut self.main);
        let t = drain(&mut self.twin);
        assert!(
            d == t,
            "after {after}: handle and handle_precomputed queued different things\n  {d:?}\n  {t:?}"
        );
        check_emitted(&d, held);
    }
}

/// One fuzz input: what libFuzzer hands the target, and what `corpus` replays.
pub fn run(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let all = configs();
    let cfg = &all[usize::from(pick) % all.len()];
    let mut e = Pair {
        main: Engine::new(cfg.config.clone()),
        twin: Engine::new(cfg.config.clone()),
    };
    let mut now: u64 = 1_700_000_000_000_000_000;
    let mut held: HashMap<u64, Vec<u8>> = HashMap::new();
    let (mut buf, mut twin_buf) = (Vec::new(), Vec::new());
    for (n, c) in chunks(rest).iter().enumerate() {
        now = if c.flags & flags::BACKWARDS != 0 {
            now.saturating_sub(c.delta_ns())
        } else {
            now.saturating_add(c.delta_ns())
        };
        let ts = Timestamp(now);
        if c.flags & flags::PASS_TIME != 0 {
            e.main.pass_time(ts);
            e.twin.pass_time(ts);
        } else {
            buf.clear();
            buf.extend_from_slice(c.bytes);
            if c.flags & flags::FIX_CHECKSUMS != 0 {
                fix_checksums(&mut buf);
            }
            let before = buf.clone();
            twin_buf.clear();
            twin_buf.extend_from_slice(&buf);
            let precomputed = c.flags & flags::PRECOMPUTED != 0;
            let step = |engine: &mut Engine, b: &mut Vec<u8>, pre: bool| {
                if pre {
                    let p = lsnat::engine::precompute(b);
                    engine.handle_precomputed(ts, b, &p)
                } else {
                    engine.handle(ts, b)
                }
            };
            let out = step(&mut e.main, &mut buf, precomputed);
            let twin_out = step(&mut e.twin, &mut twin_buf, !precomputed);
            assert_eq!(
                out, twin_out,
                "chunk {n}: handle and handle_precomputed answered differently"
            );
            assert_eq!(
                buf, twin_buf,
                "chunk {n}: handle and handle_precomputed wrote different bytes"
            );
            match out.verdict {
                Verdict::Translated => {
                    if out.alg.resized != 0 {
                        let resized = e.main.resized();
                        assert!(!resized.is_empty(), "resized but no datagram");
                        assert_eq!(resized, e.twin.resized(), "chunk {n}: resized datagrams");
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
        e.drain(&mut held, format_args!("chunk {n}"));
        if c.flags & flags::FINISH_FRAGMENTS != 0 {
            e.main.finish_fragments(ts);
            e.twin.finish_fragments(ts);
            e.drain(&mut held, format_args!("finish_fragments after chunk {n}"));
        }
    }
    let end = Timestamp(now);
    e.main.finish_fragments(end);
    e.twin.finish_fragments(end);
    e.drain(&mut held, format_args!("the last finish_fragments"));
    let mut ended = (Vec::new(), Vec::new());
    e.main
        .finish_sessions(end, Some(&mut |ev| ended.0.push(*ev)));
    e.twin
        .finish_sessions(end, Some(&mut |ev| ended.1.push(*ev)));
    assert!(
        ended.0 == ended.1,
        "finish_sessions ended different sessions"
    );
    e.drain(&mut held, format_args!("finish_sessions"));
    assert_eq!(e.main.stats(), e.twin.stats(), "engine statistics");
    assert_eq!(e.main.live_sessions(), e.twin.live_sessions());
    std::hint::black_box(e.main.members().len());
}
