//! Helpers shared by the fuzz targets and the seed writer: the fixed configurations a fuzz
//! input picks from, the chunk format of `engine_packets`, and an independent checksum checker
//! (etherparse plus a plain RFC 1071 sum, none of lsnat's own checksum code).

use lsnat::engine::EngineConfig;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The repository root (the fuzz crate lives in `fuzz/` inside it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/ has a parent")
        .to_path_buf()
}

/// Extra configurations written for fuzzing: small limits and short timeouts, so that table
/// limits, idle eviction, hold limits, dead-host probes, timelines, affinity, static mappings,
/// NAPT and the FTP gateway are all reachable with a few packets.
pub const INLINE: &[(&str, &str)] = &[
    (
        "inline-stress-router.toml",
        r#"
view = "router"
[router]
ttl_decrement = true
icmp_time_exceeded = true
inside_address = "203.0.113.254"
outside_address = "198.51.100.1"
fragment_timeout = "2s"
fragment_hold_max = 3
fragment_hold_bytes = 4000
ftp_ports = [21]
[timeouts]
tcp = "30s"
udp = "2s"
icmp = "2s"
other = "2s"
tcp_close_grace = "1s"
tcp_opening = "3s"
max_sessions = 3
[napt]
enabled = true
inside = ["203.0.113.0/24"]
[[virtual_server]]
name = "web"
vip = "198.18.0.100"
protocol = "tcp"
ports = [80, 23, 21]
algorithm = "least-load"
members = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
[virtual_server.affinity]
prefix = 24
timeout = "3s"
[[virtual_server]]
name = "echo"
vip = "198.18.0.100"
protocol = "udp"
ports = [9999, 5000]
algorithm = "source-hash"
members = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
[[virtual_server]]
name = "ping"
vip = "198.18.0.100"
protocol = "icmp"
algorithm = "maglev"
members = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
[[static_mapping]]
member = "203.0.113.2"
port = 23
backup = "203.0.113.3"
backup_port = 23
[dead_host]
enabled = true
answer_within = "1s"
retry_after = "2s"
[[timeline]]
at = "+1s"
action = "drain"
member = "203.0.113.1"
[[timeline]]
at = "+2s"
action = "remove"
member = "203.0.113.3"
[[timeline]]
at = "+3s"
action = "weight"
member = "203.0.113.2"
weight = 3
[[timeline]]
at = "+4s"
action = "add"
member = "203.0.113.3"
virtual_server = "web"
[[timeline]]
at = "+5s"
action = "remap"
member = "203.0.113.2"
backup = "203.0.113.1"
"#,
    ),
    (
        "inline-stress-lsnapt-ftp.toml",
        r#"
view = "router"
[router]
mode = "ls-napt"
inside_address = "203.0.113.254"
ftp_ports = [21, 2121]
fragment_hold_max = 2
fragment_hold_bytes = 3000
fragment_timeout = "1s"
icmp_time_exceeded = true
[timeouts]
tcp = "20s"
udp = "1s"
icmp = "1s"
other = "1s"
tcp_close_grace = "1s"
max_sessions = 4
[[virtual_server]]
name = "ftp"
vip = "198.18.0.100"
protocol = "tcp"
ports = [21, 2121, 80]
algorithm = "weighted-round-robin"
members = [{ addr = "203.0.113.1", weight = 2 }, "203.0.113.2"]
[[virtual_server]]
name = "echo"
vip = "198.18.0.100"
protocol = "udp"
ports = [9999]
algorithm = "least-traffic"
members = ["203.0.113.1", "203.0.113.2"]
[[virtual_server]]
name = "ping"
vip = "198.18.0.100"
protocol = "icmp"
algorithm = "round-robin"
members = ["203.0.113.1", "203.0.113.2"]
"#,
    ),
    (
        "inline-stress-client-side-ftp.toml",
        r#"
view = "client-side"
[router]
ttl_decrement = false
ftp_ports = [21]
fragment_hold_max = 2
[timeouts]
tcp = "10s"
udp = "1s"
icmp = "1s"
tcp_close_grace = "0s"
max_sessions = 2
[[virtual_server]]
name = "ftp"
vip = "198.18.0.100"
protocol = "tcp"
ports = [21, 80, 23]
algorithm = "most-responsive"
members = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
[[virtual_server]]
name = "echo"
vip = "198.18.0.100"
protocol = "udp"
ports = [9999]
algorithm = "round-robin"
members = ["203.0.113.1", "203.0.113.2"]
[[virtual_server]]
name = "ping"
vip = "198.18.0.100"
protocol = "icmp"
algorithm = "round-robin"
members = ["203.0.113.1"]
"#,
    ),
];

