#!/usr/bin/env bash
# record-lib.sh - capture, conntrack-logging, merge and verification helpers shared by the
# record-*.sh scripts. Source after lab.sh. Needs $WORK (a scratch directory).

# rec_setup NAME: OUT (the captures, default captures/) and REF (the kernel's own output, test
# reference data, default tests/kernel/) as absolute directories; WORK, a scratch directory;
# and the EXIT trap (rec_cleanup). Call right after sourcing lab.sh and this file.
rec_setup() {
    OUT=${OUT:-$LAB_SCRIPTS/../captures}
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
    REF=${REF:-$LAB_SCRIPTS/../tests/kernel}
    mkdir -p "$REF"
    REF=$(cd "$REF" && pwd)
    WORK=$(mktemp -d "/tmp/lsnat-$1.XXXXXX")
    trap rec_cleanup EXIT
    trap 'exit 130' INT TERM
}

# Whatever happens: a script's own `rec_cleanup_extra` (if it defines one), then captures,
# conntrack, member servers and the lab are stopped; WORK is removed unless KEEP_WORK=1 or the
# recording failed.
rec_cleanup() {
    local rc=$?
    set +e
    if declare -F rec_cleanup_extra >/dev/null; then rec_cleanup_extra; fi
    cap_stop_all >/dev/null 2>&1
    ct_stop >/dev/null 2>&1
    lab_stop_servers
    lab_down
    if [ "${KEEP_WORK:-0}" = 1 ] || [ $rc -ne 0 ]; then
        rec_log "scratch files kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}

CAP_PIDS=()
CAP_LABELS=()
DUMPCAP_PIDS=()
CT_PID=

rec_log() { printf '[record] %s\n' "$*" >&2; }

# cap_start LABEL NS FILE TCPDUMP-ARGS...   (bounded: killed after 300 s whatever happens)
cap_start() {
    local label=$1 ns=$2 file=$3
    shift 3
    timeout -s INT -k 5 300 ip netns exec "$ns" \
        tcpdump -n -Z root -U --immediate-mode -B 4096 "$@" -w "$file" \
        >"$WORK/$label.tcpdump.log" 2>&1 &
    CAP_PIDS+=($!)
    CAP_LABELS+=("$label")
    wait_started "tcpdump $label" "$WORK/$label.tcpdump.log" "listening on"
}

# wait_started WHAT LOG PATTERN: wait (5 s at most) until a line of LOG matches PATTERN, the
# capture tool's word that it is capturing; else print LOG and fail.
wait_started() {
    local tries=0
    until grep -q "$3" "$2" 2>/dev/null; do
        tries=$((tries + 1))
        if [ $tries -gt 100 ]; then
            cat "$2" >&2
            rec_log "$1 did not start"
            return 1
        fi
        sleep 0.05
    done
}

# dumpcap_start LABEL NS FILE IFACE...: dumpcap on the interfaces into one pcapng (an interface
# description per interface; on Linux its packet blocks carry no direction flags, so a
# forwarded packet is in it twice with nothing to tell which copy arrived). Bounded like
# cap_start; stopped by cap_stop_all.
dumpcap_start() {
    local label=$1 ns=$2 file=$3 i args=()
    shift 3
    for i in "$@"; do args+=(-i "$i"); done
    timeout -s INT -k 5 300 ip netns exec "$ns" dumpcap -q "${args[@]}" -w "$file" \
        >"$WORK/$label.dumpcap.log" 2>&1 &
    DUMPCAP_PIDS+=($!)
    wait_started "dumpcap $label" "$WORK/$label.dumpcap.log" "^Capturing on"
}

# cap_router PREFIX DIRECTION...: tcpdump -Q DIRECTION (in, out) on both router interfaces,
# nanosecond timestamps, into $WORK/PREFIXout0-DIRECTION.pcap and $WORK/PREFIXin0-DIRECTION.pcap.
cap_router() {
    local p=$1 d i
    shift
    for d in "$@"; do
        for i in out0 in0; do
            cap_start "$p$i-$d" "$NS_RTR" "$WORK/$p$i-$d.pcap" --time-stamp-precision=nano -i "$i" -Q "$d"
        done
    done
}

# Stop every capture with SIGINT, wait for it, and report tcpdump's counters (fail on drops).
cap_stop_all() {
    local p i rc=0
    for p in "${DUMPCAP_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${DUMPCAP_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    DUMPCAP_PIDS=()
    [ ${#CAP_PIDS[@]} -eq 0 ] && return 0
    for p in "${CAP_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${CAP_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    for i in "${!CAP_LABELS[@]}"; do
        local l=${CAP_LABELS[$i]}
        local counts
        counts=$(grep -E "packets (captured|received by filter|dropped by kernel)" "$WORK/$l.tcpdump.log" | tr '\n' ' ')
        rec_log "tcpdump $l: $counts"
        if ! grep -q "^0 packets dropped by kernel" "$WORK/$l.tcpdump.log"; then
            rec_log "tcpdump $l dropped packets or did not report"
            rc=1
        fi
    done
    CAP_PIDS=()
    CAP_LABELS=()
    return $rc
}

# ct_start NS FILE: log conntrack events (new/update/destroy) with timestamps and ids.
ct_start() {
    ip netns exec "$1" sysctl -qw net.netfilter.nf_conntrack_timestamp=1 2>/dev/null || true
    timeout -s INT -k 5 300 ip netns exec "$1" stdbuf -oL conntrack -E -o timestamp,extended,id >"$2" 2>"$WORK/conntrack.err" &
    CT_PID=$!
    sleep 0.5
}

ct_stop() {
    [ -n "$CT_PID" ] || return 0
    kill -INT "$CT_PID" 2>/dev/null || true
    wait "$CT_PID" 2>/dev/null || true
    CT_PID=
    rec_log "conntrack: $(tail -n 1 "$WORK/conntrack.err" 2>/dev/null)"
}

# merge OUT FORMAT IN... : merge captures chronologically (mergecap, FORMAT pcap|nsecpcap).
merge() {
    local out=$1 fmt=$2
    shift 2
    mergecap -F "$fmt" -w "$out" "$@"
}

# rec_step DESCRIPTION COMMAND...: one traffic step of a recording: COMMAND (already wrapped
# in its namespace and time limit by the caller) logged to $WORK/clients.log under
# DESCRIPTION, then a pause so its packets are captured before the next step's.
rec_step() {
    local d=$1
    shift
    rec_log "traffic: $d"
    echo "### $d" >>"$WORK/clients.log"
    "$@" >>"$WORK/clients.log" 2>&1
    sleep 0.3
}

tshark_q() { tshark "$@" 2> >(grep -v 'Running as user "root"' >&2); }

# verify_capture FILE: checksums valid, no IPv6, no truncation; prints a one-line summary.
verify_capture() {
    local f=$1 bad v6 n fins rsts arp
    n=$(capinfos -M -c -T "$f" | awk -F'\t' 'NR==2{print $2}')
    bad=$(tshark_q -n -r "$f" -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE -o ip.check_checksum:TRUE \
        -Y 'tcp.checksum.status==0 || udp.checksum.status==0 || ip.checksum.status==0 || icmp.checksum.status==0 || _ws.expert.severity==error' | wc -l)
    v6=$(tshark_q -n -r "$f" -Y 'ipv6' | wc -l)
    arp=$(tshark_q -n -r "$f" -Y 'arp' | wc -l)
    fins=$(tshark_q -n -r "$f" -Y 'tcp.flags.fin==1' | wc -l)
    rsts=$(tshark_q -n -r "$f" -Y 'tcp.flags.reset==1' | wc -l)
    rec_log "verify $(basename "$f"): $n packets, $(stat -c %s "$f") bytes, bad checksums/errors $bad, ipv6 $v6, arp $arp, FIN $fins, RST $rsts"
    if [ "$bad" -ne 0 ] || [ "$v6" -ne 0 ] || [ "$fins" -eq 0 ]; then
        rec_log "verify $(basename "$f") FAILED"
        tshark_q -n -r "$f" -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE -o ip.check_checksum:TRUE \
            -Y 'tcp.checksum.status==0 || udp.checksum.status==0 || ip.checksum.status==0 || ipv6 || _ws.expert.severity==error' | head >&2
        return 1
    fi
}

# write_config FILE VIEW VIP MEMBER...   (the lsnat replay configuration beside a capture)
write_config() {
    local file=$1 view=$2 vip=$3
    shift 3
    local members
    members=$(printf '"%s", ' "$@")
    members="[${members%, }]"
    cat >"$file" <<TOML
# lsnat replay configuration (RFC 2391)
view = "$view"            # "router" (capture holds what arrives at the router from both sides) | "client-side"

[router]
ttl_decrement = true

[timeouts]
tcp = "24h"                # idle timeouts (RFC 2391 §2.4)
udp = "60s"
icmp = "60s"
other = "60s"
tcp_close_grace = "2s"     # kept this long after both FINs are acked or an RST

[[virtual_server]]
name = "web"
vip = "$vip"
protocol = "tcp"
ports = [80, 23]
algorithm = "round-robin"
members = $members

[[virtual_server]]
name = "echo"
vip = "$vip"
protocol = "udp"
ports = [9999]
algorithm = "round-robin"
members = $members

[[virtual_server]]
name = "ping"
vip = "$vip"
protocol = "icmp"
algorithm = "round-robin"
members = $members
TOML
}
