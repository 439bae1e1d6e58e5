#!/usr/bin/env python3
"""Client-side traffic for the LSNAT lab: run inside the clients namespace. Every operation is
bounded (socket timeouts; the caller also wraps it in `timeout`).

  lsnat-clients.py udp SRC VIP COUNT            one UDP socket, COUNT request/response exchanges
  lsnat-clients.py telnet SRC[:PORT] VIP LINE.. line-echo session on port 23 ending with "quit"
                                                (the server closes first)
  lsnat-clients.py rst SRC VIP                  port 23 session aborted by the client with RST
                                                (SO_LINGER 0, then close)
  lsnat-clients.py http SRC[:PORT] VIP PATH..   HTTP/1.1 keep-alive, one request per PATH on one
                                                connection; the client closes first
  lsnat-clients.py httpclose SRC VIP PATH       one HTTP/1.1 request with "Connection: close";
                                                reads to EOF, so the server closes first
  lsnat-clients.py pool SECONDS MAX VIP SRC..   many short sessions: one thread per SRC, each
                                                alternating one HTTP GET (own connection, client
                                                closes) and one UDP exchange (own socket), until
                                                SECONDS pass or MAX sessions were started in all;
                                                a member that does not answer costs a short
                                                timeout (connect 2 s, UDP 1.5 s), not a failure
  lsnat-clients.py fig1 SRC_A VIP SRC_B         RFC 2391 figure 1: A:2745 -> VIP:80 (HTTP) and,
                                                while it is open, B:3200 -> VIP:23 (telnet)
  lsnat-clients.py idle-telnet SRC VIP GAPS     port 23 session: a line, then for each GAP (seconds,
                                                comma-separated) a pause and another line; quit
  lsnat-clients.py idle-http SRC VIP GAPS       HTTP keep-alive: a GET, then a pause and a GET per GAP;
                                                the client closes
  lsnat-clients.py idle-udp SRC VIP GAPS        one UDP socket: an exchange, then a pause and an
                                                exchange per GAP
  lsnat-clients.py clash SRC_A VIP SRC_B PORT N  A:PORT -> VIP:80 held open while N more HTTP
                                                sessions from A run, then B:PORT -> VIP:80: with
                                                N+1 members and round robin, A and B share a member
                                                and a client port (an LS-NAPT port clash)
  lsnat-clients.py probe SRC VIP PROTO PORT     one TCP connect (SYN) or UDP datagram to a port
                                                that should not answer; never fails
  lsnat-clients.py gre SRC VIP COUNT            COUNT GRE (protocol 47) datagrams on a raw socket,
                                                each answered by the member's GRE echo
"""
import http.client
import socket
import struct
import sys
import time

from clientlib import TIMEOUT, addr, log, read_to_eof


