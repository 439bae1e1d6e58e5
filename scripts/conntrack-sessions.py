#!/usr/bin/env python3
"""Summarise a `conntrack -E -o timestamp,extended,id` log: one line per session (conntrack id)
with the client tuple, the member the kernel chose (reply-direction source) and the last event.

  conntrack-sessions.py LOG [--markdown]
"""
import re
import sys

LINE = re.compile(r"^\[(?P<ts>[0-9.]+)\]\s+\[(?P<ev>NEW|UPDATE|DESTROY)\]\s+ipv4\s+2\s+(?P<proto>\w+)\s+\d+\s+(?P<rest>.*)$")


def fields(text):
    # helper=NAME (a conntrack helper such as ftp) is no tuple field: left out.
    return [kv for kv in re.findall(r"(\w+)=(\S+)", text) if kv[0] != "helper"]


def main():
    path = sys.argv[1]
    md = "--markdown" in sys.argv[2:]
    sessions = {}
    order = []
    for line in open(path):
        m = LINE.match(line.strip())
        if not m:
            continue
        kv = fields(m["rest"])
        cid = kv[-1][1] if kv and kv[-1][0] == "id" else None
        orig = dict(kv[:len(kv) // 2])
        reply = dict(kv[len(kv) // 2:-1] if cid else kv[len(kv) // 2:])
        state = m["rest"].split()[1] if m["proto"] == "tcp" and m["ev"] != "DESTROY" else ""
        if cid not in sessions:
            sport = orig.get("sport") or f"id {orig.get('id', '?')}"
            dport = orig.get("dport") or f"type {orig.get('type', '?')}"
            sessions[cid] = {
                "ts": m["ts"], "proto": m["proto"],
                "client": f"{orig.get('src')}:{sport}" if "sport" in orig else f"{orig.get('src')} ({sport})",
                "vip": f"{orig.get('dst')}:{dport}" if "dport" in orig else f"{orig.get('dst')} ({dport})",
                "member": reply.get("src"), "last": "",
            }
            order.append(cid)
        sessions[cid]["last"] = f"{m['ev']} {state}".strip()
    if md:
        print("| first event | proto | client | virtual server | member | last event |")
        print("|---|---|---|---|---|---|")
    for cid in order:
        s = sessions[cid]
        if md:
            print(f"| {s['ts']} | {s['proto']} | {s['client']} | {s['vip']} | {s['member']} | {s['last']} |")
        else:
            print(f"{s['ts']}  {s['proto']:<4}  {s['client']:<26} -> {s['vip']:<22} member {s['member']:<13} last {s['last']}")


if __name__ == "__main__":
    main()
