#!/usr/bin/env bash
# lab.sh - build and tear down the LSNAT recording lab (RFC 2391 section 3.1 topology) in network
# namespaces. Source it (". scripts/lab.sh") and call lab_up / lab_down, or run it directly:
#   scripts/lab.sh up | down | status
#
# Everything lives in namespaces named "${LAB_PREFIX}-*" (default lsrec-); nothing is created in the
# host namespace. Topology:
#
#   ns cli  (client A 198.51.100.7, client B 198.51.100.23 on c0)
#     c0 ---- out0  ns rtr  (198.51.100.1/24 outside, VIP 198.18.0.100/32 on lo,
#                            203.0.113.254/24 inside, nftables round-robin DNAT, no masquerade)
#                   in0 ---- p-rtr  ns br (bridge br0, mcast snooping off)
#                                   p-m1 ---- eth0  ns m1 (203.0.113.1)
#                                   p-m2 ---- eth0  ns m2 (203.0.113.2)
#                                   p-m3 ---- eth0  ns m3 (203.0.113.3)
#
# Members have globally unique addresses and route back via the router (LSNAT, RFC 2391 3.1).
#
# Environment knobs:
#   LAB_PREFIX      namespace name prefix                    (default lsrec)
#   LAB_MAP_ORDER   member indexes for numgen slots 0 1 2     (default "1 2 3")
#   LAB_STATIC_NEIGH=1  install permanent neighbour entries so no ARP is exchanged (default 0)
#   LAB_NFT_RULES   an nftables ruleset (nft -f text) loaded in the router instead of the default
#                   LSNAT DNAT table; lab_lsnat_rules prints the default for a caller to extend

LAB_PREFIX=${LAB_PREFIX:-lsrec}
LAB_MAP_ORDER=${LAB_MAP_ORDER:-"1 2 3"}
LAB_STATIC_NEIGH=${LAB_STATIC_NEIGH:-0}

NS_CLI=$LAB_PREFIX-cli
NS_RTR=$LAB_PREFIX-rtr
NS_BR=$LAB_PREFIX-br
NS_M=("$LAB_PREFIX-m1" "$LAB_PREFIX-m2" "$LAB_PREFIX-m3")

CLIENT_A=198.51.100.7
CLIENT_B=198.51.100.23
RTR_OUT=198.51.100.1
RTR_IN=203.0.113.254
VIP=198.18.0.100
MEMBERS=(203.0.113.1 203.0.113.2 203.0.113.3)

# Fixed MAC addresses make the captures reproducible byte for byte in their headers.
MAC_CLI=02:00:00:00:00:07
MAC_RTR_OUT=02:00:00:00:00:01
MAC_RTR_IN=02:00:00:00:00:fe
MAC_M=(02:00:00:00:01:01 02:00:00:00:01:02 02:00:00:00:01:03)

lab_namespaces() {
    echo "$NS_CLI" "$NS_RTR" "$NS_BR" "${NS_M[@]}"
}

lab_log() { printf '[lab] %s\n' "$*" >&2; }

