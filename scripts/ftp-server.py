#!/usr/bin/env python3
"""A minimal FTP server (RFC 959, RFC 2428) for the LSNAT lab's FTP recording: run inside a member
namespace. Python standard library only.

  ftp-server.py ADDRESS SECONDS PASV_BASE

Listens on ADDRESS:21 and exits after SECONDS (or on SIGINT/SIGTERM). Anonymous: USER and PASS
accept anything. Commands: USER PASS SYST TYPE PWD CWD NOOP LIST NLST RETR QUIT, and for the data
connection PASV, EPSV (passive: this server listens on PASV_BASE, PASV_BASE+1, ... in turn, ten
ports, and names its OWN address in the 227 reply, as a real server behind an LSNAT router does),
PORT and EPRT (active: the server connects from ADDRESS:20 to the address the client named).
One file, `lsnat.txt`, 3000 bytes of deterministic text. Every socket operation has a timeout.
"""
import signal
import socket
import socketserver
import sys
import threading

ADDR = sys.argv[1]
LIFETIME = float(sys.argv[2])
PASV_BASE = int(sys.argv[3])
PASV_PORTS = 10
TIMEOUT = 5.0

FILE_NAME = "lsnat.txt"
FILE_DATA = b"".join(f"line {i:03d} of lsnat.txt, served by an RFC 2391 pool member\r\n".encode()
                     for i in range(64))[:3000]
LISTING = (f"-rw-r--r--   1 ftp      ftp          {len(FILE_DATA)} Jan 01  2000 {FILE_NAME}\r\n"
           "drwxr-xr-x   2 ftp      ftp          4096 Jan 01  2000 pub\r\n").encode()

_next_port = 0
_port_lock = threading.Lock()


def next_pasv_port():
    global _next_port
    with _port_lock:
        port = PASV_BASE + _next_port % PASV_PORTS
        _next_port += 1
    return port


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


class Ftp(socketserver.StreamRequestHandler):
    timeout = TIMEOUT * 4

    def reply(self, text):
        log(f"ftp {self.peer} -> {text}")
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.peer = f"{self.client_address[0]}:{self.client_address[1]}"
        self.listener = None  # passive: our listening data socket
        self.active = None    # active: (host, port) the client named
        self.cwd = "/"
        log(f"ftp {self.peer} open")
        self.reply(f"220 lsnat-lab FTP on {ADDR}")
        try:
            while True:
                line = self.rfile.readline(512)
                if not line:
                    log(f"ftp {self.peer} closed by client")
                    return
                text = line.decode(errors="replace").rstrip("\r\n")
                log(f"ftp {self.peer} <- {text}")
                cmd, _, arg = text.partition(" ")
                cmd = cmd.upper()
                if cmd == "QUIT":
                    self.reply("221 Goodbye.")
                    log(f"ftp {self.peer} quit: server closes first")
                    return
                handler = getattr(self, "cmd_" + cmd, None)
                if handler is None:
                    self.reply(f"502 {cmd} not implemented.")
                else:
                    handler(arg)
        except (ConnectionError, socket.timeout) as e:
            log(f"ftp {self.peer} ended: {e!r}")
        finally:
            self.drop_listener()

    # --- login and state ---
    def cmd_USER(self, arg):
        self.reply("331 Anonymous login ok, send any password.")

    def cmd_PASS(self, arg):
        self.reply("230 Login successful.")

    def cmd_SYST(self, arg):
        self.reply("215 UNIX Type: L8")

    def cmd_TYPE(self, arg):
        self.reply(f"200 Type set to {arg.upper() or 'A'}.")

    def cmd_NOOP(self, arg):
        self.reply("200 OK.")

    def cmd_PWD(self, arg):
        self.reply(f'257 "{self.cwd}" is the current directory.')

    def cmd_CWD(self, arg):
        self.cwd = arg if arg.startswith("/") else "/" + arg
        self.reply("250 Directory changed.")

    # --- data connection set-up ---
    def drop_listener(self):
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def listen(self):
        self.drop_listener()
        self.active = None
        port = next_pasv_port()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(TIMEOUT)
        s.bind((ADDR, port))
        s.listen(1)
        self.listener = s
        return port

    def cmd_PASV(self, arg):
        port = self.listen()
        h = ADDR.replace(".", ",")
        self.reply(f"227 Entering Passive Mode ({h},{port >> 8},{port & 0xFF}).")

    def cmd_EPSV(self, arg):
        port = self.listen()
        self.reply(f"229 Entering Extended Passive Mode (|||{port}|)")

    def cmd_PORT(self, arg):
        try:
            n = [int(x) for x in arg.split(",")]
            assert len(n) == 6
        except (ValueError, AssertionError):
            self.reply("501 Bad PORT argument.")
            return
        self.drop_listener()
        self.active = (".".join(map(str, n[:4])), n[4] * 256 + n[5])
        self.reply("200 PORT command successful.")

    def cmd_EPRT(self, arg):
        parts = arg.split(arg[:1]) if arg else []
        if len(parts) < 5 or parts[1] != "1":
            self.reply("522 Network protocol not supported, use (1)")
            return
        self.drop_listener()
        self.active = (parts[2], int(parts[3]))
        self.reply("200 EPRT command successful.")

    def open_data(self):
        """The data connection: accept on the passive listener, or connect from port 20."""
        if self.listener is not None:
            conn, peer = self.listener.accept()
            self.drop_listener()
            log(f"ftp {self.peer} data accepted from {peer[0]}:{peer[1]}")
        elif self.active is not None:
            conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            conn.settimeout(TIMEOUT)
            conn.bind((ADDR, 20))
            conn.connect(self.active)
            log(f"ftp {self.peer} data connected {ADDR}:20 -> {self.active[0]}:{self.active[1]}")
            self.active = None
        else:
            return None
        conn.settimeout(TIMEOUT)
        return conn

    def transfer(self, what, data):
        if self.listener is None and self.active is None:
            self.reply("425 Use PORT, EPRT, PASV or EPSV first.")
            return
        passive = self.listener is not None
        try:
            if passive:  # the client connects before it sends the command
                conn = self.open_data()
                self.reply(f"150 Opening BINARY mode data connection for {what} ({len(data)} bytes).")
            else:
                self.reply(f"150 Opening BINARY mode data connection for {what} ({len(data)} bytes).")
                conn = self.open_data()
        except OSError as e:
            log(f"ftp {self.peer} data connection failed: {e!r}")
            self.drop_listener()
            self.active = None
            self.reply("425 Can't open data connection.")
            return
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)  # the server closes the data connection first
        try:
            while conn.recv(512):
                pass
        except OSError:
            pass
        conn.close()
        self.reply("226 Transfer complete.")

    def cmd_LIST(self, arg):
        self.transfer("file list", LISTING)

    def cmd_NLST(self, arg):
        self.transfer("file list", f"{FILE_NAME}\r\npub\r\n".encode())

    def cmd_RETR(self, arg):
        if arg.rsplit("/", 1)[-1] != FILE_NAME:
            self.reply("550 No such file.")
            return
        self.transfer(FILE_NAME, FILE_DATA)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    srv = Server((ADDR, 21), Ftp)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log(f"ftp server up on {ADDR}:21, passive ports {PASV_BASE}-{PASV_BASE + PASV_PORTS - 1}, "
        f"{len(FILE_DATA)}-byte {FILE_NAME}, for at most {LIFETIME:g} s")
    stop.wait(LIFETIME)
    log("ftp server stopping")


if __name__ == "__main__":
    main()
