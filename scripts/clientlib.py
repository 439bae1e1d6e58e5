"""What the lab's client scripts share (lsnat-clients.py, edges-clients.py): the socket
timeout, SRC[:PORT] parsing, line-buffered logging and reading an HTTP answer to its end.
Imported from the scripts' own folder."""

TIMEOUT = 5.0


def addr(spec):
    """SRC or SRC:PORT -> (host, port); port 0 lets the kernel choose."""
    if ":" in spec:
        host, port = spec.split(":")
        return host, int(port)
    return spec, 0


def log(msg):
    print(msg, flush=True)


def read_to_eof(s):
    """Everything the peer sends until it closes: (status line, body)."""
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0].decode(), data.split(b"\r\n\r\n", 1)[-1]
