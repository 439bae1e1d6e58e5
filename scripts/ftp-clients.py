#!/usr/bin/env python3
"""FTP client sessions for the LSNAT lab's FTP recording (ftplib, standard library only): run in
the clients namespace against ftp-server.py behind the router. Every socket has a timeout (the
caller also wraps each run in `timeout`). Each session logs in anonymously, transfers, and quits;
after the 221 reply it reads to EOF, so the server closes the control connection first.

  ftp-clients.py pasv SRC:PORT VIP DATA_PORT   SYST, PWD, TYPE A, PASV + LIST, TYPE I, PASV + RETR
                                               (data connections from DATA_PORT, DATA_PORT+1)
  ftp-clients.py pasv1 SRC:PORT VIP DATA_PORT  CWD, TYPE I, PASV + RETR
  ftp-clients.py epsv SRC:PORT VIP DATA_PORT   TYPE I, EPSV (parse229, own connect) + RETR
  ftp-clients.py port SRC:PORT VIP DATA_PORT   TYPE I, active mode: PORT (set_pasv(False)) + RETR,
                                               listening on SRC:DATA_PORT
  ftp-clients.py eprt SRC:PORT VIP DATA_PORT   TYPE I, EPRT |1|SRC|DATA_PORT| (own listening
                                               socket) + RETR
  ftp-clients.py clash SRC:PORT VIP DATA_PORT SRC2:PORT2 FILLER...
                                               an active-port clash: control X from SRC:PORT sends
                                               PORT SRC,DATA_PORT and waits; each FILLER (SRC:PORT)
                                               logs in and quits (advancing the router's round
                                               robin); control Y from SRC2:PORT2 sends
                                               PORT SRC2,DATA_PORT while X's expectation is still
                                               pending; then X and Y each RETR (X first) and quit.
                                               With two fillers, X and Y reach the same member.

The passive modes check that the 227 reply names the VIP (the router's FTP helper rewrote the
member's address) and connect to the address it names.
"""
import ftplib
import socket
import sys

from clientlib import TIMEOUT, addr, log

FILE = "lsnat.txt"


class Client(ftplib.FTP):
    # Use the address in the 227 reply (ftplib would otherwise use the control peer's address):
    # the data connection then depends on the router's rewrite of the reply.
    trust_server_pasv_ipv4_address = True
    data_port = 0

    def makepasv(self):
        host, port = super().makepasv()
        if host != self.sock.getpeername()[0]:
            raise RuntimeError(f"227 names {host}, not the VIP {self.sock.getpeername()[0]}: no ALG?")
        return host, port

    def makeport(self):
        # ftplib's own makeport, with a fixed port on the control connection's address.
        host = self.sock.getsockname()[0]
        sock = socket.create_server((host, self.data_port), family=self.af, backlog=1)
        sock.settimeout(self.timeout)
        self.sendport(host, self.data_port)
        return sock


def login(spec, vip, data_port):
    ftp = Client(timeout=TIMEOUT)
    ftp.set_debuglevel(1)  # every command and reply to stdout (the recording's clients.log)
    src = addr(spec)
    ftp.connect(vip, 21, timeout=TIMEOUT, source_address=src)
    log(f"ftp control {ftp.sock.getsockname()} -> {vip}:21")
    ftp.login()  # USER anonymous, PASS anonymous@
    ftp.data_port = data_port
    return ftp, src[0]


def quit_(ftp):
    ftp.voidcmd("QUIT")
    rest = ftp.file.read()  # until the server's FIN
    log(f"  server closed the control connection first (trailing {rest!r})")
    ftp.close()


def retr(ftp):
    chunks = []
    ftp.retrbinary(f"RETR {FILE}", chunks.append)
    data = b"".join(chunks)
    log(f"  RETR {FILE}: {len(data)} bytes")


def passive_data(ftp, src, port):
    ftp.source_address = (src, port)  # the next data connection's source