def udp(src, vip, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    s.bind(addr(src))
    for i in range(int(count)):
        s.sendto(f"request {i} from {src}".encode(), (vip, 9999))
        data, peer = s.recvfrom(2048)
        log(f"udp {s.getsockname()} <- {peer}: {data.decode().strip()}")
        time.sleep(0.05)
    s.close()


def tcp_connect(src, vip, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(TIMEOUT)
    s.bind(addr(src))
    s.connect((vip, port))
    return s


def readline(f):
    line = f.readline(512)
    log(f"  <- {line!r}")
    return line


def telnet_session(s, lines):
    f = s.makefile("rb")
    readline(f)  # banner
    for line in lines:
        s.sendall(line.encode() + b"\r\n")
        readline(f)
        time.sleep(0.05)
    s.sendall(b"quit\r\n")
    readline(f)  # bye
    rest = f.read()  # until the server's FIN
    log(f"  server closed first (trailing {rest!r})")
    f.close()
    s.close()


def telnet(src, vip, *lines):
    s = tcp_connect(src, vip, 23)
    log(f"telnet {s.getsockname()} -> {vip}:23")
    telnet_session(s, lines)


def rst(src, vip):
    s = tcp_connect(src, vip, 23)
    log(f"rst {s.getsockname()} -> {vip}:23")
    f = s.makefile("rb")
    readline(f)
    s.sendall(b"about to abort\r\n")
    readline(f)
    f.close()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # RST
    log("  aborted with RST")


def http_get(conn, path):
    conn.request("GET", path, headers={"User-Agent": "lsnat-lab"})
    r = conn.getresponse()
    body = r.read()
    log(f"  GET {path} -> {r.status} {body.decode().strip()}")


def http_session(src, vip, *paths):
    conn = http.client.HTTPConnection(vip, 80, timeout=TIMEOUT, source_address=addr(src))
    conn.connect()
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    log(f"http {conn.sock.getsockname()} -> {vip}:80")
    for p in paths:
        http_get(conn, p)
        time.sleep(0.05)
    conn.close()


def httpclose(src, vip, path):
    s = tcp_connect(src, vip, 80)
    log(f"httpclose {s.getsockname()} -> {vip}:80")
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {vip}\r\nUser-Agent: lsnat-lab\r\n"
              "Connection: close\r\n\r\n".encode())
    status, body = read_to_eof(s)
    log(f"  {status} ... body {body!r}")
    log("  server closed first")
    s.close()


def fig1(src_a, vip, src_b):
    a = http.client.HTTPConnection(vip, 80, timeout=TIMEOUT, source_address=(src_a, 2745))
    a.connect()
    log(f"A http {a.sock.getsockname()} -> {vip}:80")
    http_get(a, "/index.html")
    time.sleep(0.2)
    b = tcp_connect(f"{src_b}:3200", vip, 23)
    log(f"B telnet {b.getsockname()} -> {vip}:23")
    fb = b.makefile("rb")
    readline(fb)
    b.sendall(b"hello from B\r\n")
    readline(fb)
    time.sleep(0.1)
    http_get(a, "/second.html")
    a.close()  # A closes its HTTP connection first (client FIN)
    time.sleep(0.2)
    b.sendall(b"quit\r\n")
    readline(fb)
    rest = fb.read()
    log(f"  B: server closed first (trailing {rest!r})")
    fb.close()
    b.close()


def pool(seconds, maximum, vip, *sources):
    import threading
    deadline = time.monotonic() + float(seconds)
    lock = threading.Lock()
    started = [0]
    results = {}

    def take():
        with lock:
            if started[0] >= int(maximum) or time.monotonic() >= deadline:
                return None
            started[0] += 1
            return started[0]

    def note(kind, outcome):
        with lock:
            results[(kind, outcome)] = results.get((kind, outcome), 0) + 1

    def worker(src, phase):
        i = phase
        while True:
            n = take()
            if n is None:
                return
            if i % 2 == 0:
                try:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.settimeout(2.0)
                    s.bind((src, 0))
                    s.connect((vip, 80))
                    s.settimeout(2.0)
                    s.sendall(f"GET /p{n} HTTP/1.1\r\nHost: {vip}\r\n\r\n".encode())
                    data = s.recv(4096)
                    s.close()
                    note("tcp", "answered" if data.startswith(b"HTTP/1.1 200") else "short")
                except OSError:
                    s.close()
                    note("tcp", "no answer")
            else:
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.settimeout(1.5)
                u.bind((src, 0))
                try:
                    u.sendto(f"pool {n} from {src}".encode(), (vip, 9999))
                    u.recvfrom(2048)
                    note("udp", "answered")
                except OSError:
                    note("udp", "no answer")
                u.close()
            i += 1
            time.sleep(0.25)

    threads = [threading.Thread(target=worker, args=(src, k % 2)) for k, src in enumerate(sources)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log(f"pool: {started[0]} sessions started; " +
        ", ".join(f"{k} {o}: {n}" for (k, o), n in sorted(results.items())))
def gaps(spec):
    return [float(g) for g in spec.split(",") if g]


def idle_telnet(src, vip, spec):
    s = tcp_connect(src, vip, 23)
    log(f"idle-telnet {s.getsockname()} -> {vip}:23 gaps {spec}")
    f = s.makefile("rb")
    readline(f)  # banner
    s.sendall(b"line 0\r\n")
    readline(f)
    for i, g in enumerate(gaps(spec), 1):
        time.sleep(g)
        s.sendall(f"line {i} after {g:g}s idle\r\n".encode())
        readline(f)
    s.sendall(b"quit\r\n")
    readline(f)
    rest = f.read()
    log(f"  server closed first (trailing {rest!r})")
    f.close()
    s.close()


def idle_http(src, vip, spec):
    conn = http.client.HTTPConnection(vip, 80, timeout=TIMEOUT, source_address=addr(src))
    conn.connect()
    log(f"idle-http {conn.sock.getsockname()} -> {vip}:80 gaps {spec}")
    http_get(conn, "/idle0")
    for i, g in enumerate(gaps(spec), 1):
        time.sleep(g)
        http_get(conn, f"/idle{i}")
    conn.close()


def idle_udp(src, vip, spec):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    s.bind(addr(src))
    waits = [0.0] + gaps(spec)
    for i, g in enumerate(waits):
        time.sleep(g)
        s.sendto(f"request {i} after {g:g}s idle".encode(), (vip, 9999))
        data, peer = s.recvfrom(2048)
        log(f"udp {s.getsockname()} <- {peer}: {data.decode().strip()}")
def clash(src_a, vip, src_b, port, fillers):
    a = http.client.HTTPConnection(vip, 80, timeout=TIMEOUT, source_address=(src_a, int(port)))
    a.connect()
    log(f"A http {a.sock.getsockname()} -> {vip}:80 (held open)")
    http_get(a, "/clash-a")
    for i in range(int(fillers)):
        http_session(src_a, vip, f"/filler{i}")
        time.sleep(0.1)
    b = http.client.HTTPConnection(vip, 80, timeout=TIMEOUT, source_address=(src_b, int(port)))
    b.connect()
    log(f"B http {b.sock.getsockname()} -> {vip}:80 (same client port as A)")
    http_get(b, "/clash-b")
    http_get(a, "/clash-a2")
    b.close()
    time.sleep(0.1)
    a.close()


def probe(src, vip, proto, port):
    if proto == "tcp":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(1.5)
        s.bind((src, 0))
        try:
            s.connect((vip, int(port)))
            log(f"tcp probe {vip}:{port}: connected (unexpected)")
        except OSError as e:
            log(f"tcp probe {vip}:{port}: {e}")
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1.0)
        s.bind((src, 0))
        s.sendto(b"probe", (vip, int(port)))
        try:
            s.recvfrom(2048)
            log(f"udp probe {vip}:{port}: answered (unexpected)")
        except OSError as e:
            log(f"udp probe {vip}:{port}: {e}")
    s.close()


def gre(src, vip, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)
    s.settimeout(TIMEOUT)
    s.bind((src, 0))
    for i in range(int(count)):
        # GRE version 0, no options, protocol type 0x88B5 (IEEE local experimental), a text payload.
        s.sendto(struct.pack("!HH", 0, 0x88B5) + f"gre {i} from {src}".encode(), (vip, 0))
        while True:
            data, peer = s.recvfrom(2048)
            ihl = (data[0] & 0x0F) * 4
            if data[16:20] == socket.inet_aton(src):
                break
        log(f"gre {src} <- {peer[0]}: {data[ihl + 4:].decode(errors='replace')}")
        time.sleep(0.05)
    s.close()


def main():
    cmd, *args = sys.argv[1:]
    {"udp": udp, "telnet": telnet, "rst": rst, "http": http_session, "httpclose": httpclose, "fig1": fig1,
     "pool": pool, "idle-telnet": idle_telnet, "idle-http": idle_http, "idle-udp": idle_udp,
     "clash": clash, "probe": probe, "gre": gre}[cmd](*args)


if __name__ == "__main__":
    main()
