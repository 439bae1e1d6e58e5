#!/usr/bin/env bash
# record-all.sh - record every capture in captures/ (run as root; needs no network beyond the
# namespaces it creates) and rewrite captures/README.md with their packet counts.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${OUT:-$HERE/../captures}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export OUT
# shellcheck source=lab.sh
. "$HERE/lab.sh"
trap lab_down EXIT
lab_require
lab_down # leftovers of an earlier failed run

# A recording fails if any tcpdump reports kernel drops (seen once with -i any: 2 of 278) or a
# check fails; try it again, at most three times.
attempt() {
    local script=$1 n
    for n in 1 2 3; do
        if bash "$HERE/$script"; then return 0; fi
        echo "[record] $script failed (attempt $n)" >&2
    done
    return 1
}
attempt record-lsnat.sh
attempt record-fig1.sh
attempt record-pool.sh
attempt record-edges.sh
attempt record-idle.sh
attempt record-modes.sh
attempt record-ftp.sh
MODE=ls-napt attempt record-ftp.sh # FTP through an LS-NAPT router (RFC 2391 §3.3)
python3 "$HERE/write-captures-readme.py" "$OUT"
echo "[record] done: $(ls "$OUT"/*.pcap | wc -l) captures in $OUT" >&2