/// One fixed configuration: where it came from and what it holds.
pub struct Fixed {
    pub path: PathBuf,
    pub config: EngineConfig,
}

fn tomls(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

/// Every fixed configuration, in a stable order: the bundled captures' configs
/// (`captures/*.toml`, sorted), the pool-timeline test config, the per-algorithm test configs
/// of `tests/algorithms/lsnat-router` and `lsnat-client-side`, then the inline ones above.
/// A fuzz input's first byte picks one (modulo the count).
pub fn configs() -> &'static [Fixed] {
    static C: OnceLock<Vec<Fixed>> = OnceLock::new();
    C.get_or_init(|| {
        let r = root();
        let mut paths = tomls(&r.join("captures"));
        paths.push(r.join("tests/pool/lsnat-pool-timeline.toml"));
        paths.extend(tomls(&r.join("tests/algorithms/lsnat-router")));
        paths.extend(tomls(&r.join("tests/algorithms/lsnat-client-side")));
        let mut out: Vec<Fixed> = paths
            .into_iter()
            .map(|p| Fixed {
                config: lsnat::config::load(&p).unwrap_or_else(|e| panic!("{e}")),
                path: p,
            })
            .collect();
        for (name, text) in INLINE {
            let path = r.join("fuzz").join(name);
            out.push(Fixed {
                config: lsnat::config::parse(&path, text).unwrap_or_else(|e| panic!("{e}")),
                path,
            });
        }
        out
    })
}

/// The index of the config at `path` in [`configs`].
pub fn config_index(path: &Path) -> Option<usize> {
    configs().iter().position(|c| c.path == path)
}

// ---------------------------------------------------------------------------------------------
// engine_packets chunk format
// ---------------------------------------------------------------------------------------------

/// Chunk flags (the first byte of each chunk).
pub mod flags {
    /// Bits 0-1: the unit of the time delta: µs, ms, s, minutes.
    pub const UNIT: u8 = 0b11;
    /// Time goes back by the delta instead of forward (held by the engine, counted).
    pub const BACKWARDS: u8 = 1 << 2;
    /// Not an IPv4 frame: only `pass_time` (the bytes are skipped).
    pub const PASS_TIME: u8 = 1 << 3;
    /// Handed in through `precompute` + `handle_precomputed` instead of `handle`.
    pub const PRECOMPUTED: u8 = 1 << 4;
    /// Fix the IPv4 header and transport checksums before handing the bytes in.
    pub const FIX_CHECKSUMS: u8 = 1 << 5;
    /// Call `finish_fragments` after this chunk (the engine must go on working after it).
    pub const FINISH_FRAGMENTS: u8 = 1 << 6;
}

/// One chunk: flags, time delta, the packet's bytes.
pub struct Chunk<'a> {
    pub flags: u8,
    pub dt: u16,
    pub bytes: &'a [u8],
}

impl Chunk<'_> {
    /// The delta in nanoseconds.
    pub fn delta_ns(&self) -> u64 {
        let unit: u64 = match self.flags & flags::UNIT {
            0 => 1_000,
            1 => 1_000_000,
            2 => 1_000_000_000,
            _ => 60_000_000_000,
        };
        u64::from(self.dt) * unit
    }
}