def pasv(spec, vip, data_port):
    ftp, src = login(spec, vip, int(data_port))
    ftp.sendcmd("SYST")
    ftp.sendcmd("PWD")
    passive_data(ftp, src, int(data_port))
    lines = []
    ftp.retrlines("LIST", lines.append)
    log(f"  LIST: {lines}")
    passive_data(ftp, src, int(data_port) + 1)
    retr(ftp)
    quit_(ftp)


def pasv1(spec, vip, data_port):
    ftp, src = login(spec, vip, int(data_port))
    ftp.sendcmd("CWD /pub")
    passive_data(ftp, src, int(data_port))
    retr(ftp)
    quit_(ftp)


def epsv(spec, vip, data_port):
    ftp, src = login(spec, vip, int(data_port))
    ftp.voidcmd("TYPE I")
    host, port = ftplib.parse229(ftp.sendcmd("EPSV"), ftp.sock.getpeername())
    data = socket.create_connection((host, port), TIMEOUT, source_address=(src, int(data_port)))
    log(f"  EPSV data {data.getsockname()} -> {host}:{port}")
    resp = ftp.sendcmd(f"RETR {FILE}")
    if not resp.startswith("1"):
        raise ftplib.error_reply(resp)
    n = read_data(data)
    log(f"  RETR {FILE}: {n} bytes")
    ftp.voidresp()
    quit_(ftp)


def port(spec, vip, data_port):
    ftp, src = login(spec, vip, int(data_port))
    ftp.set_pasv(False)
    retr(ftp)
    quit_(ftp)


def eprt(spec, vip, data_port):
    ftp, src = login(spec, vip, int(data_port))
    ftp.voidcmd("TYPE I")
    lsock = socket.create_server((src, int(data_port)), backlog=1)
    lsock.settimeout(TIMEOUT)
    ftp.voidcmd(f"EPRT |1|{src}|{data_port}|")
    active_retr(ftp, lsock, "EPRT")
    quit_(ftp)


def active_retr(ftp, lsock, label):
    """RETR over an active-mode data connection: the member connects to lsock."""
    resp = ftp.sendcmd(f"RETR {FILE}")
    if not resp.startswith("1"):
        raise ftplib.error_reply(resp)
    data, peer = lsock.accept()
    lsock.close()
    log(f"  {label} data {peer[0]}:{peer[1]} -> {data.getsockname()}")
    n = read_data(data)
    log(f"  RETR {FILE}: {n} bytes")
    ftp.voidresp()


def clash(spec, vip, data_port, spec2, *fillers):
    data_port = int(data_port)
    held = []
    for i, s in enumerate((spec, spec2)):
        if i == 1:
            for f in fillers:  # log in and out: one round-robin turn each
                ftp, _ = login(f, vip, 0)
                quit_(ftp)
        ftp, src = login(s, vip, data_port)
        ftp.voidcmd("TYPE I")
        lsock = socket.create_server((src, data_port), backlog=1)
        lsock.settimeout(TIMEOUT)
        ftp.sendport(src, data_port)  # PORT src,p: the member's reply is checked (200)
        log(f"  PORT {src}:{data_port} sent, RETR held")
        held.append((ftp, lsock))
    for ftp, lsock in held:
        active_retr(ftp, lsock, "PORT")
    for ftp, _ in held:
        quit_(ftp)


def read_data(s):
    s.settimeout(TIMEOUT)
    n = 0
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        n += len(chunk)
    s.close()  # after the server's FIN
    return n


MODES = {"pasv": pasv, "pasv1": pasv1, "epsv": epsv, "port": port, "eprt": eprt, "clash": clash}

if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else None
    if mode not in MODES or (len(sys.argv) < 6 if mode == "clash" else len(sys.argv) != 5):
        sys.exit(__doc__)
    MODES[sys.argv[1]](*sys.argv[2:])
