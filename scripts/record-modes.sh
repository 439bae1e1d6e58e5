#!/usr/bin/env bash
# record-modes.sh - record, through the Linux kernel's nftables NAT in network namespaces, one
# capture per RFC 2391 mode and mapping (same lab as record-lsnat.sh, other rulesets):
#
#   modes-ls-napt             §3.3 LS-NAPT: round-robin DNAT plus masquerade on the inside
#                             interface; HTTP, UDP, ICMP echo, and two clients using the same
#                             source port toward the same member (a port clash)
#   modes-lsnat-napt          §3.2 LSNAT with NAPT: members start sessions to an outside host,
#                             masqueraded to the router's outside address; client->VIP keeps LSNAT
#   modes-napt-icmp           §3.2 with RFC 3022 §4.3: ICMP port unreachable from the outside host
#                             for datagrams members sent through NAPT, translated back to them
#   modes-static-member       §3/§4.1 member 2 statically mapped to a backup (member 3)
#   modes-static-port         §3 member 2's telnet port only mapped to the backup
#   modes-service-restriction §3 router-owned VIP: other ports of the VIP are dropped
#   modes-gre                 §2.2 another protocol (GRE) load-shared by DNAT
#
# For each NAME: captures/NAME.pcap (what arrived at the router: outside and inside -Q in,
# merged), captures/NAME.toml (the lsnat config), captures/NAME.conntrack.log, and
# tests/kernel/NAME.kernel-out.pcap (what the kernel sent: -Q out on both). Run as root.
# CASES="modes-gre ..." records only those.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab.sh
. "$HERE/lab.sh"
# shellcheck source=record-lib.sh
. "$HERE/record-lib.sh"
rec_setup modes

OUTSIDE_PIDS=()

A=$CLIENT_A
B=$CLIENT_B
M1=${MEMBERS[0]}
M2=${MEMBERS[1]}
M3=${MEMBERS[2]}
PY=(python3 "$HERE/lsnat-clients.py")
CURL=(curl -sS --max-time 5 --connect-timeout 3)

step() { # description namespace command...
    local d=$1 ns=$2
    shift 2
    rec_step "$d" ip netns exec "$ns" timeout -s INT -k 2 20 "$@"
}

# An nft map for round robin over the given addresses (numgen slots in order).
rr() { # addr...
    local i=0 a out=""
    for a in "$@"; do
        out+="$i : $a, "
        i=$((i + 1))
    done
    echo "numgen inc mod $# map { ${out%, } }"
}

# config_header VIEW: the common part of every config.
config_header() {
    cat <<TOML
# lsnat replay configuration (RFC 2391), written by scripts/record-modes.sh
view = "router"

[timeouts]
tcp = "24h"
udp = "60s"
icmp = "60s"
other = "60s"
tcp_close_grace = "2s"
TOML
}

# vs NAME PROTO PORTS MEMBER...: one [[virtual_server]] on the VIP.
vs() {
    local name=$1 protocol=$2 ports=$3
    shift 3
    local members
    members=$(printf '"%s", ' "$@")
    cat <<TOML

[[virtual_server]]
name = "$name"
vip = "$VIP"
protocol = "$protocol"
${ports:+ports = $ports}
algorithm = "round-robin"
members = [${members%, }]
TOML
}

# record NAME: runs traffic_NAME between lab_up and lab_down with LAB_NFT_RULES set, then writes
# the capture, the kernel's output, the config (config_NAME) and the conntrack log.
record() {
    local name=$1
    rec_log "=== $name"
    : >"$WORK/clients.log"
    lab_up
    lab_start_servers 120 "$WORK"
    ct_start "$NS_RTR" "$WORK/$name.conntrack.log"
    cap_router "$name-" in out
    sleep 0.3
    "traffic_$name"
    sleep 1
    cap_stop_all
    ct_stop
    lab_stop_servers
    local p
    for p in "${OUTSIDE_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${OUTSIDE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    OUTSIDE_PIDS=()
    lab_down
    cat "$WORK/clients.log" >&2
    merge "$OUT/$name.pcap" nsecpcap "$WORK/$name-out0-in.pcap" "$WORK/$name-in0-in.pcap"
    merge "$REF/$name.kernel-out.pcap" nsecpcap "$WORK/$name-out0-out.pcap" "$WORK/$name-in0-out.pcap"
    cp "$WORK/$name.conntrack.log" "$OUT/$name.conntrack.log"
    "config_$name" >"$OUT/$name.toml"
    verify_capture "$OUT/$name.pcap"
    verify_capture "$REF/$name.kernel-out.pcap"
}

