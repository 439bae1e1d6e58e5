#!/usr/bin/env python3
"""Write captures/README.md: one line per capture (what, how, packet count), then the member the
kernel chose for each session (from the conntrack logs). Usage: write-captures-readme.py DIR"""
import os
import struct
import subprocess
import sys

DIR = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))

CAPTURES = [
    ("lsnat-router.pcap",
     "router view: what arrives at the LSNAT router from both sides (client→VIP as sent, member→client replies untranslated), plus ARP",
     "`tcpdump -Q in` on the router's outside (out0) and inside (in0) veths, merged by timestamp (mergecap -F nsecpcap); `scripts/record-lsnat.sh`"),
    ("lsnat-router.kernel-out.pcap",
     "what the router's kernel sent (nftables DNAT to members, un-DNAT of replies to the VIP, TTL-1): the reference translation of lsnat-router.pcap",
     "`tcpdump -Q out` on out0 and in0 in the same run, merged by timestamp; `scripts/record-lsnat.sh`"),
    ("lsnat-any-sll2.pcap",
     "the same run seen once on all router interfaces: every forwarded packet twice, arriving (SLL2 packet type 0, 1 for broadcast) and leaving (type 4), with interface index (2 = out0, 3 = in0)",
     "`tcpdump -i any -y LINUX_SLL2 --time-stamp-precision=nano` in the router namespace; `scripts/record-lsnat.sh`"),
    ("lsnat-client-side.pcap",
     "client side only: clients 198.51.100.7 / .23 ↔ VIP 198.18.0.100 (both directions), plus ARP with the router",
     "`tcpdump -i c0` (microsecond) on the clients' veth in the same run; `scripts/record-lsnat.sh`"),
    ("rfc2391-fig1.pcap",
     "RFC 2391 figure 1: 198.76.29.7:2745 HTTP and, while it is open, 198.23.47.2:3200 telnet to VIP 172.87.0.100; the kernel chose S1 (172.85.0.1) and S3 (172.85.0.3); router view",
     "recorded like lsnat-router.pcap with documentation addresses and static neighbours (no ARP), numgen map ordered S1,S3,S2, then `scripts/rewrite-addresses.py --table scripts/fig1-addresses.txt`; `scripts/record-fig1.sh`"),
    ("rfc2391-fig1.kernel-out.pcap",
     "figure 1: what the router's kernel sent (figure addresses)",
     "`-Q out` on out0 and in0, merged, rewritten; `scripts/record-fig1.sh`"),
    ("rfc2391-fig1.raw.pcap",
     "figure 1 router view as recorded, before the address rewrite (198.51.100.7/.23, VIP 198.18.0.100, members 203.0.113.1-3); input of rewrite-addresses.py",
     "`scripts/record-fig1.sh`"),
    ("modes-ls-napt.pcap",
     "RFC 2391 §3.3 LS-NAPT (figure 3): DNAT round robin plus `oifname in0 masquerade`: sessions reach members from 203.0.113.254 and a TU port; pings, HTTP (client and server close, RST), UDP, and A:41000 / B:41000 to the same member (a port clash: the kernel picked a random port)",
     "`-Q in` on out0 and in0, merged; `scripts/record-modes.sh` (kernel output in `tests/kernel/`)"),
    ("modes-lsnat-napt.pcap",
     "RFC 2391 §3.2 (figure 2): LSNAT for client→VIP plus `oifname out0 ip saddr 203.0.113.0/24 masquerade`: members start UDP, HTTP and ping sessions to an outside host (198.51.100.7), translated to 198.51.100.1",
     "`-Q in` on out0 and in0, merged; `scripts/record-modes.sh`"),
    ("modes-static-member.pcap",
     "RFC 2391 §3/§4.1: pool 203.0.113.1–2 with member .2 statically mapped to the backup .3 (the kernel's round-robin map sends .2's slot to .3); TCP 80/23, UDP, ICMP",
     "`-Q in` on out0 and in0, merged; `scripts/record-modes.sh`"),
    ("modes-static-port.pcap",
     "RFC 2391 §3: only member .2's telnet (port 23) mapped to the backup .3; port 80 and UDP keep .2 (separate nftables rules per port)",
     "`-Q in` on out0 and in0, merged; `scripts/record-modes.sh`"),
    ("modes-service-restriction.pcap",
     "RFC 2391 §3: router-owned VIP (an nftables input-hook drop for the VIP): a TCP SYN to :8080 (and its retry) and a UDP datagram to :7777 are not forwarded; HTTP, UDP 9999 and ping are load-shared",
     "`-Q in` on out0 and in0, merged; `scripts/record-modes.sh`"),
    ("modes-gre.pcap",
     "RFC 2391 §2.2 other protocols: GRE (protocol 47, raw sockets, payload type 0x88B5) from A and B load-shared by `ip protocol gre dnat to numgen ...`, answered by a GRE echo on each member; one HTTP session",
     "`-Q in` on out0 and in0, merged; `scripts/record-modes.sh`"),
]


