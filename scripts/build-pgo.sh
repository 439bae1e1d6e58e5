#!/usr/bin/env bash
# Builds lsnat with profile-guided optimization (rustc's -Cprofile-generate / -Cprofile-use):
#   1. an instrumented release build replays the training captures: every bundled capture
#      (captures/*.pcap, each with the config beside it) and a synthetic capture drawn with a
#      seed the benchmark does not use;
#   2. llvm-profdata merges what those runs counted;
#   3. the release build is compiled again with that profile.
# The profile only steers the compiler (inlining, code layout, branch order): the program's
# behaviour, and so every output, is the same as `cargo build --release` gives (bench.sh
# checks the two builds' outputs against each other).
#
# Usage: scripts/build-pgo.sh        prints the binary's path: target/pgo/release/lsnat
#
# Environment (all optional):
#   TRAIN_PACKETS=500000   packets in the synthetic training capture
#   TRAIN_SEED=2           its generator seed (the benchmark's captures use 1 and 42)
#
# Needs rustup's llvm-tools component (llvm-profdata for this rustc); installs it when missing.
# Everything else goes under target/ ($CARGO_TARGET_DIR): pgo-generate/ (the instrumented
# build), pgo-train/ (training inputs, outputs and profiles), pgo/ (the result).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

TRAIN_PACKETS=${TRAIN_PACKETS:-500000}
TRAIN_SEED=${TRAIN_SEED:-2}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

die() { printf 'build-pgo.sh: %s\n' "$*" >&2; exit 1; }
log() { printf '\n== %s\n' "$*" >&2; }

for n in "$TRAIN_PACKETS" "$TRAIN_SEED"; do
    [[ $n =~ ^[0-9]+$ ]] || die "not a number: '$n'"
done

host=$(rustc -vV | awk '/^host:/ { print $2 }')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [[ ! -x $profdata ]]; then
    command -v rustup >/dev/null 2>&1 || die "llvm-profdata not found and no rustup to install llvm-tools"
    log "installing rustup component llvm-tools (llvm-profdata)"
    rustup component add llvm-tools >&2 || die "could not install llvm-tools"
fi
[[ -x $profdata ]] || die "no llvm-profdata at $profdata"

work=$TARGET_DIR/pgo-train
rm -rf "$work"
mkdir -p "$work/profiles" "$work/out"
work=$(realpath "$work")

log "instrumented build"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$work/profiles" \
    cargo build --release --bins --target-dir "$TARGET_DIR/pgo-generate" >&2
instrumented=$TARGET_DIR/pgo-generate/release/lsnat

log "synthetic training capture: $TRAIN_PACKETS packets, seed $TRAIN_SEED"
cargo build --release --example gen_synthetic >&2
"$TARGET_DIR/release/examples/gen_synthetic" --packets "$TRAIN_PACKETS" \
    --out "$work/synthetic-train.pcap" --seed "$TRAIN_SEED" >&2

# train CAPTURE CONFIG: one replay by the instrumented build (its outputs are thrown away).
train() {
    local name
    name=$(basename "$1")
    "$instrumented" replay "$1" --config "$2" --output "$work/out/$name" \
        --json "$work/out/$name.json" --quiet >/dev/null ||
        die "training replay of $1 failed"
    rm -f "$work/out/$name" "$work/out/$name.json"
}

log "training runs"
n=0
for capture in captures/*.pcap captures/*.pcapng; do
    [[ -f $capture ]] || continue
    config=${capture%.*}.toml
    [[ -f $config ]] || continue
    train "$capture" "$config"
    n=$((n + 1))
done
train "$work/synthetic-train.pcap" scripts/synthetic.toml
printf '   %d bundled captures and the synthetic one\n' "$n" >&2

log "merging the profiles"
"$profdata" merge -o "$work/merged.profdata" "$work/profiles"
# Named by its content: cargo does not look into the profile, but it rebuilds when
# RUSTFLAGS change, so a new profile is always compiled in and an unchanged one is not.
profile=$work/lsnat-$(sha256sum "$work/merged.profdata" | cut -c1-16).profdata
mv "$work/merged.profdata" "$profile"

log "optimized build"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$profile" \
    cargo build --release --bins --target-dir "$TARGET_DIR/pgo" >&2

echo "$TARGET_DIR/pgo/release/lsnat"
