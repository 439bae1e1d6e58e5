//! Fuzz target `engine_packets`: the sans-IO engine fed a sequence of IPv4 packets.
//!
//! The body is `lsnat_fuzz::targets::engine_packets::run` (see there for the input format and the
//! oracles), so that the `corpus` bin can replay saved inputs without libFuzzer.
//!
//! Run (from the repository root; stable toolchain, hence RUSTC_BOOTSTRAP):
//!
//! ```sh
//! cargo run --release --manifest-path fuzz/Cargo.toml --bin seeds   # writes fuzz/corpus/*
//! RUSTC_BOOTSTRAP=1 cargo fuzz run engine_packets fuzz/corpus/engine_packets -- \
//!     -jobs=1 -workers=1 -max_total_time=600 -rss_limit_mb=4096 -timeout=10 -max_len=65536
//! RUSTC_BOOTSTRAP=1 cargo fuzz run engine_packets fuzz/artifacts/engine_packets/crash-XXX  # replay one
//! ```
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lsnat_fuzz::targets::engine_packets::run(data));
