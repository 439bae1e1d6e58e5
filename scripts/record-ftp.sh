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
#
# MODE=ls-napt scripts/record-ftp.sh records the same through an LS-NAPT router (RFC 2391 §3.3):
# the same ruleset plus `oifname "in0" masquerade` in a postrouting nat chain, so members see
# every session (control and data) from the router's inside address 203.0.113.254, and write
# captures/lsnat-ftp-napt.{pcap,toml,conntrack.log} and tests/kernel/lsnat-ftp-napt.kernel-out.pcap.
# The helper rewrites the clients' PORT/EPRT to 203.0.113.254 (client A's is one byte longer:
# "198,51,100,7" -> "203,0,113,254") and translates the member's port-20 connection to
# 203.0.113.254:P into VIP:20 -> client:P. Control sessions (round robin m1 m2 m3 m1 m2 m3 m1 m2):
#   A:40031 PASV: CWD, RETR                                            -> m1
#   B:40032 EPSV (229) + RETR                                          -> m2
#   A:40033 active PORT + RETR (A:40231)                               -> m3
#   A:40034 active EPRT + RETR (A:40241)                               -> m1
#   A:40035 active PORT A,40251, RETR held ...                         -> m2
#   B:40036, B:40037 log in and quit (round-robin fillers)             -> m3, m1
#   B:40038 active PORT B,40251 while A:40035's expectation is pending -> m2: both would be
#           203.0.113.254:40251 at m2, so the kernel announces another port for B (random on
#           6.18: nf_nat_exp_find_port); then
#           A:40035 and B:40038 RETR in turn (CLASH=0 leaves this step out)
#
# Static neighbours (no ARP). Run as root; needs nftables, tcpdump, tshark, conntrack, python3.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab.sh
. "$HERE/lab.sh"
# shellcheck source=record-lib.sh
. "$HERE/record-lib.sh"

MODE=${MODE:-lsnat}
case $MODE in
    lsnat) NAME=lsnat-ftp ;;
    ls-napt) NAME=lsnat-ftp-napt ;;
    *)
        echo "MODE must be lsnat (the default) or ls-napt" >&2
        exit 2
        ;;
esac
CLASH=${CLASH:-1}
rec_setup "${NAME#lsnat-}"

A=$CLIENT_A
B=$CLIENT_B

FTP_PIDS=()
rec_cleanup_extra() {
    for p in "${FTP_PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
    for p in "${FTP_PIDS[@]}"; do wait "$p" 2>/dev/null; done
}

MAP="{ 0 : ${MEMBERS[0]}, 1 : ${MEMBERS[1]}, 2 : ${MEMBERS[2]} }"
POSTROUTING= # LS-NAPT (RFC 2391 §3.3): masquerade toward the members
[ "$MODE" = ls-napt ] && POSTROUTING=$(
    cat <<'NFT'

    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "in0" masquerade
    }
NFT
)
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
    }$POSTROUTING
}
NFT
)
export LAB_NFT_RULES
LAB_MAP_ORDER="1 2 3" LAB_STATIC_NEIGH=1 lab_up
ip netns exec "$NS_RTR" nft list ruleset >"$WORK/ruleset.nft"
grep -q 'ct helper set "ftp-21"' "$WORK/ruleset.nft" || { rec_log "helper rule not loaded"; exit 1; }
if [ "$MODE" = ls-napt ]; then
    grep -q 'oifname "in0" masquerade' "$WORK/ruleset.nft" || { rec_log "masquerade rule not loaded"; exit 1; }
fi

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
if [ "$MODE" = lsnat ]; then
step "A PASV: LIST and RETR (two 227 replies)" "${PY[@]}" pasv "$A:40021" "$VIP" 40111
step "B PASV: CWD, RETR"                        "${PY[@]}" pasv1 "$B:40022" "$VIP" 40121
step "A EPSV: RETR (229 reply)"                 "${PY[@]}" epsv "$A:40023" "$VIP" 40131
step "B active PORT: RETR"                      "${PY[@]}" port "$B:40024" "$VIP" 40141
step "A active EPRT: RETR"                      "${PY[@]}" eprt "$A:40025" "$VIP" 40151
else
step "A PASV: CWD, RETR"                        "${PY[@]}" pasv1 "$A:40031" "$VIP" 40211
step "B EPSV: RETR (229 reply)"                 "${PY[@]}" epsv "$B:40032" "$VIP" 40221
step "A active PORT: RETR"                      "${PY[@]}" port "$A:40033" "$VIP" 40231
step "A active EPRT: RETR"                      "${PY[@]}" eprt "$A:40034" "$VIP" 40241
if [ "$CLASH" = 1 ]; then
step "A and B active PORT 40251 to the same member (clash)" \
    "${PY[@]}" clash "$A:40035" "$VIP" 40251 "$B:40038" "$B:40036" "$B:40037"
