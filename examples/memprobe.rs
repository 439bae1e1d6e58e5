//! How fast this machine's memory is right now, for `scripts/bench.sh` to print beside its
//! timings.
//!
//! ```text
//! cargo run --release --example memprobe
//! ```
//!
//! The replay's engine thread waits on memory more than on instructions (its flow-table and
//! session lookups are scattered over hundreds of MB), and tcprewrite's time is mostly the
//! kernel copying pages. On a shared VM the memory system's speed moves from day to day
//! (the same binary's replay took 2.9 s on one day and 5 s on another with the CPU's own
//! speed unchanged), so a benchmark run says what it ran on. Two figures, one thread:
//!
//! - **copy**: `copy_from_slice` of a 256 MiB buffer into another, eight times (bytes
//!   copied per second, read and write each counted once);
//! - **dependent load**: a walk of a random cycle over a 256 MiB array (each load's
//!   address is the previous load's value, so no two overlap): nanoseconds per load, a
//!   cache and TLB miss each;
//! - and, to tell a slow memory from a slow core, **core**: 500M steps of a dependent
//!   xorshift in registers (steps per nanosecond).
//!
//! Prints one line: `copy 14.9 GB/s, dependent load 194 ns, core 0.8 steps/ns`.

use std::hint::black_box;
use std::time::Instant;

const BYTES: usize = 256 << 20;
const COPIES: usize = 8;
const LOADS: usize = 20_000_000;

/// A seeded SplitMix64: the cycle is the same on every run.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn copy_rate() -> f64 {
    let from = vec![1u8; BYTES];
    let mut to = vec![2u8; BYTES];
    let start = Instant::now();
    for _ in 0..COPIES {
        to.copy_from_slice(black_box(&from));
        black_box(&mut to);
    }
    (BYTES * COPIES) as f64 / start.elapsed().as_secs_f64()
}

fn load_latency() -> f64 {
    let n = BYTES / std::mem::size_of::<u64>();
    // Sattolo's shuffle: one cycle through every element.
    let mut next_of: Vec<u64> = (0..n as u64).collect();
    let mut state = 1;
    for i in (1..n).rev() {
        let j = (next(&mut state) % i as u64) as usize;
        next_of.swap(i, j);
    }
    let mut at = 0usize;
    let start = Instant::now();
    for _ in 0..LOADS {
        at = next_of[at] as usize;
    }
    black_box(at);
    start.elapsed().as_secs_f64() * 1e9 / LOADS as f64
}

fn core_rate() -> f64 {
    const STEPS: u64 = 500_000_000;
    let mut x = black_box(88_172_645_463_325_252u64);
    let start = Instant::now();
    for _ in 0..STEPS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x);
    STEPS as f64 / (start.elapsed().as_secs_f64() * 1e9)
}

fn main() {
    let copy = copy_rate();
    let load = load_latency();
    let core = core_rate();
    println!(
        "copy {:.1} GB/s, dependent load {load:.0} ns, core {core:.2} steps/ns",
        copy / 1e9
    );
}
