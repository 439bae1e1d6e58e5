#!/usr/bin/env bash
# record-fig1.sh - record the worked example of RFC 2391 figure 1 through the kernel's nftables
# LSNAT router, then rewrite the documentation addresses to the figure's addresses:
#   client A 198.51.100.7:2745  -> VIP:80 (HTTP)    becomes 198.76.29.7:2745 -> 172.87.0.100:80
#   client B 198.51.100.23:3200 -> VIP:23 (telnet)  becomes 198.23.47.2:3200 -> 172.87.0.100:23
#   members 203.0.113.1/2/3                          become 172.85.0.1/2/3
# In the figure the LSNAT router sends A to S1 and, S1 being busy, B to S3. The kernel's round
# robin is made to do the same by ordering its numgen map S1, S3, S2 (the config lists the
# members in that round-robin order). Static neighbour entries keep ARP out of this capture.
# Writes into captures/:
#   rfc2391-fig1.pcap               router view (outside -Q in + inside -Q in), figure addresses
#   rfc2391-fig1.kernel-out.pcap    the kernel's output (-Q out on both sides), figure addresses
#   rfc2391-fig1.raw.pcap           the router view as recorded (documentation addresses)
#   rfc2391-fig1.toml               replay configuration (figure addresses)
#   rfc2391-fig1.conntrack.log      conntrack events, addresses rewritten to the figure's
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab.sh
. "$HERE/lab.sh"
# shellcheck source=record-lib.sh
. "$HERE/record-lib.sh"
rec_setup fig1


LAB_MAP_ORDER="1 3 2" LAB_STATIC_NEIGH=1 lab_up
lab_start_servers 60 "$WORK"
ct_start "$NS_RTR" "$WORK/conntrack.log"

cap_router "" in out
sleep 0.3

rec_log "traffic: figure 1 (A:2745 HTTP, then B:3200 telnet while A is open)"
ip netns exec "$NS_CLI" timeout -s INT -k 2 20 \
    python3 "$HERE/lsnat-clients.py" fig1 "$CLIENT_A" "$VIP" "$CLIENT_B" >"$WORK/clients.log" 2>&1
sleep 1

cap_stop_all
ct_stop
lab_stop_servers
cat "$WORK/clients.log" >&2

merge "$OUT/rfc2391-fig1.raw.pcap" nsecpcap "$WORK/out0-in.pcap" "$WORK/in0-in.pcap"
merge "$WORK/kernel-out.pcap" nsecpcap "$WORK/out0-out.pcap" "$WORK/in0-out.pcap"
python3 "$HERE/rewrite-addresses.py" --table "$HERE/fig1-addresses.txt" \
    "$OUT/rfc2391-fig1.raw.pcap" "$OUT/rfc2391-fig1.pcap" \
    --text "$WORK/conntrack.log" "$OUT/rfc2391-fig1.conntrack.log"
python3 "$HERE/rewrite-addresses.py" --table "$HERE/fig1-addresses.txt" \
    "$WORK/kernel-out.pcap" "$REF/rfc2391-fig1.kernel-out.pcap"
# Round-robin order of the kernel's numgen map: S1, S3, S2.
write_config "$OUT/rfc2391-fig1.toml" router 172.87.0.100 172.85.0.1 172.85.0.3 172.85.0.2
# The same recording before the rewrite, with the lab's documentation addresses.
write_config "$OUT/rfc2391-fig1.raw.toml" router "$VIP" "${MEMBERS[0]}" "${MEMBERS[2]}" "${MEMBERS[1]}"

for f in "$OUT/rfc2391-fig1.raw.pcap" "$OUT/rfc2391-fig1.pcap" "$REF/rfc2391-fig1.kernel-out.pcap"; do
    verify_capture "$f"
done
# The figure's two sessions must be there with the figure's addresses and members.
check_flow() { # filter description
    local n
    n=$(tshark_q -n -r "$OUT/rfc2391-fig1.pcap" -Y "$1" | wc -l)
    [ "$n" -gt 0 ] || { rec_log "fig1: missing $2"; return 1; }
    rec_log "fig1: $2: $n packets"
}
check_flow 'ip.src==198.76.29.7 && tcp.srcport==2745 && ip.dst==172.87.0.100 && tcp.dstport==80' "A -> S:80"
check_flow 'ip.src==172.85.0.1 && tcp.srcport==80 && ip.dst==198.76.29.7 && tcp.dstport==2745' "S1 -> A"
check_flow 'ip.src==198.23.47.2 && tcp.srcport==3200 && ip.dst==172.87.0.100 && tcp.dstport==23' "B -> S:23"
check_flow 'ip.src==172.85.0.3 && tcp.srcport==23 && ip.dst==198.23.47.2 && tcp.dstport==3200' "S3 -> B"
rec_log "conntrack NEW bindings (figure addresses):"
grep '\[NEW\]' "$OUT/rfc2391-fig1.conntrack.log" >&2 || true
