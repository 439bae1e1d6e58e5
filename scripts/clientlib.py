"""What the lab's client scripts share (lsnat-clients.py, edges-clients.py): the socket
timeout, SRC[:PORT] parsing and line-buffered logging. Imported from the scripts' own folder."""

TIMEOUT = 5.0


def addr(spec):
    """SRC or SRC:PORT -> (host, port); port 0 lets the kernel choose."""
    if ":" in spec:
        host, port = spec.split(":")
        return host, int(port)
    return spec, 0


def log(msg):
    print(msg, flush=True)
