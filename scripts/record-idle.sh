#!/usr/bin/env bash
# record-idle.sh - record sessions with long idle gaps through the kernel's nftables LSNAT router
# (RFC 2391 section 3.1), for the session-timeout audit (`lsnat audit`, RFC 2391 section 2.4: idle
# timeouts are heuristics). TCP and UDP sessions pause mid-session for longer than a short
# policy's timeout (10-25 s) and then continue; an ICMP echo session pauses 14 s between echoes.
# The Linux kernel keeps every one of them bound (conntrack: TCP established 5 days, UDP stream
# 120 s, ICMP 30 s), so the capture shows what the sessions did, not what a timeout cut.
# Writes into captures/:
#   lsnat-idle.pcap              what arrives at the router: outside -Q in + inside -Q in, merged
#   lsnat-idle.toml              lsnat replay configuration (RFC 2391 defaults)
#   lsnat-idle.conntrack.log     conntrack -E -o timestamp,extended,id in the router namespace
# and tests/kernel/lsnat-idle.kernel-out.pcap (what the router's kernel sent). Total traffic time
# is about 45 s, every client bounded by `timeout 60`. Run as root.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab.sh
. "$HERE/lab.sh"
# shellcheck source=record-lib.sh
. "$HERE/record-lib.sh"
rec_setup record-idle

CLIENT_PIDS=()
rec_cleanup_extra() {
    for p in "${CLIENT_PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
}

LAB_MAP_ORDER="1 2 3" LAB_STATIC_NEIGH=1 lab_up
lab_start_servers 120 "$WORK"
ct_start "$NS_RTR" "$WORK/conntrack.log"

cap_router "" in out
sleep 0.3

A=$CLIENT_A
B=$CLIENT_B
CLI=(ip netns exec "$NS_CLI" timeout -s INT -k 2 60)
PY=(python3 "$HERE/lsnat-clients.py")
T0=$(date +%s.%N)
# at SECONDS-AFTER-START DESCRIPTION COMMAND... : start a client in the background at that offset.
at() {
    local when=$1 d=$2
    shift 2
    local now
    now=$(date +%s.%N)
    sleep "$(python3 -c "print(max(0.0, $T0 + $when - $now))")"
    rec_log "t+$when: $d"
    "${CLI[@]}" "$@" >"$WORK/client-$when.log" 2>&1 &
    CLIENT_PIDS+=($!)
}
# Sessions and their pauses (seconds). Round robin has one counter per nftables rule (and one
# cursor per lsnat virtual server), so the UDP bindings go m1 m2 m3 m1 m2 in this order.
at 0.0 "icmp A ping x3, 14 s apart (one echo id)"   ping -n -c 3 -i 14 -W 2 -I "$A" "$VIP"
at 0.5 "tcp A telnet :23, pauses 5, 12, 25 s"        "${PY[@]}" idle-telnet "$A" "$VIP" 5,12,25
at 1.0 "tcp B HTTP keep-alive, pauses 3, 20 s"       "${PY[@]}" idle-http "$B" "$VIP" 3,20
at 1.5 "udp A :9999, pauses 15, 4 s"                 "${PY[@]}" idle-udp "$A" "$VIP" 15,4
at 2.0 "tcp A HTTP keep-alive, pause 8 s"            "${PY[@]}" idle-http "$A" "$VIP" 8
at 3.0 "udp B :9999, pause 2 s"                      "${PY[@]}" idle-udp "$B" "$VIP" 2
at 6.0 "udp B :9999, one exchange"                   "${PY[@]}" idle-udp "$B" "$VIP" ""
at 18.0 "udp A :9999, pause 20 s"                    "${PY[@]}" idle-udp "$A" "$VIP" 20
rc=0
for p in "${CLIENT_PIDS[@]}"; do wait "$p" || rc=1; done
CLIENT_PIDS=()
sleep 1

cap_stop_all
ct_stop
lab_stop_servers
cat "$WORK"/client-*.log >&2
[ $rc -eq 0 ] || { rec_log "a client failed"; exit 1; }

merge "$OUT/lsnat-idle.pcap" nsecpcap "$WORK/out0-in.pcap" "$WORK/in0-in.pcap"
merge "$REF/lsnat-idle.kernel-out.pcap" nsecpcap "$WORK/out0-out.pcap" "$WORK/in0-out.pcap"
cp "$WORK/conntrack.log" "$OUT/lsnat-idle.conntrack.log"
write_config "$OUT/lsnat-idle.toml" router "$VIP" "${MEMBERS[@]}"
for f in "$OUT/lsnat-idle.pcap" "$REF/lsnat-idle.kernel-out.pcap"; do
    verify_capture "$f"
done
rec_log "conntrack NEW bindings (client -> member):"
grep '\[NEW\]' "$OUT/lsnat-idle.conntrack.log" >&2 || true
