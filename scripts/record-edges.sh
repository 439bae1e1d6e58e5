#!/usr/bin/env bash
# record-edges.sh - record the packet-translation edge cases through the kernel's nftables LSNAT
# router (RFC 2391 section 3.1, DNAT round-robin per protocol, no masquerade) in network
# namespaces, and write:
#   captures/lsnat-edges.pcap                what arrives at the router: out0 -Q in + in0 -Q in, merged
#   tests/kernel/lsnat-edges.kernel-out.pcap what the router's kernel sent: out0 -Q out + in0 -Q out
#   captures/lsnat-edges.toml                the lsnat replay configuration
#   captures/lsnat-edges.conntrack.log       conntrack -E in the router namespace
# Traffic: ICMP echo, an echo with TTL 1 (the router answers time exceeded), HTTP from a fixed
# client port twice (reused client port), an RST from a member, UDP request/response on three
# service ports, a 3000-byte UDP datagram fragmented both ways, a 3000-byte datagram whose
# fragments arrive first fragment last (raw socket), an ICMP port unreachable from a member
# (service port 5002 that no member listens on) and one from a client (it closed its socket
# before the echo came). Run as root; needs nftables, tcpdump, tshark, conntrack, python3.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab.sh
. "$HERE/lab.sh"
# shellcheck source=record-lib.sh
. "$HERE/record-lib.sh"
rec_setup edges

NAME=lsnat-edges
UDP_PORTS="9999, 5000, 5001, 5002" # load-shared UDP services (one numgen counter)
SERVED=(9999 5000 5001)             # what the members listen on (5002: port unreachable)

EDGE_PIDS=()
rec_cleanup_extra() {
    for p in "${EDGE_PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
    for p in "${EDGE_PIDS[@]}"; do wait "$p" 2>/dev/null; done
}

LAB_MAP_ORDER="1 2 3" LAB_STATIC_NEIGH=1 lab_up
# Same LSNAT as lab.sh, with more UDP service ports.
MAP="{ 0 : ${MEMBERS[0]}, 1 : ${MEMBERS[1]}, 2 : ${MEMBERS[2]} }"
ip netns exec "$NS_RTR" nft -f - <<NFT
delete table ip lsnat
table ip lsnat {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr $VIP tcp dport { 23, 80 } dnat to numgen inc mod 3 map $MAP
        ip daddr $VIP udp dport { $UDP_PORTS } dnat to numgen inc mod 3 map $MAP
        ip daddr $VIP icmp type echo-request dnat to numgen inc mod 3 map $MAP
    }
}
NFT
ip netns exec "$NS_RTR" nft list ruleset >"$WORK/ruleset.nft"

for i in 0 1 2; do
    ip netns exec "${NS_M[$i]}" timeout -s INT -k 3 120 \
        python3 "$HERE/edges-servers.py" "${MEMBERS[$i]}" "${SERVED[@]}" >"$WORK/server-m$((i + 1)).log" 2>&1 &
    EDGE_PIDS+=($!)
done
for i in 0 1 2; do
    tries=0
    until [ "$(ip netns exec "${NS_M[$i]}" ss -Hlntu 2>/dev/null | grep -cE ':(80|9999|5000|5001)\b')" -ge 4 ]; do
        tries=$((tries + 1))
        [ $tries -gt 100 ] && { rec_log "servers in ${NS_M[$i]} did not start"; exit 1; }
        sleep 0.05
    done
done
ct_start "$NS_RTR" "$WORK/conntrack.log"

cap_router "" in out
sleep 0.3

A=$CLIENT_A
B=$CLIENT_B
CLI=(ip netns exec "$NS_CLI" timeout -s INT -k 2 15)
PY=(python3 "$HERE/edges-clients.py")
step() { # description command...  (in the clients namespace)
    local d=$1
    shift
    rec_step "$d" "${CLI[@]}" "$@"
}
# numgen counters (one per rule). icmp: m1, (TTL 1: m2 consumed, never forwarded), m3.
# tcp: m1 m2 m3. udp: m1 m2 m3 (ports), m1 (big), m2 (out of order), m3 (unreachable), m1 (gone).
step "icmp A ping x2"                               ping -n -c 2 -i 0.2 -W 2 -I "$A" "$VIP"
step "icmp A ping TTL 1 (router: time exceeded)"    ping -n -c 1 -t 1 -W 1 -I "$A" "$VIP" || true
step "icmp B ping x2"                               ping -n -c 2 -i 0.2 -W 2 -I "$B" "$VIP"
step "tcp A:40000 HTTP Connection: close"           "${PY[@]}" httpclose "$A:40000" "$VIP" /first
step "tcp A:40000 again (reused client port)"       "${PY[@]}" httpclose "$A:40000" "$VIP" /again
step "tcp B GET /reset (member aborts with RST)"    "${PY[@]}" httprst "$B" "$VIP"
step "udp A ports 9999 5000 5001"                   "${PY[@]}" udpports "$A" "$VIP" 9999 5000 5001
step "udp B 3000 bytes to 9999 (fragmented both ways)" "${PY[@]}" bigudp "$B" "$VIP" 9999 3000
step "udp A 3000 bytes to 5000, first fragment last" "${PY[@]}" ooofrag "$A" "$VIP" 5000 3000
step "udp B to 5002 (port unreachable from member)" "${PY[@]}" unreach "$B" "$VIP" 5002
step "udp A slow echo to a closed socket (port unreachable from client)" "${PY[@]}" gone "$A" "$VIP" 9999
sleep 0.5

cap_stop_all
ct_stop
for p in "${EDGE_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
for p in "${EDGE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
EDGE_PIDS=()
cat "$WORK/clients.log" >&2

merge "$OUT/$NAME.pcap" nsecpcap "$WORK/out0-in.pcap" "$WORK/in0-in.pcap"
merge "$REF/$NAME.kernel-out.pcap" nsecpcap "$WORK/out0-out.pcap" "$WORK/in0-out.pcap"
cp "$WORK/conntrack.log" "$OUT/$NAME.conntrack.log"
members=$(printf '"%s", ' "${MEMBERS[@]}")
members="[${members%, }]"
cat >"$OUT/$NAME.toml" <<TOML
# lsnat replay configuration (RFC 2391) for $NAME.pcap, written by scripts/record-edges.sh
view = "router"

[router]
ttl_decrement = true
icmp_time_exceeded = true     # answer a TTL-1 packet like the kernel router did (RFC 1812 §4.3.2.3)
# outside_address = "$RTR_OUT"     # unset: the answer to a client comes from the VIP it addressed, as the kernel's
inside_address = "$RTR_IN"  # source of the answer to a member
fragment_timeout = "30s"
fragment_hold_max = 64
fragment_hold_bytes = 262144

[timeouts]
tcp = "24h"
udp = "60s"
icmp = "60s"
other = "60s"
tcp_close_grace = "2s"

[[virtual_server]]
name = "web"
vip = "$VIP"
protocol = "tcp"
ports = [80, 23]
algorithm = "round-robin"
members = $members

[[virtual_server]]
name = "udp"
vip = "$VIP"
protocol = "udp"
ports = [$UDP_PORTS]
algorithm = "round-robin"
members = $members

[[virtual_server]]
name = "ping"
vip = "$VIP"
protocol = "icmp"
algorithm = "round-robin"
members = $members
TOML

for f in "$OUT/$NAME.pcap" "$REF/$NAME.kernel-out.pcap"; do
    verify_capture "$f"
done
rec_log "conntrack NEW bindings (client -> member):"
grep '\[NEW\]' "$OUT/$NAME.conntrack.log" >&2 || true
