#!/usr/bin/env bash
# record-ftp.sh - record FTP through the kernel's nftables LSNAT router with its FTP helper
# (nf_conntrack_ftp / nf_nat_ftp: the application-level gateway of RFC 1631 §5 and RFC 3022
# §4.3) in network namespaces, and write:
#   captures/lsnat-ftp.pcap                what arrives at the router: out0 -Q in + in0 -Q in, merged
#   tests/kernel/lsnat-ftp.kernel-out.pcap what the router's kernel sent: out0 -Q out + in0 -Q out
#   captures/lsnat-ftp.toml                the lsnat replay configuration
#   captures/lsnat-ftp.conntrack.log       conntrack -E in the router namespace
#
# The router DNATs VIP tcp/21 round robin to the three members; modern kernels assign no helper
# by themselves, so a `ct helper` object of type "ftp" is set on port 21 traffic in a prerouting
# chain of priority mangle (-150: after conntrack, before the dstnat chain). Each member runs
# ftp-server.py, which names its own address in 227 replies; the helper rewrites them to the VIP
# (one byte longer: "203,0,113,N" -> "198,18,0,100") and adjusts later sequence numbers, and its
# expectations send the data connections to the member of their control connection (passive) or
# translate the member's port-20 connection to come from the VIP (active).
#
# Five control sessions, one after the other (round robin over m1 m2 m3 m1 m2):
#   A:40021 PASV: SYST, PWD, LIST and RETR (two 227 replies)           -> m1
#   B:40022 PASV: TYPE I, CWD, RETR                                    -> m2
#   A:40023 EPSV (229) + RETR                                          -> m3
#   B:40024 active PORT + RETR (member 203.0.113.1:20 -> B:40141)      -> m1
#   A:40025 active EPRT + RETR (member 203.0.113.2:20 -> A:40151)      -> m2
# Static neighbours (no ARP). Run as root; needs nftables, tcpdump, tshark, conntrack, python3.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab.sh
. "$HERE/lab.sh"
# shellcheck source=record-lib.sh
. "$HERE/record-lib.sh"
rec_setup ftp

NAME=lsnat-ftp
A=$CLIENT_A
B=$CLIENT_B

FTP_PIDS=()
rec_cleanup_extra() {
    for p in "${FTP_PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
    for p in "${FTP_PIDS[@]}"; do wait "$p" 2>/dev/null; done
}

MAP="{ 0 : ${MEMBERS[0]}, 1 : ${MEMBERS[1]}, 2 : ${MEMBERS[2]} }"
LAB_NFT_RULES=$(
    cat <<NFT
table ip lsnat {
    ct helper ftp-21 {
        type "ftp" protocol tcp;
        l3proto ip;
    }
    chain helpers {
        type filter hook prerouting priority mangle; policy accept;
        ip daddr $VIP tcp dport 21 ct helper set "ftp-21"
    }
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr $VIP tcp dport 21 dnat to numgen inc mod 3 map $MAP
    }
}
NFT
)
export LAB_NFT_RULES
LAB_MAP_ORDER="1 2 3" LAB_STATIC_NEIGH=1 lab_up
ip netns exec "$NS_RTR" nft list ruleset >"$WORK/ruleset.nft"
grep -q 'ct helper set "ftp-21"' "$WORK/ruleset.nft" || { rec_log "helper rule not loaded"; exit 1; }

# FTP servers: member N uses passive ports 500N0-500N9.
for i in 0 1 2; do
    ip netns exec "${NS_M[$i]}" timeout -s INT -k 3 120 \
        python3 "$HERE/ftp-server.py" "${MEMBERS[$i]}" 110 "500$((i + 1))0" >"$WORK/ftp-m$((i + 1)).log" 2>&1 &
    FTP_PIDS+=($!)
