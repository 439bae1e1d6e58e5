#!/usr/bin/env bash
# record-pool.sh - record a busy pool with a member that stops answering midway (RFC 2391 §6 dead
# host detection evidence) through the kernel's nftables LSNAT router in network namespaces:
# hundreds of short HTTP and UDP sessions from six clients (198.51.100.7, .23, .30-.33), nftables
# DNAT round-robin over three members; OUTAGE_AT seconds in, member 203.0.113.2 drops everything it
# receives (an nftables input chain with policy drop in its namespace) for OUTAGE_FOR seconds,
# then answers again. Writes into captures/:
#   lsnat-pool.pcap            what arrives at the router: out0 -Q in + in0 -Q in, merged (nanoseconds)
#   lsnat-pool.toml            replay configuration: round-robin, dead-host detection enabled
#   lsnat-pool.conntrack.log   conntrack -E in the router namespace (the kernel's choices)
#   lsnat-pool.outage.txt      when the member was cut off and brought back (wall clock, ns)
# The six client threads run concurrently, so the kernel's round-robin order and the capture's
# timestamp order can differ for sessions started within microseconds of each other: lsnat's
# replay reports those as `recorded-choice-differs` (no byte-for-byte kernel comparison here;
# record-lsnat.sh has that). Bounded: at most
# POOL_SECONDS (36) seconds of traffic and POOL_MAX (600) sessions. Run as root.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab.sh
. "$HERE/lab.sh"
# shellcheck source=record-lib.sh
. "$HERE/record-lib.sh"
rec_setup record-pool

POOL_SECONDS=${POOL_SECONDS:-36}
POOL_MAX=${POOL_MAX:-600}
OUTAGE_AT=${OUTAGE_AT:-8}
OUTAGE_FOR=${OUTAGE_FOR:-10}
EXTRA_CLIENTS=(198.51.100.30 198.51.100.31 198.51.100.32 198.51.100.33)
DOWN_NS=${NS_M[1]}


LAB_MAP_ORDER="1 2 3" LAB_STATIC_NEIGH=1 lab_up
for a in "${EXTRA_CLIENTS[@]}"; do
    ip -n "$NS_CLI" addr add "$a/24" dev c0
    ip -n "$NS_RTR" neigh replace "$a" lladdr "$MAC_CLI" dev out0 nud permanent
done
lab_start_servers 120 "$WORK"
ct_start "$NS_RTR" "$WORK/conntrack.log"

cap_router "" in
sleep 0.3

rec_log "traffic: pool of short sessions for at most ${POOL_SECONDS}s / $POOL_MAX sessions"
ip netns exec "$NS_CLI" timeout -s INT -k 2 $((POOL_SECONDS + 10)) \
    python3 "$HERE/lsnat-clients.py" pool "$POOL_SECONDS" "$POOL_MAX" "$VIP" \
    "$CLIENT_A" "$CLIENT_B" "${EXTRA_CLIENTS[@]}" >"$WORK/clients.log" 2>&1 &
CLIENTS=$!
sleep "$OUTAGE_AT"
rec_log "outage: ${MEMBERS[1]} drops all it receives for ${OUTAGE_FOR}s"
echo "down $(date +%s%N)" >"$WORK/outage.txt"
ip netns exec "$DOWN_NS" nft -f - <<NFT
table ip outage {
    chain input {
        type filter hook input priority 0; policy drop;
    }
}
NFT
sleep "$OUTAGE_FOR"
ip netns exec "$DOWN_NS" nft delete table ip outage
echo "up $(date +%s%N)" >>"$WORK/outage.txt"
rec_log "outage over: ${MEMBERS[1]} answers again"
wait "$CLIENTS" || rec_log "clients exited with $?"
sleep 3 # let the last sessions close

cap_stop_all
ct_stop
lab_stop_servers
cat "$WORK/clients.log" >&2

merge "$OUT/lsnat-pool.pcap" nsecpcap "$WORK/out0-in.pcap" "$WORK/in0-in.pcap"
cp "$WORK/conntrack.log" "$OUT/lsnat-pool.conntrack.log"
cp "$WORK/outage.txt" "$OUT/lsnat-pool.outage.txt"
write_config "$OUT/lsnat-pool.toml" router "$VIP" "${MEMBERS[@]}"
cat >>"$OUT/lsnat-pool.toml" <<TOML

# RFC 2391 §6: a member that does not answer a newly assigned session within answer_within is
# declared dead; after retry_after it is tried again with one new session. retry_after is short
# here so that the probe happens inside this short capture (the default is 3m).
[dead_host]
enabled = true
answer_within = "3s"
retry_after = "5s"
TOML
verify_capture "$OUT/lsnat-pool.pcap"
rec_log "conntrack NEW bindings per member:"
grep '\[NEW\]' "$OUT/lsnat-pool.conntrack.log" | grep -o 'src=203\.0\.113\.[0-9]*' | sort | uniq -c >&2 || true