common_lsnat_rules() { # map-args for tcp, udp, icmp
    cat <<NFT
        ip daddr $VIP tcp dport { 23, 80 } dnat to $1
        ip daddr $VIP udp dport 9999 dnat to $2
        ip daddr $VIP icmp type echo-request dnat to $3
NFT
}

nat_table() { # prerouting-lines postrouting-lines [extra-tables]
    cat <<NFT
table ip lsnat {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
$1
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
$2
    }
}
${3:-}
NFT
}

# --- (a) RFC 2391 §3.3, figure 3: LS-NAPT ---------------------------------------------------
rules_modes-ls-napt() {
    local m
    m=$(rr "$M1" "$M2" "$M3")
    nat_table "$(common_lsnat_rules "$m" "$m" "$m")" \
        "        oifname \"in0\" masquerade"
}
traffic_modes-ls-napt() {
    step "icmp A ping x3" "$NS_CLI" ping -n -c 3 -i 0.2 -W 2 -I "$A" "$VIP"
    step "icmp B ping x2" "$NS_CLI" ping -n -c 2 -i 0.2 -W 2 -I "$B" "$VIP"
    # tcp round robin m1 (A:41000, held), m2, m3 (fillers), m1 (B:41000): the port clash
    step "tcp A:41000 and B:41000 to the same member (clash)" "$NS_CLI" "${PY[@]}" clash "$A" "$VIP" "$B" 41000 2
    step "tcp A curl GET /a (client closes)" "$NS_CLI" "${CURL[@]}" --interface "$A" "http://$VIP/a"
    step "tcp B HTTP Connection: close (server closes first)" "$NS_CLI" "${PY[@]}" httpclose "$B" "$VIP" /close
    step "tcp A :23 aborted with RST" "$NS_CLI" "${PY[@]}" rst "$A" "$VIP"
    step "udp A 3 exchanges" "$NS_CLI" "${PY[@]}" udp "$A" "$VIP" 3
    step "udp B 2 exchanges" "$NS_CLI" "${PY[@]}" udp "$B" "$VIP" 2
}
config_modes-ls-napt() {
    config_header
    cat <<TOML

[router]
mode = "ls-napt"                   # RFC 2391 §3.3
inside_address = "$RTR_IN"      # the masquerade address on the inside interface
TOML
    vs web tcp "[80, 23]" "$M1" "$M2" "$M3"
    vs echo udp "[9999]" "$M1" "$M2" "$M3"
    vs ping icmp "" "$M1" "$M2" "$M3"
}

# --- (b) RFC 2391 §3.2, figure 2: LSNAT with NAPT on the same router ------------------------
rules_modes-lsnat-napt() {
    local m
    m=$(rr "$M1" "$M2" "$M3")
    nat_table "$(common_lsnat_rules "$m" "$m" "$m")" \
        "        oifname \"out0\" ip saddr 203.0.113.0/24 masquerade"
}
# outside_server: an outside host (the client namespace's address A) serving HTTP, telnet and
# UDP echo (lsnat-servers.py), stopped by record; returns once its three ports listen.
outside_server() {
    ip netns exec "$NS_CLI" timeout -s INT -k 3 60 python3 "$HERE/lsnat-servers.py" "$A" \
        >"$WORK/outside-server.log" 2>&1 &
    OUTSIDE_PIDS+=($!)
    local tries=0
    until [ "$(ip netns exec "$NS_CLI" ss -Hlntu 2>/dev/null | grep -cE ':(80|23|9999)\b')" -ge 3 ]; do
        tries=$((tries + 1))
        [ $tries -gt 100 ] && { rec_log "outside server did not start"; return 1; }
        sleep 0.05
    done
}

traffic_modes-lsnat-napt() {
    outside_server
    step "tcp A curl GET /in (LSNAT inbound)" "$NS_CLI" "${CURL[@]}" --interface "$A" "http://$VIP/in"
    step "m1 udp to outside 2 exchanges (NAPT)" "${NS_M[0]}" "${PY[@]}" udp "$M1" "$A" 2
    step "m2 http to outside (NAPT)" "${NS_M[1]}" "${PY[@]}" http "$M2" "$A" /from-m2 /again
    step "m3 ping outside x2 (NAPT)" "${NS_M[2]}" ping -n -c 2 -i 0.2 -W 2 -I "$M3" "$A"
    step "udp B 2 exchanges (LSNAT inbound)" "$NS_CLI" "${PY[@]}" udp "$B" "$VIP" 2
    step "icmp B ping x2 (LSNAT inbound)" "$NS_CLI" ping -n -c 2 -i 0.2 -W 2 -I "$B" "$VIP"
    step "m1 http to outside, server closes (NAPT)" "${NS_M[0]}" "${PY[@]}" httpclose "$M1" "$A" /close
}
config_modes-lsnat-napt() {
    config_header
    cat <<TOML

[router]
outside_address = "$RTR_OUT"    # NAPT translates inside-initiated sessions to this address

[napt]                             # RFC 2391 §3.2: NAPT on the outbound, LSNAT on the inbound
enabled = true
inside = ["203.0.113.0/24"]
TOML
    vs web tcp "[80, 23]" "$M1" "$M2" "$M3"
    vs echo udp "[9999]" "$M1" "$M2" "$M3"
    vs ping icmp "" "$M1" "$M2" "$M3"
}

