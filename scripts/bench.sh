#!/usr/bin/env bash
# Benchmark `lsnat replay` on synthetic LSNAT traffic and compare it with tcprewrite.
#
# Usage: scripts/bench.sh            (from anywhere; see docs/benchmark.md)
#
# Environment (all optional):
#   RUNS=3                 timed runs per measurement (best wall time counts)
#   BIG_PACKETS=10000000   packets in the large capture
#   SMALL_PACKETS=100000   packets in the small capture (memory baseline, callgrind)
#   STEADY_PACKETS=1000000 packets in the steady-state memory capture (0 = skip that check)
#   SEED=1                 generator seed
#   SKIP_LSNAT=1           run only what does not need lsnat (generation, tcprewrite,
#                          callgrind of tcprewrite)
#   KEEP_OUTPUTS=1         keep the multi-GB rewritten captures in bench-out/
#   PGO=1                  benchmark the profile-guided build (scripts/build-pgo.sh) and, on
#                          the large capture, the plain release build beside it; 0: only the
#                          plain release build
#   LSNAT=PATH             the lsnat binary to benchmark (default: the PGO build, or the
#                          release build with PGO=0; given, no PGO build is made)
#
# Everything is written under bench-out/ (git-ignored); the results table goes to
# bench-out/results.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-3}
BIG_PACKETS=${BIG_PACKETS:-10000000}
SMALL_PACKETS=${SMALL_PACKETS:-100000}
STEADY_PACKETS=${STEADY_PACKETS:-1000000}
SEED=${SEED:-1}
SKIP_LSNAT=${SKIP_LSNAT:-0}
KEEP_OUTPUTS=${KEEP_OUTPUTS:-0}
PGO=${PGO:-1}
[[ -z ${LSNAT:-} ]] || PGO=0

OUT=bench-out
CONFIG=scripts/synthetic.toml
TARGET_DIR=${CARGO_TARGET_DIR:-target}
PLAIN=$TARGET_DIR/release/lsnat
LSNAT=${LSNAT:-$PLAIN}
GEN=$TARGET_DIR/release/examples/gen_synthetic
MEMPROBE=$TARGET_DIR/release/examples/memprobe
TIME=/usr/bin/time

for n in "$RUNS" "$BIG_PACKETS" "$SMALL_PACKETS" "$STEADY_PACKETS" "$SEED"; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "bench.sh: not a number: '$n'" >&2; exit 2; }
done
((RUNS >= 1 && BIG_PACKETS >= 1 && SMALL_PACKETS >= 1)) || {
    echo "bench.sh: RUNS, BIG_PACKETS and SMALL_PACKETS must be at least 1" >&2
    exit 2
}

mkdir -p "$OUT"
LOG_DIR=$OUT/logs
mkdir -p "$LOG_DIR"

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench.sh: %s\n' "$*" >&2; exit 1; }

# ensure_tool COMMAND PACKAGE: installs PACKAGE with apt-get when COMMAND is missing.
ensure_tool() {
    local cmd=$1 pkg=$2
    if command -v "$cmd" >/dev/null 2>&1; then
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "$cmd not found; install the '$pkg' package"
    local sudo=()
    if ((EUID != 0)); then
        sudo=(sudo)
    fi
    log "installing $pkg (for $cmd)"
    "${sudo[@]}" apt-get install -y "$pkg" >&2 || die "could not install $pkg"
}

# label N: 10000000 -> 10m, 100000 -> 100k, 1234 -> 1234.
label() {
    local n=$1
    if ((n % 1000000 == 0)); then echo "$((n / 1000000))m"
    elif ((n % 1000 == 0)); then echo "$((n / 1000))k"
    else echo "$n"; fi
}

# capture_path N: the synthetic capture with N packets (the seed is in the name unless 1).
capture_path() {
    local suffix=""
    ((SEED == 1)) || suffix="-s$SEED"
    echo "$OUT/synthetic-$(label "$1")$suffix.pcap"
}