# Install whatever the recording needs and is missing (Debian package names), then check.
lab_require() {
    local need=(ip:iproute2 ss:iproute2 nft:nftables ethtool:ethtool tcpdump:tcpdump
        conntrack:conntrack tshark:tshark mergecap:wireshark-common capinfos:wireshark-common
        ping:iputils-ping curl:curl python3:python3 stdbuf:coreutils timeout:coreutils)
    local missing=() item
    for item in "${need[@]}"; do
        command -v "${item%%:*}" >/dev/null 2>&1 || missing+=("${item#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        lab_log "installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    for item in "${need[@]}"; do
        command -v "${item%%:*}" >/dev/null 2>&1 || { lab_log "missing ${item%%:*}"; return 1; }
    done
    [ "$(id -u)" = 0 ] || { lab_log "must run as root"; return 1; }
}

# Turn every offload off so that captured checksums are real and segments are never merged.
lab_nooffload() { # ns ifname
    ip netns exec "$1" ethtool -K "$2" tx off rx off sg off tso off gso off gro off >/dev/null 2>&1 ||
        ip netns exec "$1" ethtool -K "$2" tx off rx off sg off tso off gso off gro off
}

lab_ns_init() { # ns
    ip netns add "$1"
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$1" sysctl -qw net.ipv6.conf.lo.disable_ipv6=1 2>/dev/null || true
    ip -n "$1" link set lo up
}

lab_down() {
    local ns
    # Processes started by the scripts run inside the namespaces; kill them by namespace (by pid).
    for ns in $(lab_namespaces); do
        if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
            local pids
            pids=$(ip netns pids "$ns" 2>/dev/null || true)
            if [ -n "$pids" ]; then
                # shellcheck disable=SC2086
                kill -INT $pids 2>/dev/null || true
                local t=0
                while [ $t -lt 20 ] && [ -n "$(ip netns pids "$ns" 2>/dev/null)" ]; do
                    sleep 0.1
                    t=$((t + 1))
                done
                pids=$(ip netns pids "$ns" 2>/dev/null || true)
                # shellcheck disable=SC2086
                [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
            fi
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
}

lab_up() {
    lab_require
    lab_down
    local ns i
    for ns in $(lab_namespaces); do lab_ns_init "$ns"; done

    # clients <-> router outside
    ip -n "$NS_CLI" link add c0 address "$MAC_CLI" type veth peer name out0 netns "$NS_RTR" address "$MAC_RTR_OUT"
    # router inside <-> bridge
    ip -n "$NS_RTR" link add in0 address "$MAC_RTR_IN" type veth peer name p-rtr netns "$NS_BR"
    ip -n "$NS_BR" link add br0 type bridge mcast_snooping 0 stp_state 0 forward_delay 0
    ip -n "$NS_BR" link set p-rtr master br0
    for i in 0 1 2; do
        ip -n "$NS_BR" link add "p-m$((i + 1))" type veth peer name eth0 netns "${NS_M[$i]}" address "${MAC_M[$i]}"
        ip -n "$NS_BR" link set "p-m$((i + 1))" master br0
    done

    lab_nooffload "$NS_CLI" c0
    lab_nooffload "$NS_RTR" out0
    lab_nooffload "$NS_RTR" in0
    lab_nooffload "$NS_BR" p-rtr
    for i in 0 1 2; do
        lab_nooffload "$NS_BR" "p-m$((i + 1))"
        lab_nooffload "${NS_M[$i]}" eth0
    done

    # addresses and routes
    ip -n "$NS_CLI" addr add "$CLIENT_A/24" dev c0
    ip -n "$NS_CLI" addr add "$CLIENT_B/24" dev c0
    ip -n "$NS_RTR" addr add "$RTR_OUT/24" dev out0
    ip -n "$NS_RTR" addr add "$RTR_IN/24" dev in0
    ip -n "$NS_RTR" addr add "$VIP/32" dev lo
    for i in 0 1 2; do
        ip -n "${NS_M[$i]}" addr add "${MEMBERS[$i]}/24" dev eth0
    done

    ip -n "$NS_BR" link set br0 up
    for ns in p-rtr p-m1 p-m2 p-m3; do ip -n "$NS_BR" link set "$ns" up; done
    ip -n "$NS_CLI" link set c0 up
    ip -n "$NS_RTR" link set out0 up
    ip -n "$NS_RTR" link set in0 up
    for i in 0 1 2; do ip -n "${NS_M[$i]}" link set eth0 up; done

    ip -n "$NS_CLI" route add default via "$RTR_OUT" dev c0
    for i in 0 1 2; do ip -n "${NS_M[$i]}" route add default via "$RTR_IN" dev eth0; done
    ip netns exec "$NS_RTR" sysctl -qw net.ipv4.ip_forward=1

    if [ "$LAB_STATIC_NEIGH" = 1 ]; then
        ip -n "$NS_CLI" neigh replace "$RTR_OUT" lladdr "$MAC_RTR_OUT" dev c0 nud permanent
        ip -n "$NS_RTR" neigh replace "$CLIENT_A" lladdr "$MAC_CLI" dev out0 nud permanent
        ip -n "$NS_RTR" neigh replace "$CLIENT_B" lladdr "$MAC_CLI" dev out0 nud permanent
        for i in 0 1 2; do
            ip -n "$NS_RTR" neigh replace "${MEMBERS[$i]}" lladdr "${MAC_M[$i]}" dev in0 nud permanent
            ip -n "${NS_M[$i]}" neigh replace "$RTR_IN" lladdr "$MAC_RTR_IN" dev eth0 nud permanent
        done
    fi

    # LSNAT: round-robin DNAT of client->VIP sessions to the pool, one rule (one counter) per
    # protocol, no masquerade: replies from members are un-DNATed by conntrack on their way out.
    if [ -n "${LAB_NFT_RULES:-}" ]; then
        ip netns exec "$NS_RTR" nft -f - <<<"$LAB_NFT_RULES"
        lab_log "lab up (prefix $LAB_PREFIX, custom nftables ruleset, static neigh $LAB_STATIC_NEIGH)"
    else
        lab_lsnat_rules | ip netns exec "$NS_RTR" nft -f -
        lab_log "lab up (prefix $LAB_PREFIX, numgen map order $LAB_MAP_ORDER, static neigh $LAB_STATIC_NEIGH)"
    fi
}

# The default LSNAT ruleset: round-robin DNAT of client->VIP sessions to the pool, one rule (one
# counter) per protocol. $1: extra lines for the prerouting chain; $2: extra text after the table.
lab_lsnat_rules() {
    local s0 s1 s2
    read -r s0 s1 s2 <<<"$LAB_MAP_ORDER"
    local map="{ 0 : ${MEMBERS[$((s0 - 1))]}, 1 : ${MEMBERS[$((s1 - 1))]}, 2 : ${MEMBERS[$((s2 - 1))]} }"
    cat <<NFT
table ip lsnat {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr $VIP tcp dport { 23, 80 } dnat to numgen inc mod 3 map $map
        ip daddr $VIP udp dport 9999 dnat to numgen inc mod 3 map $map
        ip daddr $VIP icmp type echo-request dnat to numgen inc mod 3 map $map
${1:-}
    }
}
${2:-}
NFT
}

# Start the member services (HTTP :80, UDP echo :9999, line-echo "telnet" :23) for at most $1 s.
LAB_SERVER_PIDS=()
lab_start_servers() { # max_seconds logdir
    local i
    for i in 0 1 2; do
        ip netns exec "${NS_M[$i]}" timeout -s INT -k 3 "$1" \
            python3 "$LAB_SCRIPTS/lsnat-servers.py" "${MEMBERS[$i]}" >"$2/server-m$((i + 1)).log" 2>&1 &
        LAB_SERVER_PIDS+=($!)
    done
    # Wait until each member listens on its three ports (bounded).
    local tries
    for i in 0 1 2; do
        tries=0
        until [ "$(ip netns exec "${NS_M[$i]}" ss -Hlntu 2>/dev/null | grep -cE ':(80|23|9999)\b')" -ge 3 ]; do
            tries=$((tries + 1))
            [ $tries -gt 100 ] && { lab_log "servers in ${NS_M[$i]} did not start"; return 1; }
            sleep 0.05
        done
    done
}

# Stop the member services started by lab_start_servers (SIGINT to our timeout wrappers, then wait).
lab_stop_servers() {
    local p
    [ ${#LAB_SERVER_PIDS[@]} -eq 0 ] && return 0
    for p in "${LAB_SERVER_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${LAB_SERVER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    LAB_SERVER_PIDS=()
}

LAB_SCRIPTS=${LAB_SCRIPTS:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
        up) lab_up ;;
        down) lab_down ;;
        status) for ns in $(lab_namespaces); do echo "== $ns"; ip -n "$ns" -br addr 2>/dev/null || true; done ;;
        *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
    esac
fi