def pcap_info(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    link = struct.unpack(endian + "I", data[20:24])[0]
    n, pos = 0, 24
    while pos + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[pos + 8:pos + 12])[0]
        pos += 16 + incl
        n += 1
    linkname = {1: "Ethernet", 276: "LINUX_SLL2", 113: "LINUX_SLL"}.get(link, str(link))
    return n, len(data), linkname, "ns" if nanos else "µs"


def sessions(log):
    return subprocess.run([sys.executable, os.path.join(HERE, "conntrack-sessions.py"), log, "--markdown"],
                          check=True, capture_output=True, text=True).stdout


lines = [
    "# Captures",
    "",
    "Real traffic through the Linux kernel's nftables LSNAT router (RFC 2391 §3.1: members have",
    "globally unique addresses and route back via the router; `dnat to numgen inc mod 3 map {...}`, one",
    "rule per protocol: tcp dport {23, 80}, udp dport 9999, icmp echo-request; no masquerade), recorded",
    "in network namespaces by `scripts/record-all.sh` (as root). Clients 198.51.100.7 (A) and",
    "198.51.100.23 (B) share the namespace `lsrec-cli`; router outside 198.51.100.1 (out0, ifindex 2),",
    "inside 203.0.113.254 (in0, ifindex 3), VIP 198.18.0.100/32 on the router's loopback; members",
    "203.0.113.1/2/3 behind a bridge. Offloads are off on every veth, so every checksum is real (all",
    "verified with tshark). IPv6 is disabled everywhere. Each capture has its replay config `NAME.toml`",
    "and the router's `conntrack -E -o timestamp,extended,id` log `NAME.conntrack.log` beside it (the",
    "three lsnat-* captures are one run, so their logs are the same).",
    "",
    "| file | packets | bytes | link / time | what it holds | how it was recorded |",
    "|---|---|---|---|---|---|",
]
for name, what, how in CAPTURES:
    path = os.path.join(DIR, name)
    if not os.path.exists(path):
        continue
    n, size, link, prec = pcap_info(path)
    lines.append(f"| `{name}` | {n} | {size} | {link} / {prec} | {what} | {how} |")

lines += [
    "",
    "Traffic of the lsnat-* run, in order (each step waits for the previous one):",
    "ping -c 3 from A; ping -c 3 from B; curl GET from A (client closes); curl keep-alive, 3 GETs on one",
    "connection from B; HTTP `Connection: close` from A (server closes first); python keep-alive, 2 GETs",
    "from B; UDP 9999, 3 exchanges from A, 2 from B, 2 from A on a new socket; \"telnet\" port 23 from B",
    "(2 lines, then `quit`: server closes first); port 23 from A aborted by the client with RST",
    "(SO_LINGER 0); ping -c 3 from A; curl GET from B. ARP is exchanged naturally on first use.",
    "",
    "## Member chosen by the kernel for each session (conntrack)",
    "",
    "### lsnat-router / lsnat-any-sll2 / lsnat-client-side",
    "",
    sessions(os.path.join(DIR, "lsnat-router.conntrack.log")).rstrip(),
    "",
    "### rfc2391-fig1 (addresses rewritten to the figure's)",
    "",
    sessions(os.path.join(DIR, "rfc2391-fig1.conntrack.log")).rstrip(),
    "",
    "### modes-* (scripts/record-modes.sh, one lab run per capture)",
    "",
] + [x for n in ["modes-ls-napt", "modes-lsnat-napt", "modes-static-member", "modes-static-port",
                 "modes-service-restriction", "modes-gre"]
     if os.path.exists(os.path.join(DIR, n + ".conntrack.log"))
     for x in (f"#### {n}", "", sessions(os.path.join(DIR, n + ".conntrack.log")).rstrip(), "")] + [
    "Notes:",
    "- Round robin has one counter per nftables rule: TCP, UDP and ICMP sessions advance separately.",
    "- UDP and ICMP entries are still alive when the log stops (no DESTROY); TCP ones end in",
    "  TIME_WAIT (FIN exchanges) or CLOSE (the RST session).",
    "- The router's ARP request for client B says \"Tell 198.18.0.100\": Linux takes the ARP sender",
    "  address from the packet that needs it (a reply already un-DNATed to the VIP).",
    "- `rfc2391-fig1.toml` lists the members in the kernel's round-robin order (S1, S3, S2) so that",
    "  round robin reproduces the figure (A → S1, B → S3).",
    "",
]
with open(os.path.join(DIR, "README.md"), "w") as f:
    f.write("\n".join(lines))
