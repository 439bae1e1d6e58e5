//! The fuzz targets' bodies, one module each. `fuzz_targets/*.rs` hand libFuzzer's inputs to
//! them; the `corpus` bin replays saved inputs (the seed corpora, `fuzz/regressions/`) through
//! the same code without libFuzzer, which is how CI keeps the targets and their oracles honest.

pub mod config_toml;
pub mod engine_packets;
pub mod replay_capture;

/// A target's body: one input, a panic when it finds something wrong.
pub type Body = fn(&[u8]);

/// Each target's name and body.
pub const ALL: &[(&str, Body)] = &[
    ("engine_packets", engine_packets::run),
    ("replay_capture", replay_capture::run),
    ("config_toml", config_toml::run),
];
