#!/usr/bin/env python3
"""Client-side traffic for the edge-case recording (record-edges.sh): run inside the clients
namespace. Every operation is bounded (socket timeouts; the caller also wraps it in `timeout`).

  edges-clients.py httpclose SRC:PORT VIP PATH   one request with "Connection: close" from a
                                                 fixed client port (the server closes first, so
                                                 the port can be reused at once)
  edges-clients.py httprst SRC VIP               GET /reset: the member aborts with an RST
  edges-clients.py udpports SRC VIP PORT...      one request/response on each UDP service port
  edges-clients.py bigudp SRC VIP PORT SIZE      one SIZE-byte datagram (fragmented by the
                                                 client's kernel), echoed (fragmented by the member)
  edges-clients.py ooofrag SRC VIP PORT SIZE     one SIZE-byte UDP datagram, fragmented here and
                                                 sent through a raw socket last fragment first
                                                 (the first fragment arrives last); the echo is read
  edges-clients.py unreach SRC VIP PORT          a datagram to a VIP service port no member
                                                 listens on: ICMP port unreachable from the member
  edges-clients.py gone SRC VIP PORT             a "slow" request, then the socket is closed before
                                                 the (delayed) echo comes: port unreachable from
                                                 the client
"""
import socket
import struct
import sys
import time

from clientlib import TIMEOUT, addr, log, read_to_eof


def httpclose(src, vip, path):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(TIMEOUT)
    s.bind(addr(src))
    s.connect((vip, 80))
    log(f"httpclose {s.getsockname()} -> {vip}:80")
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {vip}\r\nConnection: close\r\n\r\n".encode())
    status, body = read_to_eof(s)
    log(f"  {status} body {body!r}")
    s.close()


def httprst(src, vip):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.bind(addr(src))
    s.connect((vip, 80))
    log(f"httprst {s.getsockname()} -> {vip}:80")
    s.sendall(f"GET /reset HTTP/1.1\r\nHost: {vip}\r\n\r\n".encode())
    try:
        data = s.recv(4096)
        log(f"  got {data!r}")
    except ConnectionResetError:
        log("  connection reset by the member")
    s.close()


def udp_once(s, vip, port, payload):
    s.sendto(payload, (vip, port))
    data, peer = s.recvfrom(65535)
    log(f"udp {s.getsockname()} <- {peer}: {len(data)} bytes {data[:40]!r}")


def udpports(src, vip, *ports):
    for p in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(TIMEOUT)
        s.bind(addr(src))
        udp_once(s, vip, int(p), f"request to port {p}".encode())
        s.close()
        time.sleep(0.05)


def bigudp(src, vip, port, size):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    s.bind(addr(src))
    payload = (b"big-datagram " * 1000)[: int(size)]
    udp_once(s, vip, int(port), payload)
    s.close()


def csum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ooofrag(src, vip, port, size):
    # A normal UDP socket owns the source port and reads the echo.
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(TIMEOUT)
    u.bind(addr(src))
    sport = u.getsockname()[1]
    payload = (b"out-of-order " * 1000)[: int(size)]
    ulen = 8 + len(payload)
    s, d = socket.inet_aton(src.split(":")[0]), socket.inet_aton(vip)
    pseudo = s + d + struct.pack("!BBH", 0, 17, ulen)
    hdr = struct.pack("!HHHH", sport, int(port), ulen, 0)
    c = csum(pseudo + hdr + payload) or 0xFFFF
    dgram = struct.pack("!HHHH", sport, int(port), ulen, c) + payload
    ident = 0x4c53
    chunk = 1480  # MTU 1500 - 20-byte header, a multiple of 8
    frags = []
    for off in range(0, len(dgram), chunk):
        part = dgram[off:off + chunk]
        more = off + chunk < len(dgram)
        flags = (0x2000 if more else 0) | (off // 8)
        iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(part), ident, flags, 64, 17, 0, s, d)
        iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
        frags.append(iph + part)
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for f in reversed(frags):
        r.sendto(f, (vip, 0))
        time.sleep(0.02)
    r.close()
    log(f"ooofrag {src.split(':')[0]}:{sport} -> {vip}:{port}: {len(frags)} fragments sent last first, id {ident:#x}")
    data, peer = u.recvfrom(65535)
    log(f"  <- {peer}: {len(data)} bytes {data[:40]!r}")
    u.close()


def unreach(src, vip, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    s.bind(addr(src))
    s.connect((vip, int(port)))
    s.send(b"anyone there?")
    try:
        s.recv(2048)
        log("  unexpected answer")
    except ConnectionRefusedError:
        log(f"unreach {s.getsockname()} -> {vip}:{port}: ICMP port unreachable (connection refused)")
    except socket.timeout:
        log(f"unreach {s.getsockname()} -> {vip}:{port}: no answer")
    s.close()


def gone(src, vip, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(addr(src))
    s.sendto(b"slow request, nobody will read the answer", (vip, int(port)))
    log(f"gone {s.getsockname()} -> {vip}:{port}: socket closed before the echo")
    s.close()
    time.sleep(1.0)


def main():
    cmd, *args = sys.argv[1:]
    {"httpclose": httpclose, "httprst": httprst, "udpports": udpports, "bigudp": bigudp,
     "ooofrag": ooofrag, "unreach": unreach, "gone": gone}[cmd](*args)


if __name__ == "__main__":
    main()