# --- (c) RFC 2391 §3, §4.1: a member statically mapped to a backup --------------------------
# The pool is m1, m2; m2 is being upgraded and mapped to the backup m3: the kernel's round-robin
# map sends m2's slot to m3.
rules_modes-static-member() {
    local m
    m=$(rr "$M1" "$M3")
    nat_table "$(common_lsnat_rules "$m" "$m" "$m")" ""
}
traffic_modes-static-member() {
    step "tcp A curl GET /1" "$NS_CLI" "${CURL[@]}" --interface "$A" "http://$VIP/1"
    step "tcp B curl GET /2 (m2 -> backup)" "$NS_CLI" "${CURL[@]}" --interface "$B" "http://$VIP/2"
    step "tcp B telnet :23" "$NS_CLI" "${PY[@]}" telnet "$B" "$VIP" hello
    step "tcp A telnet :23 (m2 -> backup)" "$NS_CLI" "${PY[@]}" telnet "$A" "$VIP" hi
    step "udp A 2 exchanges" "$NS_CLI" "${PY[@]}" udp "$A" "$VIP" 2
    step "udp B 2 exchanges (m2 -> backup)" "$NS_CLI" "${PY[@]}" udp "$B" "$VIP" 2
    step "icmp A ping x2" "$NS_CLI" ping -n -c 2 -i 0.2 -W 2 -I "$A" "$VIP"
    step "icmp B ping x2 (m2 -> backup)" "$NS_CLI" ping -n -c 2 -i 0.2 -W 2 -I "$B" "$VIP"
}
config_modes-static-member() {
    config_header
    vs web tcp "[80, 23]" "$M1" "$M2"
    vs echo udp "[9999]" "$M1" "$M2"
    vs ping icmp "" "$M1" "$M2"
    cat <<TOML

[[static_mapping]]                 # RFC 2391 §3: $M2 is upgraded; its new sessions go to $M3
member = "$M2"
backup = "$M3"
TOML
}

# --- (c') RFC 2391 §3: one TU port service of a member mapped to the backup ----------------
# Separate rules (counters) for :80 and :23; only m2's :23 slot goes to m3.
rules_modes-static-port() {
    local web tel
    web=$(rr "$M1" "$M2")
    tel=$(rr "$M1" "$M3")
    nat_table "        ip daddr $VIP tcp dport 80 dnat to $web
        ip daddr $VIP tcp dport 23 dnat to $tel
        ip daddr $VIP udp dport 9999 dnat to $web" ""
}
traffic_modes-static-port() {
    step "tcp A curl GET /1" "$NS_CLI" "${CURL[@]}" --interface "$A" "http://$VIP/1"
    step "tcp B curl GET /2 (m2 keeps :80)" "$NS_CLI" "${CURL[@]}" --interface "$B" "http://$VIP/2"
    step "tcp A telnet :23" "$NS_CLI" "${PY[@]}" telnet "$A" "$VIP" hello
    step "tcp B telnet :23 (m2:23 -> backup)" "$NS_CLI" "${PY[@]}" telnet "$B" "$VIP" hi
    step "udp A 2 exchanges" "$NS_CLI" "${PY[@]}" udp "$A" "$VIP" 2
    step "udp B 2 exchanges (m2 keeps :9999)" "$NS_CLI" "${PY[@]}" udp "$B" "$VIP" 2
}
config_modes-static-port() {
    config_header
    vs web tcp "[80]" "$M1" "$M2"
    vs telnet tcp "[23]" "$M1" "$M2"
    vs echo udp "[9999]" "$M1" "$M2"
    cat <<TOML

[[static_mapping]]                 # RFC 2391 §3: only the telnet service of $M2 goes to $M3
member = "$M2"
port = 23
backup = "$M3"
backup_port = 23
TOML
}

