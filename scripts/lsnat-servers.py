#!/usr/bin/env python3
"""Pool member services for the LSNAT lab: run inside a member namespace.

  lsnat-servers.py ADDRESS

- HTTP/1.1 on TCP 80 (keep-alive; a "Connection: close" request makes the server close first)
- UDP echo on 9999: replies "<member> echo: <data>"
- a line-echo "telnet" on TCP 23: greets, echoes each line, and on "quit" says bye and closes
  first (server-initiated FIN)
- a GRE echo (IP protocol 47, raw socket): answers each GRE datagram addressed to ADDR

Stops on SIGINT/SIGTERM (the caller wraps it in `timeout`).
"""
import http.server
import signal
import socket
import socketserver
import sys
import threading

ADDR = sys.argv[1]


class Web(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lsnat-lab/1"
    sys_version = ""

    def do_GET(self):
        body = f"hello from {ADDR} path {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write(f"http {self.client_address[0]}:{self.client_address[1]} {fmt % args}\n")


class Telnet(socketserver.StreamRequestHandler):
    def handle(self):
        peer = f"{self.client_address[0]}:{self.client_address[1]}"
        sys.stderr.write(f"telnet {peer} open\n")
        self.wfile.write(f"lsnat telnet on {ADDR}\r\n".encode())
        while True:
            try:
                line = self.rfile.readline(512)
            except ConnectionResetError:
                sys.stderr.write(f"telnet {peer} reset by peer\n")
                return
            if not line:
                sys.stderr.write(f"telnet {peer} closed by client\n")
                return
            text = line.strip()
            if text == b"quit":
                self.wfile.write(b"bye\r\n")
                sys.stderr.write(f"telnet {peer} quit: server closes first\n")
                return
            self.wfile.write(b"echo: " + text + b"\r\n")


class WebServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS query that would send
        # packets through the lab before the captures start: skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def udp_echo():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ADDR, 9999))
    while True:
        data, peer = s.recvfrom(2048)
        sys.stderr.write(f"udp {peer[0]}:{peer[1]} {data!r}\n")
        s.sendto(f"{ADDR} echo: ".encode() + data, peer)


def gre_echo():
    # GRE (protocol 47) on a raw socket: answer each datagram with the same GRE header and the
    # payload prefixed by this member's address (the kernel builds the IP header).
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)
    except OSError as e:
        sys.stderr.write(f"gre echo unavailable: {e}\n")
        return
    while True:
        data, peer = s.recvfrom(2048)
        ihl = (data[0] & 0x0F) * 4
        if data[16:20] != socket.inet_aton(ADDR):
            continue
        sys.stderr.write(f"gre {peer[0]} {data[ihl:]!r}\n")
        s.sendto(data[ihl:ihl + 4] + f"{ADDR} echo: ".encode() + data[ihl + 4:], (peer[0], 0))


def main():
    web = WebServer((ADDR, 80), Web)
    tel = TCPServer((ADDR, 23), Telnet)
    for target in (web.serve_forever, tel.serve_forever, udp_echo, gre_echo):
        threading.Thread(target=target, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sys.stderr.write(f"servers up on {ADDR}\n")
    sys.stderr.flush()
    stop.wait()
    sys.stderr.write("servers stopping\n")


if __name__ == "__main__":
    main()