done
for i in 0 1 2; do
    tries=0
    until ip netns exec "${NS_M[$i]}" ss -Hlnt 2>/dev/null | grep -qE ":21\b"; do
        tries=$((tries + 1))
        [ $tries -gt 100 ] && { rec_log "ftp server in ${NS_M[$i]} did not start"; exit 1; }
        sleep 0.05
    done
done
ct_start "$NS_RTR" "$WORK/conntrack.log"

cap_router "" in out
sleep 0.3

PY=(python3 "$HERE/ftp-clients.py")
step() { # description command...  (in the clients namespace, at most 20 s)
    local d=$1
    shift
    rec_step "$d" ip netns exec "$NS_CLI" timeout -s INT -k 2 20 "$@"
}
: >"$WORK/clients.log"
step "A PASV: LIST and RETR (two 227 replies)" "${PY[@]}" pasv "$A:40021" "$VIP" 40111
step "B PASV: CWD, RETR"                        "${PY[@]}" pasv1 "$B:40022" "$VIP" 40121
step "A EPSV: RETR (229 reply)"                 "${PY[@]}" epsv "$A:40023" "$VIP" 40131
step "B active PORT: RETR"                      "${PY[@]}" port "$B:40024" "$VIP" 40141
step "A active EPRT: RETR"                      "${PY[@]}" eprt "$A:40025" "$VIP" 40151
sleep 0.5

cap_stop_all
ct_stop
for p in "${FTP_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
for p in "${FTP_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
FTP_PIDS=()
cat "$WORK/clients.log" >&2
if grep -qE 'Traceback|Error' "$WORK/clients.log"; then
    rec_log "an FTP client failed"
    exit 1
fi

merge "$OUT/$NAME.pcap" nsecpcap "$WORK/out0-in.pcap" "$WORK/in0-in.pcap"
merge "$REF/$NAME.kernel-out.pcap" nsecpcap "$WORK/out0-out.pcap" "$WORK/in0-out.pcap"
cp "$WORK/conntrack.log" "$OUT/$NAME.conntrack.log"
cat >"$OUT/$NAME.toml" <<TOML
# lsnat replay configuration (RFC 2391), written by scripts/record-ftp.sh
view = "router"

[router]
ftp_ports = [21]           # FTP ALG (RFC 1631 §5, RFC 3022 §4.3): the default, written out

[timeouts]
tcp = "24h"
udp = "60s"
icmp = "60s"
other = "60s"
tcp_close_grace = "2s"

[[virtual_server]]
name = "ftp"
vip = "$VIP"
protocol = "tcp"
ports = [21]
algorithm = "round-robin"
members = ["${MEMBERS[0]}", "${MEMBERS[1]}", "${MEMBERS[2]}"]
TOML

for f in "$OUT/$NAME.pcap" "$REF/$NAME.kernel-out.pcap"; do
    verify_capture "$f"
done

# The helper must have rewritten every 227 reply: members' addresses in, the VIP out.
in227=$(tshark_q -n -r "$OUT/$NAME.pcap" -Y 'ftp.response.code == 227 && ip.src == 203.0.113.0/24' | wc -l)
out227=$(tshark_q -n -r "$REF/$NAME.kernel-out.pcap" -Y 'ftp.response.code == 227 && ftp.passive.ip == 198.18.0.100' | wc -l)
leak=$(tshark_q -n -r "$REF/$NAME.kernel-out.pcap" -Y 'ip.dst == 198.51.100.0/24 && ip.src == 203.0.113.0/24' | wc -l)
rec_log "227 replies: $in227 from members, $out227 rewritten to the VIP; member addresses leaked to clients: $leak"
if [ "$in227" -eq 0 ] || [ "$in227" -ne "$out227" ] || [ "$leak" -ne 0 ]; then
    rec_log "FTP helper check FAILED"
    exit 1
fi
rec_log "conntrack NEW bindings (client -> member):"
grep '\[NEW\]' "$OUT/$NAME.conntrack.log" >&2 || true