# --- (d) RFC 2391 §3: service restriction on a router-owned VIP -----------------------------
rules_modes-service-restriction() {
    local m
    m=$(rr "$M1" "$M2" "$M3")
    nat_table "$(common_lsnat_rules "$m" "$m" "$m")" "" "table ip filter {
    chain input {
        type filter hook input priority filter; policy accept;
        ip daddr $VIP drop
    }
}"
}
traffic_modes-service-restriction() {
    step "tcp A curl GET /ok (a service)" "$NS_CLI" "${CURL[@]}" --interface "$A" "http://$VIP/ok"
    step "tcp A :8080 (not a service: dropped)" "$NS_CLI" "${PY[@]}" probe "$A" "$VIP" tcp 8080
    step "udp B :7777 (not a service: dropped)" "$NS_CLI" "${PY[@]}" probe "$B" "$VIP" udp 7777
    step "udp B 2 exchanges (a service)" "$NS_CLI" "${PY[@]}" udp "$B" "$VIP" 2
    step "icmp A ping x2 (a service)" "$NS_CLI" ping -n -c 2 -i 0.2 -W 2 -I "$A" "$VIP"
    step "tcp B curl GET /ok2 (a service)" "$NS_CLI" "${CURL[@]}" --interface "$B" "http://$VIP/ok2"
}
config_modes-service-restriction() {
    config_header
    cat <<TOML

[router]
addresses = ["$VIP"]            # the VIP is the router's own address (on its loopback)
TOML
    vs web tcp "[80, 23]" "$M1" "$M2" "$M3"
    vs echo udp "[9999]" "$M1" "$M2" "$M3"
    vs ping icmp "" "$M1" "$M2" "$M3"
}

# --- (g) RFC 2391 §3.2 with RFC 3022 §4.3: ICMP errors for NAPT sessions --------------------
rules_modes-napt-icmp() { rules_modes-lsnat-napt; }
traffic_modes-napt-icmp() {
    # The outside host serves 80, 23 and 9999 only: datagrams to 5002 and 5003 are answered
    # with ICMP port unreachable, sent to the router's outside address and quoting the
    # masqueraded datagram; the router must hand each back to the member that sent it.
    outside_server
    local EDGES=(python3 "$HERE/edges-clients.py")
    step "tcp A curl GET /in (LSNAT inbound)" "$NS_CLI" "${CURL[@]}" --interface "$A" "http://$VIP/in"
    step "m1 udp to outside 9999, 2 exchanges (NAPT)" "${NS_M[0]}" "${PY[@]}" udp "$M1" "$A" 2
    step "m1 udp to outside closed port 5002 (ICMP port unreachable, NAPT)" "${NS_M[0]}" \
        "${EDGES[@]}" unreach "$M1" "$A" 5002
    sleep 1 # the outside host rate-limits its ICMP errors
    step "m2 udp to outside closed port 5003 (ICMP port unreachable, NAPT)" "${NS_M[1]}" \
        "${EDGES[@]}" unreach "$M2" "$A" 5003
    step "udp B 2 exchanges (LSNAT inbound)" "$NS_CLI" "${PY[@]}" udp "$B" "$VIP" 2
}
config_modes-napt-icmp() { config_modes-lsnat-napt; }

# --- (e) RFC 2391 §2.2: another protocol (GRE) load-shared ----------------------------------
rules_modes-gre() {
    local m
    m=$(rr "$M1" "$M2" "$M3")
    nat_table "$(common_lsnat_rules "$m" "$m" "$m")
        ip daddr $VIP ip protocol gre dnat to $m" ""
}
traffic_modes-gre() {
    step "gre A x3" "$NS_CLI" "${PY[@]}" gre "$A" "$VIP" 3
    step "gre B x2" "$NS_CLI" "${PY[@]}" gre "$B" "$VIP" 2
    step "tcp A curl GET /tcp" "$NS_CLI" "${CURL[@]}" --interface "$A" "http://$VIP/tcp"
    step "gre A x2 again (same session)" "$NS_CLI" "${PY[@]}" gre "$A" "$VIP" 2
}
config_modes-gre() {
    config_header
    vs web tcp "[80, 23]" "$M1" "$M2" "$M3"
    vs gre gre "" "$M1" "$M2" "$M3"
}

CASES=${CASES:-"modes-ls-napt modes-lsnat-napt modes-napt-icmp modes-static-member modes-static-port modes-service-restriction modes-gre"}
for c in $CASES; do
    LAB_NFT_RULES=$("rules_$c")
    export LAB_NFT_RULES
    LAB_STATIC_NEIGH=0
    record "$c"
done
unset LAB_NFT_RULES
rec_log "done: $CASES"