fi
fi
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
HOW=scripts/record-ftp.sh
ROUTER_MODE=
if [ "$MODE" = ls-napt ]; then
    HOW="MODE=ls-napt $HOW"
    ROUTER_MODE="mode = \"ls-napt\"                 # RFC 2391 §3.3
inside_address = \"$RTR_IN\" # the masquerade address on the inside interface
"
fi
cat >"$OUT/$NAME.toml" <<TOML
# lsnat replay configuration (RFC 2391), written by $HOW
view = "router"

[router]
${ROUTER_MODE}ftp_ports = [21]           # FTP ALG (RFC 1631 §5, RFC 3022 §4.3): the default, written out

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

[ "$MODE" = ls-napt ] || exit 0
# LS-NAPT: every PORT/EPRT the clients sent must reach the members naming the router's inside
# address; nothing but that address may reach the members, no member address the clients; and
# every member's port-20 connection must leave toward its client from VIP:20.
active='ftp.request.command == "PORT" || ftp.request.command == "EPRT"'
fields=(-T fields -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e ftp.request.command -e ftp.request.arg)
rec_log "PORT/EPRT as the clients sent them (arriving at the router):"
tshark_q -n -r "$OUT/$NAME.pcap" -Y "($active) && ip.src == 198.51.100.0/24" "${fields[@]}" | tee "$WORK/active-in.txt" >&2
rec_log "PORT/EPRT as the kernel sent them to the members:"
tshark_q -n -r "$REF/$NAME.kernel-out.pcap" -Y "($active) && ip.dst == 203.0.113.0/24" "${fields[@]}" | tee "$WORK/active-out.txt" >&2
nin=$(wc -l <"$WORK/active-in.txt")
nout=$(wc -l <"$WORK/active-out.txt")
nok=$(tshark_q -n -r "$REF/$NAME.kernel-out.pcap" \
    -Y "($active) && ip.src == $RTR_IN && ip.dst == 203.0.113.0/24 && (ftp.active.cip == $RTR_IN || ftp.eprt.ip == $RTR_IN)" | wc -l)
inleak=$(tshark_q -n -r "$REF/$NAME.kernel-out.pcap" -Y "ip.dst == 203.0.113.0/24 && ip.src != $RTR_IN" | wc -l)
rec_log "member data SYNs (from port 20) as they arrived and as the kernel sent them:"
syn='tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.srcport == 20'
sfields=(-T fields -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e tcp.seq_raw)
tshark_q -n -r "$OUT/$NAME.pcap" -Y "$syn && ip.src == 203.0.113.0/24 && ip.dst == $RTR_IN" "${sfields[@]}" | tee "$WORK/syn-in.txt" >&2
tshark_q -n -r "$REF/$NAME.kernel-out.pcap" -Y "$syn && ip.src == $VIP && ip.dst == 198.51.100.0/24" "${sfields[@]}" | tee "$WORK/syn-out.txt" >&2
synin=$(wc -l <"$WORK/syn-in.txt")
synout=$(wc -l <"$WORK/syn-out.txt")
rec_log "PORT/EPRT: $nin from clients, $nout to members, $nok naming $RTR_IN; other sources toward members: $inleak; port-20 SYNs: $synin in, $synout out from $VIP:20"
if [ "$nin" -eq 0 ] || [ "$nin" -ne "$nout" ] || [ "$nok" -ne "$nout" ] || [ "$inleak" -ne 0 ] ||
    [ "$synin" -ne "$nin" ] || [ "$synout" -ne "$nin" ]; then
    rec_log "LS-NAPT FTP helper check FAILED"
    exit 1
fi
