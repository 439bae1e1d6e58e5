#!/usr/bin/env python3
"""Pool member services for the edge-case recording (record-edges.sh): run inside a member
namespace. Bounded by the caller's `timeout`; stops on SIGINT/SIGTERM.

  edges-servers.py ADDRESS UDP_PORT...

- HTTP/1.1 on TCP 80, keep-alive. `GET /reset` makes the member abort the connection with an
  RST (SO_LINGER 0, then close) instead of answering; `Connection: close` makes it close first.
- UDP echo on each UDP_PORT (64 KiB buffer, so fragmented datagrams are echoed whole; the
  reply is fragmented again by the member's kernel). A datagram starting with `slow` is
  answered after 0.5 s (the client has closed its socket by then: port unreachable from the
  client).
- Nothing listens on other UDP ports: a datagram to one gets an ICMP port unreachable from
  the member's kernel.
"""
import signal
import socket
import socketserver
import struct
import sys
import threading
import time

ADDR = sys.argv[1]
UDP_PORTS = [int(p) for p in sys.argv[2:]]


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


class Http(socketserver.StreamRequestHandler):
    def handle(self):
        peer = f"{self.client_address[0]}:{self.client_address[1]}"
        while True:
            line = self.rfile.readline(1024)
            if not line:
                log(f"http {peer} closed by client")
                return
            path = line.split()[1].decode() if len(line.split()) > 1 else "/"
            close = False
            while True:
                h = self.rfile.readline(1024)
                if h in (b"\r\n", b"\n", b""):
                    break
                if h.lower().startswith(b"connection:") and b"close" in h.lower():
                    close = True
            if path == "/reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                log(f"http {peer} GET /reset: aborting with RST")
                self.connection.close()
                return
            body = f"hello from {ADDR} path {path}\n".encode()
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                    + ("Connection: close\r\n" if close else "") + "\r\n").encode()
            self.wfile.write(head + body)
            self.wfile.flush()
            log(f"http {peer} GET {path}")
            if close:
                log(f"http {peer}: server closes first")
                return


class TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def udp_echo(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ADDR, port))
    while True:
        data, peer = s.recvfrom(65535)
        log(f"udp :{port} {peer[0]}:{peer[1]} {len(data)} bytes {data[:24]!r}")
        if data.startswith(b"slow"):
            time.sleep(0.5)
        s.sendto(f"{ADDR} echo: ".encode() + data, peer)


def main():
    web = TCPServer((ADDR, 80), Http)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    for p in UDP_PORTS:
        threading.Thread(target=udp_echo, args=(p,), daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log(f"edge servers up on {ADDR}: tcp 80, udp {UDP_PORTS}")
    stop.wait()
    log("edge servers stopping")


if __name__ == "__main__":
    main()
