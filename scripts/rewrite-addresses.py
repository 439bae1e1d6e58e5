#!/usr/bin/env python3
"""Rewrite IPv4 addresses in a pcap file per a mapping table (pure python3, no scapy).

  rewrite-addresses.py [--table FILE] [--map OLD=NEW ...] IN.pcap OUT.pcap [--text IN OUT ...]

- Reads classic pcap (microsecond or nanosecond magic, either byte order) and writes the same
  format (same magic, byte order, snaplen, link type, timestamps).
- Link types: Ethernet (with 802.1Q/802.1ad tags), Linux SLL, Linux SLL2, raw IPv4.
- IPv4: source and destination are mapped; the IPv4 header checksum is recomputed in full.
  TCP, UDP and ICMP checksums are recomputed in full over the whole segment when the packet is
  complete (not truncated, not a fragment); otherwise they are updated incrementally (RFC 1624)
  for the address change. A UDP checksum of 0 (none) stays 0.
- ICMP errors (types 3, 4, 5, 11, 12): the quoted IPv4 header's addresses are mapped too, its
  header checksum is recomputed, the quoted TCP/UDP checksum (if quoted) is updated
  incrementally for the address change, and the ICMP checksum is recomputed in full.
- ARP (Ethernet/IPv4): sender and target protocol addresses are mapped.
- --text IN OUT maps whole-address occurrences in a text file (e.g. a conntrack log).

The table file has one "OLD NEW" pair a line; '#' starts a comment.
"""
import argparse
import re
import struct
import sys

ICMP_ERRORS = {3, 4, 5, 11, 12}


def ip2b(s):
    parts = [int(p) for p in s.split(".")]
    if len(parts) != 4 or any(not 0 <= p <= 255 for p in parts):
        raise ValueError(f"bad IPv4 address {s!r}")
    return bytes(parts)


def b2ip(b):
    return ".".join(str(x) for x in b)


