#!/usr/bin/env bash
# record-lsnat.sh - record real client/server traffic through the kernel's nftables LSNAT router
# (RFC 2391 section 3.1) in network namespaces, and write into captures/:
#   lsnat-router.pcap             what arrives at the router: outside -Q in + inside -Q in, merged
#   lsnat-router.kernel-out.pcap  what the router's kernel sent: outside -Q out + inside -Q out, merged
#   lsnat-any-sll2.pcap           tcpdump -i any -y LINUX_SLL2 in the router namespace (nanoseconds)
#   lsnat-client-side.pcap        the clients' veth (client <-> VIP only), microseconds
#   *.toml                        lsnat replay configuration beside each capture
#   *.conntrack.log               conntrack -E -o timestamp,extended,id in the router namespace
# All four captures are taken at the same time, of the same run. Run as root.
# With DUMPCAP=1, also into REF (test data, not a bundled capture; tests/live.rs asks for it):
#   lsnat-router.dumpcap.pcapng   dumpcap on both router interfaces: pcapng, both directions,
#                                 no direction flags (each forwarded packet twice)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab.sh
. "$HERE/lab.sh"
# shellcheck source=record-lib.sh
. "$HERE/record-lib.sh"
rec_setup record


LAB_MAP_ORDER="1 2 3" LAB_STATIC_NEIGH=0 lab_up
lab_start_servers 120 "$WORK"
ct_start "$NS_RTR" "$WORK/conntrack.log"

cap_router "" in out
if [ "${DUMPCAP:-0}" = 1 ]; then
    dumpcap_start dumpcap "$NS_RTR" "$WORK/dumpcap.pcapng" out0 in0
fi
cap_start any "$NS_RTR" "$WORK/any.pcap" --time-stamp-precision=nano -i any -y LINUX_SLL2
cap_start c0 "$NS_CLI" "$WORK/c0.pcap" -i c0
sleep 0.3

A=$CLIENT_A
B=$CLIENT_B
CLI=(ip netns exec "$NS_CLI" timeout -s INT -k 2 15)
PY=(python3 "$HERE/lsnat-clients.py")
CURL=(curl -sS --max-time 5 --connect-timeout 3)
step() { # description command...  (in the clients namespace)
    local d=$1
    shift
    rec_step "$d" "${CLI[@]}" "$@"
}
# Expected round robin (one counter per rule): icmp m1 m2 m3, tcp m1 m2 m3 m1 m2 m3 m1, udp m1 m2 m3
step "icmp A ping x3"                 ping -n -c 3 -i 0.2 -W 2 -I "$A" "$VIP"
step "icmp B ping x3"                 ping -n -c 3 -i 0.2 -W 2 -I "$B" "$VIP"
step "tcp A curl GET /a (client closes)" "${CURL[@]}" --interface "$A" "http://$VIP/a"
step "tcp B curl keep-alive 3 GETs"   "${CURL[@]}" --interface "$B" "http://$VIP/k1" "http://$VIP/k2" "http://$VIP/k3"
step "tcp A HTTP Connection: close (server closes first)" "${PY[@]}" httpclose "$A" "$VIP" /close
step "tcp B python keep-alive 2 GETs" "${PY[@]}" http "$B" "$VIP" /py1 /py2
step "udp A 3 exchanges"              "${PY[@]}" udp "$A" "$VIP" 3
step "udp B 2 exchanges"              "${PY[@]}" udp "$B" "$VIP" 2
step "udp A 2 exchanges (new socket)" "${PY[@]}" udp "$A" "$VIP" 2
step "tcp B telnet :23 (server closes first on quit)" "${PY[@]}" telnet "$B" "$VIP" hello world
step "tcp A :23 aborted with RST"     "${PY[@]}" rst "$A" "$VIP"
step "icmp A ping x3"                 ping -n -c 3 -i 0.2 -W 2 -I "$A" "$VIP"
step "tcp B curl GET /last"           "${CURL[@]}" --interface "$B" "http://$VIP/last"
sleep 1

cap_stop_all
ct_stop
lab_stop_servers
cat "$WORK/clients.log" >&2

merge "$OUT/lsnat-router.pcap" nsecpcap "$WORK/out0-in.pcap" "$WORK/in0-in.pcap"
merge "$REF/lsnat-router.kernel-out.pcap" nsecpcap "$WORK/out0-out.pcap" "$WORK/in0-out.pcap"
cp "$WORK/any.pcap" "$OUT/lsnat-any-sll2.pcap"
if [ "${DUMPCAP:-0}" = 1 ]; then
    cp "$WORK/dumpcap.pcapng" "$REF/lsnat-router.dumpcap.pcapng"
fi
cp "$WORK/c0.pcap" "$OUT/lsnat-client-side.pcap"
for n in lsnat-router lsnat-any-sll2 lsnat-client-side; do
    cp "$WORK/conntrack.log" "$OUT/$n.conntrack.log"
done
write_config "$OUT/lsnat-router.toml" router "$VIP" "${MEMBERS[@]}"
write_config "$OUT/lsnat-any-sll2.toml" router "$VIP" "${MEMBERS[@]}"
write_config "$OUT/lsnat-client-side.toml" client-side "$VIP" "${MEMBERS[@]}"

for f in "$OUT/lsnat-router.pcap" "$REF/lsnat-router.kernel-out.pcap" "$OUT/lsnat-any-sll2.pcap" "$OUT/lsnat-client-side.pcap"; do
    verify_capture "$f"
done
rec_log "conntrack NEW bindings (client -> member):"
grep '\[NEW\]' "$OUT/lsnat-router.conntrack.log" >&2 || true