# secs "h:mm:ss" or "m:ss.ss" -> seconds.
secs() { awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }' <<<"$1"; }

# Results of the last `timed` call.
WALL="" RSS_KB="" USER_S="" SYS_S=""

# timed NAME CMD...: runs CMD under `time -v` (output and errors to $LOG_DIR/NAME.log)
# and sets WALL (s), RSS_KB (max resident set, KiB), USER_S and SYS_S (CPU time, s).
timed() {
    local name=$1
    shift
    local tv=$LOG_DIR/$name.time
    if ! "$TIME" -v -o "$tv" "$@" >"$LOG_DIR/$name.log" 2>&1; then
        tail -n 20 "$LOG_DIR/$name.log" >&2 || true
        die "failed ($name): $*  (log: $LOG_DIR/$name.log)"
    fi
    WALL=$(secs "$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$tv")")
    RSS_KB=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tv")
    USER_S=$(awk -F': ' '/User time/ { printf "%.2f", $2 }' "$tv")
    SYS_S=$(awk -F': ' '/System time/ { printf "%.2f", $2 }' "$tv")
    [[ -n $WALL && -n $RSS_KB ]] || die "could not parse $tv"
}

# Results of the last `bench` call.
BEST="" ALL="" PEAK_KB="" BEST_USER="" BEST_SYS=""

# bench NAME OUTPUT CMD...: RUNS timed runs of CMD, each after deleting OUTPUT (a file
# CMD writes; "-" for none) and flushing dirty pages so earlier writes do not throttle
# it. Sets BEST (min wall, s), ALL (every wall time), PEAK_KB (max RSS over the runs)
# and BEST_USER, BEST_SYS (CPU times of the best run).
bench() {
    local name=$1 output=$2
    shift 2
    BEST="" ALL="" PEAK_KB=0 BEST_USER="" BEST_SYS=""
    local i
    for ((i = 1; i <= RUNS; i++)); do
        [[ $output == - ]] || rm -f "$output"
        sync
        timed "$name-$i" "$@"
        printf '   run %d: %6.2f s wall, %6.2f s user, %6.2f s sys, %7d KiB max RSS\n' \
            "$i" "$WALL" "$USER_S" "$SYS_S" "$RSS_KB" >&2
        ALL+="${ALL:+ / }$WALL"
        if [[ -z $BEST ]] || awk -v a="$WALL" -v b="$BEST" 'BEGIN { exit !(a < b) }'; then
            BEST=$WALL BEST_USER=$USER_S BEST_SYS=$SYS_S
        fi
        if ((RSS_KB > PEAK_KB)); then
            PEAK_KB=$RSS_KB
        fi
    done
}

# calc EXPR: floating-point arithmetic via awk.
calc() { awk "BEGIN { printf \"%s\", $1 }" </dev/null; }
pps() { calc "sprintf(\"%.0f\", $1 / ($2 > 0 ? $2 : 0.005))"; }
mib() { calc "sprintf(\"%.1f\", $1 / 1024)"; }
# thousands 1234567 -> 1,234,567
thousands() { sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|[^0-9]\)/\1,\2\3/; ta' <<<"$1"; }

ROWS=()
# row WHAT PACKETS: appends a results-table row from the last `bench` call.
row() {
    ROWS+=("| $1 | $(thousands "$2") | $BEST | $ALL | $(thousands "$(pps "$2" "$BEST")") | $BEST_USER | $BEST_SYS | $(mib "$PEAK_KB") |")
}