/// Splits a fuzz input (after its config byte) into chunks: `flags u8, dt u16 LE, len u16 LE,
/// bytes[len]` each; the last chunk takes what is left when `len` runs past the end.
pub fn chunks(mut data: &[u8]) -> Vec<Chunk<'_>> {
    let mut out = Vec::new();
    while data.len() >= 5 {
        let flags = data[0];
        let dt = u16::from_le_bytes([data[1], data[2]]);
        let len = usize::from(u16::from_le_bytes([data[3], data[4]]));
        let rest = &data[5..];
        let len = len.min(rest.len());
        out.push(Chunk {
            flags,
            dt,
            bytes: &rest[..len],
        });
        data = &rest[len..];
    }
    out
}

/// Appends one chunk in the format [`chunks`] reads, with the delta `ns` in the finest unit
/// that holds it (rounded down).
pub fn push_chunk(out: &mut Vec<u8>, mut flags: u8, ns: u64, bytes: &[u8]) {
    let (unit, per) = if ns / 1_000 <= 0xffff {
        (0, 1_000)
    } else if ns / 1_000_000 <= 0xffff {
        (1, 1_000_000)
    } else if ns / 1_000_000_000 <= 0xffff {
        (2, 1_000_000_000)
    } else {
        (3, 60_000_000_000)
    };
    flags = (flags & !flags::UNIT) | unit;
    let dt = (ns / per).min(0xffff) as u16;
    let len = bytes.len().min(0xffff);
    out.push(flags);
    out.extend_from_slice(&dt.to_le_bytes());
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&bytes[..len]);
}

// ---------------------------------------------------------------------------------------------
// Independent checksums
// ---------------------------------------------------------------------------------------------