def csum(data):
    """Internet checksum (one's complement of the one's complement sum)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def csum_adjust(check, old, new):
    """RFC 1624 eqn 3: HC' = ~(~HC + ~m + m'), for 16-bit words of old/new (equal length)."""
    s = (~check) & 0xFFFF
    for i in range(0, len(old), 2):
        s += (~struct.unpack("!H", old[i:i + 2])[0]) & 0xFFFF
        s += struct.unpack("!H", new[i:i + 2])[0]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


class Rewriter:
    def __init__(self, table):
        self.table = {ip2b(k): ip2b(v) for k, v in table.items()}
        self.stats = {"packets": 0, "ipv4": 0, "rewritten": 0, "arp": 0, "bad_input_l4": 0,
                      "bad_input_ip": 0, "incremental": 0}

    def m(self, a):
        return self.table.get(bytes(a), bytes(a))

    # ---- IPv4 ------------------------------------------------------------------------------
    def ipv4(self, pkt, off):
        """Rewrite the IPv4 packet starting at pkt[off] in place (pkt is a bytearray)."""
        if len(pkt) - off < 20 or pkt[off] >> 4 != 4:
            return
        ihl = (pkt[off] & 0x0F) * 4
        if ihl < 20 or len(pkt) - off < ihl:
            return
        self.stats["ipv4"] += 1
        hdr_ok = csum(bytes(pkt[off:off + ihl])) == 0
        if not hdr_ok:
            self.stats["bad_input_ip"] += 1
        total = struct.unpack("!H", pkt[off + 2:off + 4])[0]
        frag = struct.unpack("!H", pkt[off + 6:off + 8])[0]
        more_frags, frag_off = frag & 0x2000, frag & 0x1FFF
        proto = pkt[off + 9]
        old_src, old_dst = bytes(pkt[off + 12:off + 16]), bytes(pkt[off + 16:off + 20])
        new_src, new_dst = self.m(old_src), self.m(old_dst)
        changed = (old_src, old_dst) != (new_src, new_dst)
        pkt[off + 12:off + 16] = new_src
        pkt[off + 16:off + 20] = new_dst
        pkt[off + 10:off + 12] = b"\0\0"
        pkt[off + 10:off + 12] = struct.pack("!H", csum(bytes(pkt[off:off + ihl])))
        if changed:
            self.stats["rewritten"] += 1

        l4 = off + ihl
        end = off + total
        complete = end <= len(pkt) and total >= ihl and not more_frags and frag_off == 0
        if frag_off != 0:
            return  # no transport header in a non-first fragment
        seg = pkt[l4:min(end, len(pkt))]
        if proto in (6, 17):
            cko = 16 if proto == 6 else 6
            if len(seg) < cko + 2:
                return
            old_ck = struct.unpack("!H", seg[cko:cko + 2])[0]
            if proto == 17 and old_ck == 0:
                return  # no UDP checksum: keep none
            if complete:
                pseudo_old = old_src + old_dst + struct.pack("!BBH", 0, proto, len(seg))
                if csum(pseudo_old + bytes(seg)) != 0:
                    self.stats["bad_input_l4"] += 1
                seg[cko:cko + 2] = b"\0\0"
                pseudo = new_src + new_dst + struct.pack("!BBH", 0, proto, len(seg))
                ck = csum(pseudo + bytes(seg))
                if proto == 17 and ck == 0:
                    ck = 0xFFFF
            else:
                self.stats["incremental"] += 1
                ck = csum_adjust(old_ck, old_src + old_dst, new_src + new_dst)
                if proto == 17 and ck == 0:
                    ck = 0xFFFF
            seg[cko:cko + 2] = struct.pack("!H", ck)
            pkt[l4:l4 + len(seg)] = seg
        elif proto == 1:
            if len(seg) < 8:
                return
            old_ck = struct.unpack("!H", seg[2:4])[0]
            if complete and csum(bytes(seg)) != 0:
                self.stats["bad_input_l4"] += 1
            if seg[0] in ICMP_ERRORS and len(seg) >= 28:
                self.embedded(seg, 8)
            if complete:
                seg[2:4] = b"\0\0"
                seg[2:4] = struct.pack("!H", csum(bytes(seg)))
            else:
                # Truncated capture: fold in the difference of everything we changed.
                self.stats["incremental"] += 1
                orig = bytes(pkt[l4:l4 + len(seg)])
                seg[2:4] = struct.pack("!H", old_ck)
                ck = csum_adjust(old_ck, orig[:len(orig) // 2 * 2], bytes(seg[:len(seg) // 2 * 2]))
                seg[2:4] = struct.pack("!H", ck)
            pkt[l4:l4 + len(seg)] = seg

    def embedded(self, seg, off):
        """Rewrite the IPv4 header quoted in an ICMP error at seg[off] (in place)."""
        if seg[off] >> 4 != 4:
            return
        ihl = (seg[off] & 0x0F) * 4
        if ihl < 20 or len(seg) - off < ihl:
            return
        proto = seg[off + 9]
        old_src, old_dst = bytes(seg[off + 12:off + 16]), bytes(seg[off + 16:off + 20])
        new_src, new_dst = self.m(old_src), self.m(old_dst)
        seg[off + 12:off + 16] = new_src
        seg[off + 16:off + 20] = new_dst
        seg[off + 10:off + 12] = b"\0\0"
        seg[off + 10:off + 12] = struct.pack("!H", csum(bytes(seg[off:off + ihl])))
        l4 = off + ihl
        frag_off = struct.unpack("!H", seg[off + 6:off + 8])[0] & 0x1FFF
        if frag_off:
            return
        cko = {6: 16, 17: 6}.get(proto)
        if cko is None or len(seg) < l4 + cko + 2:
            return
        old_ck = struct.unpack("!H", seg[l4 + cko:l4 + cko + 2])[0]
        if proto == 17 and old_ck == 0:
            return
        ck = csum_adjust(old_ck, old_src + old_dst, new_src + new_dst)
        if proto == 17 and ck == 0:
            ck = 0xFFFF
        seg[l4 + cko:l4 + cko + 2] = struct.pack("!H", ck)

    def arp(self, pkt, off):
        if len(pkt) - off < 28:
            return
        htype, ptype, hlen, plen = struct.unpack("!HHBB", pkt[off:off + 6])
        if ptype != 0x0800 or hlen != 6 or plen != 4:
            return
        self.stats["arp"] += 1
        pkt[off + 14:off + 18] = self.m(pkt[off + 14:off + 18])
        pkt[off + 24:off + 28] = self.m(pkt[off + 24:off + 28])

    def l3(self, pkt, off, ethertype):
        if ethertype == 0x0800:
            self.ipv4(pkt, off)
        elif ethertype == 0x0806:
            self.arp(pkt, off)

    # ---- link layers -----------------------------------------------------------------------
    def frame(self, linktype, pkt):
        self.stats["packets"] += 1
        if linktype == 1:  # Ethernet
            if len(pkt) < 14:
                return
            off, et = 12, struct.unpack("!H", pkt[12:14])[0]
            while et in (0x8100, 0x88A8, 0x9100) and len(pkt) >= off + 6:
                off += 4
                et = struct.unpack("!H", pkt[off:off + 2])[0]
            self.l3(pkt, off + 2, et)
        elif linktype == 113:  # Linux SLL
            if len(pkt) >= 16:
                self.l3(pkt, 16, struct.unpack("!H", pkt[14:16])[0])
        elif linktype == 276:  # Linux SLL2
            if len(pkt) >= 20:
                self.l3(pkt, 20, struct.unpack("!H", pkt[0:2])[0])
        elif linktype in (101, 228):  # raw IP / IPv4
            if pkt and pkt[0] >> 4 == 4:
                self.ipv4(pkt, 0)
        else:
            raise SystemExit(f"unsupported link type {linktype}")


def rewrite_pcap(src, dst, rw):
    with open(src, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise SystemExit(f"{src}: too short for a pcap header")
    magic = data[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<",
              b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}.get(magic)
    if endian is None:
        raise SystemExit(f"{src}: not a classic pcap file (pcapng is not supported)")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    out = [data[:24]]
    pos = 24
    while pos + 16 <= len(data):
        ts_s, ts_f, incl, orig = struct.unpack(endian + "IIII", data[pos:pos + 16])
        body = bytearray(data[pos + 16:pos + 16 + incl])
        if len(body) != incl:
            raise SystemExit(f"{src}: truncated record at offset {pos}")
        rw.frame(linktype, body)
        out.append(data[pos:pos + 16])
        out.append(bytes(body))
        pos += 16 + incl
    if pos != len(data):
        sys.stderr.write(f"{src}: {len(data) - pos} trailing bytes ignored\n")
    with open(dst, "wb") as f:
        f.write(b"".join(out))


def rewrite_text(src, dst, table):
    pat = re.compile(r"(?<![0-9.])(" + "|".join(re.escape(k) for k in
                     sorted(table, key=len, reverse=True)) + r")(?![0-9])(?!\.[0-9])")
    with open(src) as f:
        text = f.read()
    with open(dst, "w") as f:
        f.write(pat.sub(lambda mo: table[mo.group(1)], text))


def load_table(args):
    table = {}
    if args.table:
        with open(args.table) as f:
            for n, line in enumerate(f, 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                parts = line.split()
                if len(parts) != 2:
                    raise SystemExit(f"{args.table}:{n}: expected 'OLD NEW'")
                table[parts[0]] = parts[1]
    for spec in args.map or []:
        old, new = spec.split("=")
        table[old.strip()] = new.strip()
    for k, v in table.items():
        ip2b(k), ip2b(v)
    if not table:
        raise SystemExit("empty mapping table")
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", help="file of 'OLD NEW' address pairs")
    ap.add_argument("--map", action="append", metavar="OLD=NEW")
    ap.add_argument("--text", nargs=2, action="append", metavar=("IN", "OUT"), default=[])
    ap.add_argument("input")
    ap.add_argument("output")
    args = ap.parse_args()
    table = load_table(args)
    rw = Rewriter(table)
    rewrite_pcap(args.input, args.output, rw)
    for src, dst in args.text:
        rewrite_text(src, dst, table)
    print(" ".join(f"{k}={v}" for k, v in rw.stats.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