# callgrind_total FILE: total instructions (Ir) recorded in a callgrind output file.
callgrind_total() {
    local total
    total=$(awk '/^(totals|summary):/ { print $2; exit }' "$1")
    if [[ -z $total ]]; then
        total=$(callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
    fi
    [[ $total =~ ^[0-9]+$ ]] || die "no instruction total in $1"
    echo "$total"
}

PROFILES=()
# profile NAME PACKETS CMD...: runs CMD under callgrind and records instructions/packet.
profile() {
    local name=$1 packets=$2
    shift 2
    local slug=${name//[^A-Za-z0-9]/-}
    local cg=$OUT/callgrind-$slug.out
    if [[ $name == "lsnat ($BUILD)" ]]; then
        cg=$OUT/callgrind.out # the main build's, kept for callgrind_annotate
    fi
    log "callgrind: $name on $(label "$packets") packets"
    rm -f "$cg"
    valgrind --tool=callgrind --callgrind-out-file="$cg" "$@" \
        >"$LOG_DIR/callgrind-$slug.log" 2>&1 ||
        die "callgrind run failed (log: $LOG_DIR/callgrind-$slug.log)"
    local total
    total=$(callgrind_total "$cg")
    local per
    per=$(calc "sprintf(\"%.0f\", $total / $packets)")
    printf '   %s instructions, %s per packet\n' "$(thousands "$total")" "$(thousands "$per")" >&2
    PROFILES+=("| $name | $(thousands "$packets") | $(thousands "$total") | $(thousands "$per") |")
}

# ---------------------------------------------------------------------------------------

ensure_tool "$TIME" time
ensure_tool tcprewrite tcpreplay
ensure_tool valgrind valgrind

log "building (release)"
cargo build --release --bins --example gen_synthetic --example memprobe >&2
if [[ $PGO == 1 && $SKIP_LSNAT != 1 ]]; then
    log "building (profile-guided: scripts/build-pgo.sh)"
    LSNAT=$(scripts/build-pgo.sh) || die "the profile-guided build failed"
fi
if [[ $SKIP_LSNAT != 1 && ! -x $LSNAT ]]; then
    die "$LSNAT was not built"
fi
# What the main rows measure.
BUILD="cargo build --release"
[[ $PGO != 1 ]] || BUILD="profile-guided build"

BIG=$(capture_path "$BIG_PACKETS")
SMALL=$(capture_path "$SMALL_PACKETS")
STEADY=$(capture_path "$STEADY_PACKETS")

# generate N FILE: writes the capture unless it exists and is newer than the generator.
generate() {
    local n=$1 file=$2
    if [[ -f $file && $file -nt examples/gen_synthetic.rs ]]; then
        log "using existing $file"
        return
    fi
    log "generating $file ($(thousands "$n") packets)"
    rm -f "$file"
    sync
    timed "gen-$(label "$n")" "$GEN" --packets "$n" --out "$file" --seed "$SEED"
    printf '   %.2f s wall, %.2f s user, %.2f s sys, %d KiB max RSS\n' \
        "$WALL" "$USER_S" "$SYS_S" "$RSS_KB" >&2
    if [[ $file == "$BIG" ]]; then
        BEST=$WALL ALL=$WALL PEAK_KB=$RSS_KB BEST_USER=$USER_S BEST_SYS=$SYS_S
        row "gen_synthetic (write the capture, 1 run)" "$n"
    fi
}
generate "$BIG_PACKETS" "$BIG"
generate "$SMALL_PACKETS" "$SMALL"
if ((STEADY_PACKETS > 0 && SKIP_LSNAT != 1)); then
    generate "$STEADY_PACKETS" "$STEADY"
fi
BIG_BYTES=$(stat -c %s "$BIG")
# Read the input once so that every timed run starts with it in the page cache.
cat "$BIG" >/dev/null

REPLAY=()
# replay_cmd INPUT OUTPUT REPORT [CONFIG [BINARY]]: sets REPLAY to the lsnat command line.
replay_cmd() {
    REPLAY=("${5:-$LSNAT}" replay "$1" --config "${4:-$CONFIG}" --output "$2" --json "$3" --quiet)
}
TCPREWRITE=()
# tcprewrite_cmd INPUT OUTPUT: sets TCPREWRITE to the tcprewrite command line: the same
# address rewrites as the LSNAT (VIP -> one member, members -> VIP) plus checksum fixing.
tcprewrite_cmd() {
    TCPREWRITE=(tcprewrite
        --dstipmap=203.0.113.100/32:192.0.2.1/32
        --srcipmap=192.0.2.0/29:203.0.113.100/32
        --fixcsum -i "$1" -o "$2")
}

# check_replay OUTPUT REPORT: fails when lsnat exited 0 but wrote nothing.
check_replay() {
    [[ -s $1 ]] || die "lsnat wrote no $1 (is 'lsnat replay' implemented?)"
    [[ -s $2 ]] || die "lsnat wrote no $2 (is 'lsnat replay' implemented?)"
}

# The memory system's speed at the start and at the end of the run: on a shared VM it moves
# from day to day, and both lsnat's engine and tcprewrite's page-cache copies wait on it.
MEM_BEFORE=$("$MEMPROBE")
printf '   memory: %s\n' "$MEM_BEFORE" >&2

# A plain copy first: the floor for any tool that reads and writes the capture, and a
# warm-up (on a VM the first run that touches fresh page-cache memory is much slower).
log "dd bs=1M (read + write floor): $BIG, $RUNS runs"
bench dd "$OUT/dd.pcap" dd if="$BIG" of="$OUT/dd.pcap" bs=1M
row "dd bs=1M (copy: the I/O floor)" "$BIG_PACKETS"
rm -f "$OUT/dd.pcap"

LSNAT_BEST="" LSNAT_RSS="" SMALL_RSS="" STEADY_NOTE="" DIRECT_BEST="" OUT_BYTES=0 PLAIN_BEST=""
if [[ $SKIP_LSNAT != 1 ]]; then
    log "lsnat replay ($BUILD): $BIG, $RUNS runs"
    replay_cmd "$BIG" "$OUT/out.pcap" "$OUT/report.json"
    bench lsnat-big "$OUT/out.pcap" "${REPLAY[@]}"
    check_replay "$OUT/out.pcap" "$OUT/report.json"
    row "lsnat replay ($BUILD)" "$BIG_PACKETS"
    LSNAT_BEST=$BEST LSNAT_RSS=$PEAK_KB

    if [[ $PGO == 1 ]]; then
        log "lsnat replay (cargo build --release): $BIG, $RUNS runs"
        replay_cmd "$BIG" "$OUT/out.pcap" "$OUT/report.json" "$CONFIG" "$PLAIN"
        bench lsnat-big-plain "$OUT/out.pcap" "${REPLAY[@]}"
        check_replay "$OUT/out.pcap" "$OUT/report.json"
        row "lsnat replay (cargo build --release)" "$BIG_PACKETS"
        PLAIN_BEST=$BEST
    fi

    # The disk's floor for lsnat's outputs: the same number of bytes written with O_DIRECT
    # (as lsnat writes them), from /dev/zero, in 2 MiB writes. No replay can finish sooner.
    OUT_BYTES=$(($(stat -c %s "$OUT/out.pcap") + $(stat -c %s "$OUT/report.json")))
    log "dd oflag=direct: $OUT_BYTES bytes (lsnat's outputs), $RUNS runs"
    bench dd-direct "$OUT/dd-direct.out" dd if=/dev/zero of="$OUT/dd-direct.out" bs=2M \
        count=$(((OUT_BYTES + 2097151) / 2097152)) oflag=direct
    row "dd oflag=direct bs=2M, as many bytes as lsnat's outputs (the disk's floor)" "$BIG_PACKETS"
    DIRECT_BEST=$BEST
    rm -f "$OUT/dd-direct.out"

    log "lsnat replay: $SMALL (memory baseline), $RUNS runs"
    replay_cmd "$SMALL" "$OUT/out-small.pcap" "$OUT/report-small.json"
    bench lsnat-small "$OUT/out-small.pcap" "${REPLAY[@]}"
    check_replay "$OUT/out-small.pcap" "$OUT/report-small.json"
    row "lsnat replay ($BUILD)" "$SMALL_PACKETS"
    SMALL_RSS=$PEAK_KB

    if [[ $PGO == 1 ]]; then
        # The profile only steers the compiler: both builds must write the same bytes.
        log "the two builds' outputs on $SMALL"
        replay_cmd "$SMALL" "$OUT/out-small-plain.pcap" "$OUT/report-small-plain.json" "$CONFIG" "$PLAIN"
        "${REPLAY[@]}" || die "the release build's replay of $SMALL failed"
        cmp "$OUT/out-small.pcap" "$OUT/out-small-plain.pcap" ||
            die "the profile-guided and release builds wrote different captures"
        cmp "$OUT/report-small.json" "$OUT/report-small-plain.json" ||
            die "the profile-guided and release builds wrote different reports"
        printf '   identical captures and reports\n' >&2
        rm -f "$OUT/out-small-plain.pcap" "$OUT/report-small-plain.json"
    fi

    if ((STEADY_PACKETS > 0)); then
        # With the 60 s UDP/ICMP timeouts no flow of a ~55 s capture ever expires, so
        # live state legitimately grows with the capture. With 1 s timeouts both captures
        # run well past every timeout, and the peak RSS must be the same.
        SHORT=$OUT/synthetic-short-timeouts.toml
        sed -E 's/^(udp|icmp|other)[[:space:]]*=.*/\1 = "1s"/' "$CONFIG" >"$SHORT"
        log "lsnat replay with 1 s timeouts: $STEADY vs $BIG (steady-state memory)"
        replay_cmd "$STEADY" "$OUT/out-steady.pcap" "$OUT/report-steady.json" "$SHORT"
        bench lsnat-steady "$OUT/out-steady.pcap" "${REPLAY[@]}"
        check_replay "$OUT/out-steady.pcap" "$OUT/report-steady.json"
        row "lsnat replay ($BUILD), 1 s udp/icmp/other timeouts" "$STEADY_PACKETS"
        STEADY_SMALL_RSS=$PEAK_KB
        replay_cmd "$BIG" "$OUT/out.pcap" "$OUT/report-steady-big.json" "$SHORT"
        bench lsnat-steady-big "$OUT/out.pcap" "${REPLAY[@]}"
        check_replay "$OUT/out.pcap" "$OUT/report-steady-big.json"
        row "lsnat replay ($BUILD), 1 s udp/icmp/other timeouts" "$BIG_PACKETS"
        STEADY_NOTE="With 1 s UDP/ICMP/other timeouts (state reaches its steady size in both): \
max RSS $(mib "$PEAK_KB") MiB for $(label "$BIG_PACKETS") packets vs \
$(mib "$STEADY_SMALL_RSS") MiB for $(label "$STEADY_PACKETS") \
(ratio $(calc "sprintf(\"%.2f\", $PEAK_KB / $STEADY_SMALL_RSS)"); \
$(calc "($PEAK_KB > 1.2 * $STEADY_SMALL_RSS + 8192) ? \"GROWS with capture length\" : \"flat\"")\
)."
    fi
fi

log "tcprewrite: $BIG, $RUNS runs"
tcprewrite_cmd "$BIG" "$OUT/tcprewrite.pcap"
bench tcprewrite "$OUT/tcprewrite.pcap" "${TCPREWRITE[@]}"
row "tcprewrite (VIP→member, member→VIP, fix checksums)" "$BIG_PACKETS"
TCPREWRITE_BEST=$BEST

if [[ $KEEP_OUTPUTS != 1 ]]; then
    rm -f "$OUT/out.pcap" "$OUT/out-steady.pcap" "$OUT/tcprewrite.pcap"
fi

if [[ $SKIP_LSNAT != 1 ]]; then
    replay_cmd "$SMALL" "$OUT/out100k.pcap" "$OUT/r100k.json"
    profile "lsnat ($BUILD)" "$SMALL_PACKETS" "${REPLAY[@]}"
    if [[ $PGO == 1 ]]; then
        replay_cmd "$SMALL" "$OUT/out100k.pcap" "$OUT/r100k.json" "$CONFIG" "$PLAIN"
        profile "lsnat (cargo build --release)" "$SMALL_PACKETS" "${REPLAY[@]}"
    fi
fi
tcprewrite_cmd "$SMALL" "$OUT/tcprewrite-small.pcap"
profile tcprewrite "$SMALL_PACKETS" "${TCPREWRITE[@]}"

MEM_AFTER=$("$MEMPROBE")

# ---------------------------------------------------------------------------------------

{
    echo "# lsnat benchmark"
    echo
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "- Machine: $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), \
$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
    echo "- Memory (examples/memprobe.rs, one thread): $MEM_BEFORE at the start, $MEM_AFTER at the end"
    echo "- $(rustc --version); $(tcprewrite --version 2>&1 | head -n 1)"
    echo "- Input: $BIG, $(thousands "$BIG_PACKETS") packets, $(calc "sprintf(\"%.2f\", $BIG_BYTES / 1e9)") GB (seed $SEED)"
    echo "- Best of $RUNS runs; page cache flushed (\`sync\`) before each run, input warm in cache."
    echo
    echo "| Run | Packets | Best wall (s) | All runs (s) | Packets/s | User (s) | Sys (s) | Max RSS (MiB) |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    if [[ -n $LSNAT_BEST ]]; then
        echo "- Speed: lsnat replay ($BUILD) is $(calc "sprintf(\"%.2f\", ($TCPREWRITE_BEST > 0 ? $TCPREWRITE_BEST : 0.005) / ($LSNAT_BEST > 0 ? $LSNAT_BEST : 0.005))")× \
tcprewrite's packet rate on $(label "$BIG_PACKETS") packets (>1 is faster)."
        [[ -z $PLAIN_BEST ]] || echo "- Speed of the plain release build: \
$(calc "sprintf(\"%.2f\", ($TCPREWRITE_BEST > 0 ? $TCPREWRITE_BEST : 0.005) / ($PLAIN_BEST > 0 ? $PLAIN_BEST : 0.005))")× tcprewrite; \
the profile-guided build writes the same bytes (checked on $(label "$SMALL_PACKETS") packets)."
        echo "- Disk floor: writing as many bytes as lsnat's outputs \
($(calc "sprintf(\"%.2f\", $OUT_BYTES / 1e9)") GB) with O_DIRECT takes $DIRECT_BEST s here, so no replay \
that writes them can beat tcprewrite by more than \
$(calc "sprintf(\"%.2f\", $TCPREWRITE_BEST / ($DIRECT_BEST > 0 ? $DIRECT_BEST : 0.005))")× on this disk."
        echo "- Memory: max RSS $(mib "$LSNAT_RSS") MiB for $(label "$BIG_PACKETS") packets vs $(mib "$SMALL_RSS") MiB \
for $(label "$SMALL_PACKETS") (ratio $(calc "sprintf(\"%.2f\", $LSNAT_RSS / $SMALL_RSS)"); UDP/ICMP flows expire only after 60 s \
of capture time and the synthetic capture advances about 5.5 µs per packet, so live state grows with \
the capture up to about 11M packets)."
        [[ -z $STEADY_NOTE ]] || echo "- $STEADY_NOTE"
    else
        echo "- lsnat runs skipped (SKIP_LSNAT=1)."
    fi
    echo
    echo "| Callgrind profile | Packets | Instructions (Ir) | Ir/packet |"
    echo "|---|--:|--:|--:|"
    printf '%s\n' "${PROFILES[@]}"
} >"$OUT/results.md"

echo >&2
cat "$OUT/results.md"