/// RFC 1071 one's-complement sum of `b` (odd length padded with a zero), added to `sum`.
fn sum16(mut sum: u32, b: &[u8]) -> u32 {
    let mut c = b.chunks_exact(2);
    for w in &mut c {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = c.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Recomputes the IPv4 header checksum and the TCP/UDP/ICMP checksum of a datagram in place,
/// where the bytes allow (a whole, unfragmented datagram for the transport one). Used to keep
/// mutated inputs consistent, so that the checksum oracle checks "right in, right out".
pub fn fix_checksums(ip: &mut [u8]) {
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return;
    }
    let ihl = usize::from(ip[0] & 15) * 4;
    if ihl < 20 || ip.len() < ihl {
        return;
    }
    ip[10] = 0;
    ip[11] = 0;
    let c = !fold(sum16(0, &ip[..ihl]));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let fragmented = ip[6] & 0x3f != 0 || ip[7] != 0;
    if fragmented || total < ihl || ip.len() < total {
        return;
    }
    let proto = ip[9];
    let (src, dst) = (
        [ip[12], ip[13], ip[14], ip[15]],
        [ip[16], ip[17], ip[18], ip[19]],
    );
    let l4 = &mut ip[ihl..total];
    let at = match proto {
        6 if l4.len() >= 20 => 16,
        17 if l4.len() >= 8 => {
            if l4[6] == 0 && l4[7] == 0 {
                return; // no checksum: leave it so
            }
            6
        }
        1 if l4.len() >= 4 => 2,
        _ => return,
    };
    l4[at] = 0;
    l4[at + 1] = 0;
    let mut s = 0;
    if proto != 1 {
        s = sum16(s, &src);
        s = sum16(s, &dst);
        s += u32::from(proto);
        s += l4.len() as u32;
    }
    s = sum16(s, l4);
    let mut c = !fold(s);
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

#[path = "../../tests/common/checksums.rs"]
mod checksums;

pub mod targets;

/// Checksum errors of an IPv4 datagram computed in full by etherparse, as tests/common does
/// (the same file): (IPv4 header, transport), `None` where not checkable.
pub fn checksum_errors(ip: &[u8]) -> Option<(u16, Option<u16>)> {
    checksums::ipv4_checksum_errors(ip)
}

/// The IPv4 header checksum error of the datagram an ICMP error quotes (after the outer
/// header and the 8-byte ICMP header), when the quote holds the whole inner header.
pub fn quoted_header_error(ip: &[u8]) -> Option<u16> {
    let ihl = usize::from(*ip.first()? & 15) * 4;
    if ip.len() < ihl + 8 || ip[9] != 1 || ip[6] & 0x3f != 0 || ip[7] != 0 {
        return None;
    }
    let icmp = &ip[ihl..];
    if !matches!(icmp[0], 3 | 4 | 5 | 11 | 12) {
        return None;
    }
    let inner = &icmp[8..];
    if inner.len() < 20 || inner[0] >> 4 != 4 {
        return None;
    }
    let iihl = usize::from(inner[0] & 15) * 4;
    if iihl < 20 || inner.len() < iihl {
        return None;
    }
    let carried = u16::from_be_bytes([inner[10], inner[11]]);
    let mut h = inner[..iihl].to_vec();
    h[10] = 0;
    h[11] = 0;
    Some(checksums::delta(carried, !fold(sum16(0, &h))))
}

// ---------------------------------------------------------------------------------------------
// replay_capture: a config for any capture
// ---------------------------------------------------------------------------------------------

/// A config with virtual servers at the first TCP SYN's and first UDP datagram's destinations
/// (as tests/common `derive_config`), so that an arbitrary capture gets translated; `None`
/// when the capture cannot be read.
pub fn derive_config(cap: &Path) -> Option<EngineConfig> {
    use lsnat::link::{self, Payload};
    use lsnat::wire::ipv4::{Ipv4, L4};
    let mut services: Vec<(u8, [u8; 4], u16)> = Vec::new();
    let mut r = lsnat::capture::CaptureReader::open(cap).ok()?;
    let mut b = lsnat::capture::Batch::default();
    let mut seen = 0;
    'outer: while let Ok(true) = r.read_batch(&mut b, 256) {
        for i in 0..b.packets.len() {
            seen += 1;
            if seen > 4096 {
                break 'outer;
            }
            let frame = b.bytes(i);
            let Payload::Ipv4 { offset } = link::locate(b.packets[i].linktype, frame).payload
            else {
                continue;
            };
            let Some(ipb) = frame.get(offset..) else {
                continue;
            };
            let Ok(ip) = Ipv4::parse(ipb) else {
                continue;
            };
            let s = match ip.l4(ipb) {
                L4::Tcp { dport, flags, .. } if flags & 0x12 == 0x02 => (6, ip.dst, dport),
                L4::Udp { dport, .. } => (17, ip.dst, dport),
                _ => continue,
            };
            if !services.iter().any(|x| x.0 == s.0) {
                services.push(s);
            }
            if services.len() == 2 {
                break 'outer;
            }
        }
    }
    let mut t = String::from(
        "view = \"client-side\"\n[router]\nftp_ports = [21]\nfragment_hold_max = 4\n[timeouts]\nudp = \"5s\"\ntcp_close_grace = \"1s\"\nmax_sessions = 64\n",
    );
    for (p, vip, port) in &services {
        if *port == 0 {
            continue;
        }
        t.push_str(&format!(
            "[[virtual_server]]\nvip = \"{}\"\nprotocol = \"{}\"\nports = [{port}]\nmembers = [\"192.0.2.1\", \"192.0.2.2\", \"192.0.2.3\"]\n",
            std::net::Ipv4Addr::from(*vip),
            if *p == 6 { "tcp" } else { "udp" }
        ));
    }
    if !t.contains("[[virtual_server]]") {
        t.push_str("[[virtual_server]]\nvip = \"203.0.113.250\"\nprotocol = \"tcp\"\nports = [1]\nmembers = [\"192.0.2.1\"]\n");
    }
    // A derived service may be invalid (a VIP that is a member, ...): then no config.
    lsnat::config::parse(Path::new("derived.toml"), &t).ok()
}
