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
    ("lsnat-pool.pcap",
     "router view of a busy pool with a member outage: 600 short sessions (HTTP GET on its own connection, one UDP exchange on its own socket) from six clients 198.51.100.7, .23, .30-.33 concurrently; member 203.0.113.2 dropped everything it received for about ten seconds midway (RFC 2391 §6 evidence)",
     "`tcpdump -Q in` on out0 and in0, merged (nanoseconds), static neighbours (no ARP); `scripts/record-pool.sh`"),
    ("rfc2391-fig1.pcap",
     "RFC 2391 figure 1: 198.76.29.7:2745 HTTP and, while it is open, 198.23.47.2:3200 telnet to VIP 172.87.0.100; the kernel chose S1 (172.85.0.1) and S3 (172.85.0.3); router view",
     "recorded like lsnat-router.pcap with documentation addresses and static neighbours (no ARP), numgen map ordered S1,S3,S2, then `scripts/rewrite-addresses.py --table scripts/fig1-addresses.txt`; `scripts/record-fig1.sh`"),
    ("rfc2391-fig1.kernel-out.pcap",
     "figure 1: what the router's kernel sent (figure addresses)",
     "`-Q out` on out0 and in0, merged, rewritten; `scripts/record-fig1.sh`"),
    ("lsnat-edges.pcap",
     "packet-translation edge cases, router view: ICMP echo and an echo with TTL 1 (the kernel answers time exceeded from the VIP), HTTP twice from client port 40000 (reused client port), an RST from a member, UDP on service ports 9999/5000/5001, a 3000-byte UDP datagram fragmented both ways, one whose fragments arrive first fragment last (raw socket), ICMP port unreachable from a member (port 5002: VIP service, no member listens) and from a client (it closed its socket before a delayed echo)",
     "`tcpdump -Q in` on out0 and in0, merged; static neighbours (no ARP); nftables udp rule for dport {9999, 5000, 5001, 5002}; `scripts/record-edges.sh`"),
    ("lsnat-edges.kernel-out.pcap",
     "what the router's kernel sent for lsnat-edges.pcap, including its ICMP time exceeded and the fragments it reassembled for conntrack and sent again in offset order",
     "`tcpdump -Q out` on out0 and in0 in the same run, merged; `scripts/record-edges.sh`"),
    ("lsnat-idle.pcap",
     "router view of sessions that pause mid-session and continue (for `lsnat audit`): telnet :23 from A pausing 5, 12, 25 s; HTTP keep-alive from B pausing 3, 20 s and from A pausing 8 s; UDP :9999 from A pausing 15 then 4 s, from B pausing 2 s, from B once, from A pausing 20 s; ping from A, 3 echoes 14 s apart",
     "`tcpdump -Q in` on out0 and in0, merged, static neighbours (no ARP); clients run concurrently, about 45 s; `scripts/record-idle.sh`"),
    ("lsnat-idle.kernel-out.pcap",
     "idle-gap run: what the router's kernel sent (the kernel kept every session bound through every pause)",
     "`-Q out` on out0 and in0, merged; `scripts/record-idle.sh`"),
    ("rfc2391-fig1.raw.pcap",
     "figure 1 router view as recorded, before the address rewrite (198.51.100.7/.23, VIP 198.18.0.100, members 203.0.113.1-3); input of rewrite-addresses.py",
     "`scripts/record-fig1.sh`"),
    ("modes-ls-napt.pcap",
     "RFC 2391 §3.3 LS-NAPT (figure 3): DNAT round robin plus `oifname in0 masquerade`: sessions reach members from 203.0.113.254 and a TU port; pings, HTTP (client and server close, RST), UDP, and A:41000 / B:41000 to the same member (a port clash: the kernel picked a random port)",
     "`-Q in` on out0 and in0, merged; `scripts/record-modes.sh` (kernel output in `tests/kernel/`)"),
    ("modes-lsnat-napt.pcap",
     "RFC 2391 §3.2 (figure 2): LSNAT for client→VIP plus `oifname out0 ip saddr 203.0.113.0/24 masquerade`: members start UDP, HTTP and ping sessions to an outside host (198.51.100.7), translated to 198.51.100.1",
     "`-Q in` on out0 and in0, merged; `scripts/record-modes.sh`"),
    ("modes-napt-icmp.pcap",
     "RFC 2391 §3.2 with RFC 3022 §4.3: the rules of modes-lsnat-napt; members 203.0.113.1 and .2 send UDP through NAPT to closed ports of the outside host, which answers each with ICMP port unreachable to the router's outside address 198.51.100.1; also one HTTP and one UDP session to the VIP",
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
    ("lsnat-ftp.pcap",
     "FTP through the kernel's FTP helper (nf_conntrack_ftp/nf_nat_ftp, an nftables `ct helper` of type \"ftp\" set on VIP tcp/21 before the DNAT): five control sessions round robin over the members (A PASV with LIST and RETR, B PASV, A EPSV, B active PORT, A active EPRT); members name their own address in 227 replies; passive data connections to the VIP's ports 50010-50030 and active ones from member port 20",
     "`-Q in` on out0 and in0, merged; static neighbours (no ARP); `scripts/record-ftp.sh` with `ftp-server.py` / `ftp-clients.py`"),
    ("lsnat-ftp.kernel-out.pcap",
     "what the router's kernel sent for lsnat-ftp.pcap: 227 replies rewritten to 198,18,0,100 (one byte longer each, later sequence/acknowledgment numbers shifted), data connections DNATed to the control connection's member, active ones leaving from 198.18.0.100:20",
     "`-Q out` on out0 and in0, merged; `scripts/record-ftp.sh`"),
    ("lsnat-ftp-napt.pcap",
     "FTP through an LS-NAPT router (RFC 2391 §3.3): the rules of lsnat-ftp plus `oifname in0 masquerade`, so members see every control and data connection from 203.0.113.254; A PASV, B EPSV, A active PORT, A active EPRT, then an active-port clash: A:40035 and B:40038 both reach 203.0.113.2 and both send PORT …,40251 while A's expectation is pending (B:40036, B:40037 log in and out between them to turn the round robin)",
     "`-Q in` on out0 and in0, merged; static neighbours (no ARP); `MODE=ls-napt scripts/record-ftp.sh`"),
    ("lsnat-ftp-napt.kernel-out.pcap",
     "what the router's kernel sent for lsnat-ftp-napt.pcap: PORT/EPRT rewritten to 203.0.113.254 (one byte longer for A, later sequence numbers shifted), the member's port-20 connections to 203.0.113.254:P leaving as 198.18.0.100:20 → client:P; for B's clashing PORT the kernel announced another (random) port to the member",
     "`-Q out` on out0 and in0, merged; `MODE=ls-napt scripts/record-ftp.sh`"),
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


def first_ts_ns(path):
    with open(path, "rb") as f:
        data = f.read(40)
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    sec, frac = struct.unpack(endian + "II", data[24:32])
    return sec * 10**9 + frac * (1 if nanos else 1000)


def pool_notes():
    cap = os.path.join(DIR, "lsnat-pool.pcap")
    if not os.path.exists(cap):
        return []
    out = ["### lsnat-pool", ""]
    per = {}
    with open(os.path.join(DIR, "lsnat-pool.conntrack.log")) as f:
        for line in f:
            if "[NEW]" in line:
                m = [w for w in line.split() if w.startswith("src=203.0.113.")]
                if m:
                    per[m[0][4:]] = per.get(m[0][4:], 0) + 1
    out.append("Sessions the kernel's round robin gave each member: " +
               ", ".join(f"{k} {v}" for k, v in sorted(per.items())) + ".")
    t0 = first_ts_ns(cap)
    with open(os.path.join(DIR, "lsnat-pool.outage.txt")) as f:
        marks = dict(line.split() for line in f if line.strip())
    out.append(f"203.0.113.2 was cut off (nftables input policy drop in its namespace) "
               f"{(int(marks['down']) - t0) / 1e9:+.3f} s after the first packet and restored at "
               f"{(int(marks['up']) - t0) / 1e9:+.3f} s (wall clock of the recording host, "
               "`lsnat-pool.outage.txt`); the capture shows its last packet before and first after.")
    out.append("The six client threads run concurrently, so for sessions started within microseconds of")
    out.append("each other the kernel's round-robin order and the capture's timestamp order can differ.")
    out.append("")
    return out


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
    "The kernel's own output of a run (`NAME.kernel-out.pcap`, `tcpdump -Q out`) is not in this",
    "folder: it is in `tests/kernel/`, beside the test that compares lsnat with it (`tests/kernel.rs`);",
    "the table gives those rows with their path from here.",
    "",
    "| file | packets | bytes | link / time | what it holds | how it was recorded |",
    "|---|---|---|---|---|---|",
]
for name, what, how in CAPTURES:
    path, shown = os.path.join(DIR, name), name
    if not os.path.exists(path):
        # the kernel's output is kept with the tests (tests/kernel/)
        path = os.path.join(HERE, "..", "tests", "kernel", name)
        shown = "../tests/kernel/" + name
    if not os.path.exists(path):
        continue
    n, size, link, prec = pcap_info(path)
    lines.append(f"| `{shown}` | {n} | {size} | {link} / {prec} | {what} | {how} |")

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
    *pool_notes(),
    "### lsnat-edges",
    "",
    sessions(os.path.join(DIR, "lsnat-edges.conntrack.log")).rstrip(),
    "",
    "The TTL-1 echo request from A (packet 5) has no conntrack entry (never forwarded, never",
    "confirmed) but consumed the ICMP rule's numgen turn for 203.0.113.2: B's ping went to",
    "203.0.113.3. lsnat drops that packet before binding, so it sends B's ping to 203.0.113.2;",
    "`tests/kernel.rs` states and checks this difference.",
    "### lsnat-idle",
    "",
    sessions(os.path.join(DIR, "lsnat-idle.conntrack.log")).rstrip(),
    "",
    "### rfc2391-fig1 (addresses rewritten to the figure's)",
    "",
    sessions(os.path.join(DIR, "rfc2391-fig1.conntrack.log")).rstrip(),
    "",
    "### modes-* (scripts/record-modes.sh, one lab run per capture)",
    "",
] + [x for n in ["modes-ls-napt", "modes-lsnat-napt", "modes-napt-icmp", "modes-static-member", "modes-static-port",
                 "modes-service-restriction", "modes-gre"]
     if os.path.exists(os.path.join(DIR, n + ".conntrack.log"))
     for x in (f"#### {n}", "", sessions(os.path.join(DIR, n + ".conntrack.log")).rstrip(), "")] + ([
    "### lsnat-ftp (scripts/record-ftp.sh)",
    "",
    sessions(os.path.join(DIR, "lsnat-ftp.conntrack.log")).rstrip(),
    "",
    "Data connections are the helper's expected (RELATED) entries: they follow their control",
    "connection's member and do not advance the round robin. The rows for active-mode data",
    "connections (member port 20 to a client port) list the member as client and the client as",
    "member: the member opened them, and the kernel translated their source to 198.18.0.100:20.",
    "",
] if os.path.exists(os.path.join(DIR, "lsnat-ftp.conntrack.log")) else []) + ([
    "### lsnat-ftp-napt (MODE=ls-napt scripts/record-ftp.sh)",
    "",
    sessions(os.path.join(DIR, "lsnat-ftp-napt.conntrack.log")).rstrip(),
    "",
    "LS-NAPT: in the control and passive rows the members answer 203.0.113.254 (the masquerade).",
    "In the active-mode rows (member port 20 first) the virtual server column is the address the",
    "member was told (203.0.113.254:P); for B:40038's clashing PORT the kernel chose P itself.",
    "",
] if os.path.exists(os.path.join(DIR, "lsnat-ftp-napt.conntrack.log")) else []) + [
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
