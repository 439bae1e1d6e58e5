//! Synthetic Load Sharing NAT traffic for benchmarking `lsnat`.
//!
//! ```text
//! cargo run --release --example gen_synthetic -- --packets N --out FILE.pcap [--seed S]
//! ```
//!
//! Writes a classic pcap (little-endian, microsecond timestamps, `LINKTYPE_ETHERNET`, snaplen
//! 65535) of exactly `N` frames as they arrive at an LSNAT router (RFC 2391), the *router
//! view*: clients on the outside send to the virtual address `203.0.113.100`, and the pool
//! members `192.0.2.1`..`192.0.2.4` answer with their own, not yet translated, address.
//!
//! By packets the mix is about 70 % HTTP sessions to TCP port 80 (handshake, one to three
//! request/response rounds, segments of 40–1500 bytes, delayed ACKs, FIN/ACK close or, for
//! about 5 % of sessions, a RST), 20 % DNS to UDP port 53 (one or more query/answer
//! exchanges per client port), 5 % ICMP echo, and 5 % traffic a NAT passes through
//! untouched: ARP, NTP to `203.0.113.10` and SSH to `203.0.113.20`. Thousands of sessions
//! are live at once and their packets interleave; timestamps advance by 1–10 µs per packet.
//! Client address/port pairs (ICMP: address/identifier) never repeat, and the member that
//! answers is chosen round-robin per protocol in session-start order, as an LSNAT with
//! round-robin pools would pick it when replaying the capture.
//!
//! Every checksum is correct, and frames shorter than 60 bytes carry Ethernet padding as on
//! the wire. All randomness comes from a seeded SplitMix64, so the output depends only on
//! `--packets` and `--seed`. Nothing is held in memory beyond the live sessions; the file
//! is written as `FILE.partial` and renamed when complete.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "Write a synthetic LSNAT router-view capture (classic pcap)")]
struct Args {
    /// Number of packets to write (exactly this many).
    #[arg(long)]
    packets: u64,
    /// Output file (classic pcap).
    #[arg(long)]
    out: PathBuf,
    /// PRNG seed: the same seed and packet count always give a byte-identical file.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let partial = PathBuf::from(format!("{}.partial", args.out.display()));
    let file = File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let stats = generate(args.packets, args.seed, &mut out)
        .with_context(|| format!("writing {}", partial.display()))?;
    out.into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &args.out)
        .with_context(|| format!("renaming {} to {}", partial.display(), args.out.display()))?;
    eprintln!("{}: {}", args.out.display(), stats.summary());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Addresses

/// An IPv4 address as a host-order integer.
const fn ip(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

/// A MAC address from the documentation range 00-00-5E-00-53-xx (RFC 7042).
const fn mac(last: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x53, last]
}

/// The virtual server address.
const VIP: u32 = ip(203, 0, 113, 100);
/// The pool members, in round-robin order.
const MEMBERS: [u32; 4] = [
    ip(192, 0, 2, 1),
    ip(192, 0, 2, 2),
    ip(192, 0, 2, 3),
    ip(192, 0, 2, 4),
];
/// The router's inside address (what members ARP for).
const ROUTER_INSIDE: u32 = ip(192, 0, 2, 254);
/// The upstream gateway on the outside (ARPs for the VIP).
const UPSTREAM_GW: u32 = ip(203, 0, 113, 1);
/// A non-VIP server reachable through the router (NTP, passed through).
const NTP_SERVER: u32 = ip(203, 0, 113, 10);
/// A non-VIP server reachable through the router (SSH, passed through).
const SSH_SERVER: u32 = ip(203, 0, 113, 20);

/// Source MAC of every client frame: the upstream gateway.
const UPSTREAM_MAC: [u8; 6] = mac(0x01);
/// The router's outside interface.
const ROUTER_OUTSIDE_MAC: [u8; 6] = mac(0xfe);
/// The router's inside interface.
const ROUTER_INSIDE_MAC: [u8; 6] = mac(0xfd);
/// The Ethernet broadcast address.
const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// Index of the NTP server in [`Generator::hosts`] (members are 0..4).
const HOST_NTP: u8 = 4;
/// Index of the SSH server in [`Generator::hosts`].
const HOST_SSH: u8 = 5;

/// Client addresses: 198.51.100.1–254 and 198.18.x.1–254.
const CLIENT_ADDRS: u32 = 254 + 256 * 254;
/// Lowest client port (Linux ephemeral range).
const PORT_LO: u32 = 32768;
/// Number of client ports (32768–60999).
const PORTS: u32 = 60999 - PORT_LO + 1;
/// Number of distinct client (address, port) keys.
const KEY_SPACE: u32 = CLIENT_ADDRS * PORTS;

/// A host on the inside of the router that answers clients.
#[derive(Clone, Copy)]
struct Host {
    ip: u32,
    mac: [u8; 6],
    /// Next IPv4 identification (one counter per host, as a real stack keeps).
    ip_id: u16,
}

// ---------------------------------------------------------------------------------------
// Randomness

/// SplitMix64: small, fast, and good enough for traffic shapes.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }
    /// Uniform in `0..n` (`n > 0`; the bias of the multiply-shift is negligible here).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `num / den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The SplitMix64 finaliser.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seeded bijection on `0..KEY_SPACE` (4-round Feistel on 32 bits, cycle-walking), so
/// the n-th session gets a random-looking client key that no other session has.
struct KeyPermutation {
    round_keys: [u64; 4],
}

impl KeyPermutation {
    fn feistel(&self, x: u32) -> u32 {
        let (mut l, mut r) = (x >> 16, x & 0xffff);
        for k in self.round_keys {
            let f = (mix64(u64::from(r) ^ k) & 0xffff) as u32;
            (l, r) = (r, l ^ f);
        }
        (l << 16) | r
    }

    /// The client (address, port) of session `n`.
    fn key(&self, n: u64) -> (u32, u16) {
        let mut x = (n % u64::from(KEY_SPACE)) as u32;
        loop {
            x = self.feistel(x);
            if x < KEY_SPACE {
                break;
            }
        }
        let (a, p) = (x % CLIENT_ADDRS, x / CLIENT_ADDRS);
        let addr = if a < 254 {
            ip(198, 51, 100, 0) + a + 1
        } else {
            let j = a - 254;
            ip(198, 18, 0, 0) + (j / 254) * 256 + j % 254 + 1
        };
        (addr, (PORT_LO + p) as u16)
    }
}

// ---------------------------------------------------------------------------------------
// Sessions

/// Which way a packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    /// Client to server (arrives on the outside).
    Up,
    /// Server or member to client (arrives on the inside).
    Down,
}

/// One packet of a session's plan.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// TCP SYN from the client.
    Syn,
    /// TCP SYN-ACK from the server.
    SynAck,
    /// A bare TCP ACK.
    Ack(Dir),
    /// An HTTP GET (client, PSH).
    Request,
    /// The HTTP response header segment announcing `body` bytes (PSH when `body == 0`).
    Header { body: u32 },
    /// `len` bytes of opaque TCP payload.
    Data { dir: Dir, len: u16, push: bool },
    /// TCP FIN-ACK.
    Fin(Dir),
    /// TCP RST-ACK.
    Rst(Dir),
    /// A request: DNS query, NTP client packet or ICMP echo request.
    Query,
    /// The answer to the last query.
    Answer,
    /// ARP request (broadcast).
    ArpRequest,
    /// ARP reply.
    ArpReply,
}

/// What a session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum App {
    /// HTTP to the VIP, TCP port 80.
    Http,
    /// DNS to the VIP, UDP port 53.
    Dns,
    /// ICMP echo to the VIP.
    Ping,
    /// NTP to a non-VIP server (passed through).
    Ntp,
    /// SSH to a non-VIP server (passed through).
    Ssh,
    /// ARP for the router's inside address (from a member) or for the VIP (from upstream).
    Arp { inside: bool },
}

/// Traffic classes whose packet shares the generator steers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Tcp = 0,
    Udp = 1,
    Icmp = 2,
    Other = 3,
}

/// Target share of packets per [`Class`].
const SHARE: [f64; 4] = [0.70, 0.20, 0.05, 0.05];
/// Prior guess of packets per session per class (refined as sessions are planned).
const PRIOR_LEN: [f64; 4] = [20.0, 3.5, 5.0, 4.0];

impl App {
    fn class(self) -> Class {
        match self {
            App::Http => Class::Tcp,
            App::Dns => Class::Udp,
            App::Ping => Class::Icmp,
            App::Ntp | App::Ssh | App::Arp { .. } => Class::Other,
        }
    }
}

/// A live session: its fixed plan and the state needed to emit its next packet.
struct Session {
    app: App,
    client_ip: u32,
    /// Client port, or the ICMP identifier.
    client_port: u16,
    /// The address the client sends to (the VIP or a non-VIP server).
    server_ip: u32,
    server_port: u16,
    /// The host that answers, an index into [`Generator::hosts`].
    host: u8,
    /// The client's next IPv4 identification.
    ip_id: u16,
    /// Next TCP sequence number of the client and of the server.
    up_seq: u32,
    down_seq: u32,
    /// Index of the current query/echo exchange or HTTP round.
    exchange: u16,
    /// Capture time (µs) of the last query, echoed by the answer.
    query_us: u64,
    /// Seed for the session's payload contents.
    seed: u64,
    plan: Vec<Step>,
    next: usize,
}

impl Session {
    fn done(&self) -> bool {
        self.next == self.plan.len()
    }
    fn remaining(&self) -> u64 {
        (self.plan.len() - self.next) as u64
    }
    /// A deterministic stream for payload `k` of this session.
    fn content_rng(&self, k: u64) -> Rng {
        Rng(mix64(self.seed ^ k.wrapping_mul(0xd6e8_feb8_6659_fd93)))
    }
}

/// Appends the TCP handshake.
fn plan_handshake(plan: &mut Vec<Step>) {
    plan.extend([Step::Syn, Step::SynAck, Step::Ack(Dir::Up)]);
}

/// Appends a close: mostly FIN/ACK both ways and a final ACK, about 5 % a RST.
fn plan_close(rng: &mut Rng, plan: &mut Vec<Step>) {
    if rng.chance(5, 100) {
        let dir = if rng.chance(3, 5) { Dir::Up } else { Dir::Down };
        plan.push(Step::Rst(dir));
    } else if rng.chance(7, 10) {
        plan.extend([Step::Fin(Dir::Up), Step::Fin(Dir::Down), Step::Ack(Dir::Up)]);
    } else {
        plan.extend([
            Step::Fin(Dir::Down),
            Step::Fin(Dir::Up),
            Step::Ack(Dir::Down),
        ]);
    }
}

/// An HTTP/1.1 keep-alive session: handshake, 1–3 request/response rounds, close.
fn plan_http(rng: &mut Rng, plan: &mut Vec<Step>) {
    const MSS: u32 = 1460;
    plan_handshake(plan);
    let rounds = match rng.below(100) {
        0..75 => 1,
        75..92 => 2,
        _ => 3,
    };
    for _ in 0..rounds {
        plan.push(Step::Request);
        if rng.chance(1, 2) {
            plan.push(Step::Ack(Dir::Down));
        }
        let body = match rng.below(100) {
            0..8 => 0,
            8..40 => rng.range(1, u64::from(MSS)) as u32,
            40..80 => rng.range(u64::from(MSS), u64::from(4 * MSS)) as u32,
            80..96 => rng.range(u64::from(4 * MSS), u64::from(12 * MSS)) as u32,
            _ => rng.range(u64::from(12 * MSS), u64::from(40 * MSS)) as u32,
        };
        plan.push(Step::Header { body });
        // Delayed ACKs: the client acknowledges every second segment and the last one.
        let mut unacked = 1;
        let mut left = body;
        while left > 0 {
            let len = left.min(MSS);
            left -= len;
            plan.push(Step::Data {
                dir: Dir::Down,
                len: len as u16,
                push: left == 0,
            });
            unacked += 1;
            if unacked == 2 && left > 0 {
                plan.push(Step::Ack(Dir::Up));
                unacked = 0;
            }
        }
        if unacked > 0 {
            plan.push(Step::Ack(Dir::Up));
        }
    }
    plan_close(rng, plan);
}

/// A short interactive SSH session to a non-VIP server.
fn plan_ssh(rng: &mut Rng, plan: &mut Vec<Step>) {
    plan_handshake(plan);
    for _ in 0..rng.range(1, 4) {
        let up = rng.range(36, 300) as u16;
        let down = rng.range(36, 1200) as u16;
        plan.push(Step::Data {
            dir: Dir::Up,
            len: up,
            push: true,
        });
        plan.push(Step::Data {
            dir: Dir::Down,
            len: down,
            push: true,
        });
        plan.push(Step::Ack(Dir::Up));
    }
    plan_close(rng, plan);
}

/// `n` query/answer exchanges (DNS or NTP).
fn plan_exchanges(n: u64, plan: &mut Vec<Step>) {
    for _ in 0..n {
        plan.extend([Step::Query, Step::Answer]);
    }
}

/// How many exchanges a DNS client port or a ping run makes.
fn exchange_count(rng: &mut Rng) -> u64 {
    match rng.below(100) {
        0..65 => 1,
        65..85 => 2,
        85..95 => 3,
        _ => rng.range(4, 6),
    }
}

// ---------------------------------------------------------------------------------------
// Frames

/// Ethernet header length.
const ETH: usize = 14;
/// Offset of the transport header (Ethernet + option-less IPv4).
const L4: usize = ETH + 20;
/// Minimum Ethernet frame without FCS; shorter frames are zero-padded.
const MIN_FRAME: usize = 60;

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;

/// Capture start: 2024-01-01T00:00:00Z, in microseconds.
const START_US: u64 = 1_704_067_200_000_000;
/// Seconds from the NTP epoch (1900) to the Unix epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Adds `data` to a ones'-complement sum (big-endian 16-bit words, odd byte zero-padded).
fn sum_be(data: &[u8]) -> u64 {
    let mut acc = 0u64;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc + u64::from(u32::from_be_bytes(tail))
}

/// Folds a sum to 16 bits and complements it: the Internet checksum.
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The IPv4 pseudo-header sum for a transport checksum.
fn pseudo_sum(src: u32, dst: u32, proto: u8, len: usize) -> u64 {
    u64::from(src) + u64::from(dst) + u64::from(proto) + len as u64
}

/// The 64-bit NTP timestamp of a capture time in microseconds.
fn ntp_time(us: u64) -> u64 {
    let secs = us / 1_000_000 + NTP_UNIX_OFFSET;
    let frac = ((us % 1_000_000) << 32) / 1_000_000;
    (secs << 32) | frac
}

/// Label choices for DNS names.
const DNS_HOSTS: [&str; 10] = [
    "www", "api", "cdn", "img", "static", "mail", "login", "assets", "m", "edge",
];
const DNS_DOMAINS: [&str; 4] = ["example", "example-cdn", "shop-example", "example-mail"];
const DNS_TLDS: [&str; 3] = ["com", "net", "org"];
/// HTTP path prefixes and the content types they return.
const HTTP_PATHS: [(&str, &str); 6] = [
    ("/static/js/", "application/javascript"),
    ("/static/css/", "text/css"),
    ("/img/", "image/png"),
    ("/media/", "image/jpeg"),
    ("/api/v1/items/", "application/json"),
    ("/pages/", "text/html; charset=utf-8"),
];

/// Running totals, reported at the end.
#[derive(Debug, Default, Clone)]
struct Stats {
    packets: u64,
    bytes: u64,
    class_packets: [u64; 4],
    sessions: u64,
    peak_live: usize,
    first_us: u64,
    last_us: u64,
}

impl Stats {
    fn summary(&self) -> String {
        let pct = |c: usize| 100.0 * self.class_packets[c] as f64 / self.packets.max(1) as f64;
        format!(
            "{} packets, {} bytes of frames, {} sessions (peak {} live), {:.3} s of capture; \
             tcp {:.1} %, udp {:.1} %, icmp {:.1} %, other {:.1} %",
            self.packets,
            self.bytes,
            self.sessions,
            self.peak_live,
            self.last_us.saturating_sub(self.first_us) as f64 / 1e6,
            pct(0),
            pct(1),
            pct(2),
            pct(3),
        )
    }
}

/// The traffic model and the pcap writer.
struct Generator<W: Write> {
    out: W,
    rng: Rng,
    keys: KeyPermutation,
    /// Members 0..4, then the NTP and SSH servers.
    hosts: [Host; 6],
    /// Next round-robin member per virtual server (HTTP, DNS, ICMP).
    round_robin: [u64; 3],
    /// Capture time of the last packet, µs since the epoch.
    now_us: u64,
    /// The frame being built.
    frame: Vec<u8>,
    /// Random bytes used as opaque payload.
    filler: Vec<u8>,
    /// Packets planned per class so far, and sessions per class (to steer the mix).
    planned: [u64; 4],
    planned_sessions: [u64; 4],
    stats: Stats,
}

/// Writes a capture of exactly `packets` frames to `out` and returns what was written.
fn generate<W: Write>(packets: u64, seed: u64, out: W) -> io::Result<Stats> {
    let mut g = Generator::new(seed, out);
    g.write_file_header()?;

    let mut live: Vec<Session> = Vec::with_capacity(8192);
    let mut spare_plans: Vec<Vec<Step>> = Vec::new();
    // Packets still to come from the live sessions: new sessions start only while the
    // capture has room for all of them, so no session is cut short at the end.
    let mut pending = 0u64;
    let mut target_live = 3000usize;
    let mut emitted = 0u64;

    while emitted < packets {
        if emitted.is_multiple_of(8192) && emitted > 0 {
            let step = g.rng.range(0, 500) as isize - 250;
            target_live = target_live.saturating_add_signed(step).clamp(1000, 5000);
        }
        let room = packets - emitted - pending;
        let start = room > 0 && live.len() < target_live && (live.is_empty() || g.rng.chance(1, 4));
        let idx = if start {
            let plan = spare_plans.pop().unwrap_or_default();
            let session = g.new_session(room, plan);
            pending += session.remaining();
            live.push(session);
            live.len() - 1
        } else {
            g.rng.below(live.len() as u64) as usize
        };
        g.stats.peak_live = g.stats.peak_live.max(live.len());

        g.emit(&mut live[idx])?;
        pending -= 1;
        emitted += 1;
        if live[idx].done() {
            let mut plan = live.swap_remove(idx).plan;
            plan.clear();
            spare_plans.push(plan);
        }
    }
    g.out.flush()?;
    Ok(g.stats)
}

impl<W: Write> Generator<W> {
    fn new(seed: u64, out: W) -> Self {
        let mut rng = Rng(seed);
        let keys = KeyPermutation {
            round_keys: std::array::from_fn(|_| rng.next_u64()),
        };
        let filler = (0..65536 + 2048).map(|_| rng.next_u64() as u8).collect();
        let host = |ip, mac, rng: &mut Rng| Host {
            ip,
            mac,
            ip_id: rng.next_u64() as u16,
        };
        let hosts = [
            host(MEMBERS[0], mac(0x11), &mut rng),
            host(MEMBERS[1], mac(0x12), &mut rng),
            host(MEMBERS[2], mac(0x13), &mut rng),
            host(MEMBERS[3], mac(0x14), &mut rng),
            host(NTP_SERVER, mac(0x20), &mut rng),
            host(SSH_SERVER, mac(0x21), &mut rng),
        ];
        Generator {
            out,
            rng,
            keys,
            hosts,
            round_robin: [0; 3],
            now_us: START_US,
            frame: vec![0; 2048],
            filler,
            planned: [0; 4],
            planned_sessions: [0; 4],
            stats: Stats::default(),
        }
    }

    /// The 24-byte classic pcap header.
    fn write_file_header(&mut self) -> io::Result<()> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0.
        h[16..20].copy_from_slice(&65535u32.to_le_bytes());
        h[20..24].copy_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        self.out.write_all(&h)
    }

    /// Picks the class of the next session so that packet shares converge to [`SHARE`]:
    /// each class is drawn with weight share / mean planned packets per session.
    fn pick_class(&mut self) -> Class {
        let weights: [f64; 4] = std::array::from_fn(|c| {
            let mean = (self.planned[c] as f64 + PRIOR_LEN[c] * 10.0)
                / (self.planned_sessions[c] as f64 + 10.0);
            SHARE[c] / mean
        });
        let mut x = self.rng.unit() * weights.iter().sum::<f64>();
        for (c, w) in weights.iter().enumerate() {
            if x < *w {
                return [Class::Tcp, Class::Udp, Class::Icmp, Class::Other][c];
            }
            x -= w;
        }
        Class::Other
    }

    /// Plans a new session that fits in `room` packets (`room > 0`), reusing `plan`.
    fn new_session(&mut self, room: u64, mut plan: Vec<Step>) -> Session {
        let class = self.pick_class();
        let rng = &mut self.rng;
        let mut app = match class {
            Class::Tcp => App::Http,
            Class::Udp => App::Dns,
            Class::Icmp => App::Ping,
            Class::Other => match rng.below(10) {
                0..4 => App::Arp {
                    inside: rng.chance(1, 2),
                },
                4..8 => App::Ntp,
                _ => App::Ssh,
            },
        };
        match app {
            App::Http => plan_http(rng, &mut plan),
            App::Ssh => plan_ssh(rng, &mut plan),
            App::Dns | App::Ping => plan_exchanges(exchange_count(rng), &mut plan),
            App::Ntp => plan_exchanges(rng.range(1, 3), &mut plan),
            App::Arp { .. } => plan.extend([Step::ArpRequest, Step::ArpReply]),
        }
        if plan.len() as u64 > room {
            // The last packets of the capture: fill the room exactly with pass-through
            // traffic (an NTP client polling, or a lone ARP request).
            plan.clear();
            if room == 1 {
                app = App::Arp { inside: false };
                plan.push(Step::ArpRequest);
            } else {
                app = App::Ntp;
                plan.extend((0..room).map(|i| {
                    if i % 2 == 0 {
                        Step::Query
                    } else {
                        Step::Answer
                    }
                }));
            }
        }
        let class = app.class() as usize;
        self.planned[class] += plan.len() as u64;
        self.planned_sessions[class] += 1;

        let (client_ip, client_port) = self.keys.key(self.stats.sessions);
        self.stats.sessions += 1;
        // Virtual server index for round-robin member selection.
        let virtual_server = match app {
            App::Http => Some(0),
            App::Dns => Some(1),
            App::Ping => Some(2),
            _ => None,
        };
        let host = match (virtual_server, app) {
            (Some(vs), _) => {
                let m = self.round_robin[vs] % MEMBERS.len() as u64;
                self.round_robin[vs] += 1;
                m as u8
            }
            (None, App::Ntp) => HOST_NTP,
            (None, App::Ssh) => HOST_SSH,
            (None, _) => self.rng.below(MEMBERS.len() as u64) as u8,
        };
        let (server_ip, server_port) = match app {
            App::Http => (VIP, 80),
            App::Dns => (VIP, 53),
            App::Ping | App::Arp { .. } => (VIP, 0),
            App::Ntp => (NTP_SERVER, 123),
            App::Ssh => (SSH_SERVER, 22),
        };
        let rng = &mut self.rng;
        Session {
            app,
            client_ip,
            client_port,
            server_ip,
            server_port,
            host,
            ip_id: rng.next_u64() as u16,
            up_seq: rng.next_u64() as u32,
            down_seq: rng.next_u64() as u32,
            exchange: 0,
            query_us: 0,
            seed: rng.next_u64(),
            plan,
            next: 0,
        }
    }

    /// Builds and writes the session's next packet.
    fn emit(&mut self, s: &mut Session) -> io::Result<()> {
        let step = s.plan[s.next];
        s.next += 1;
        self.now_us += self.rng.range(1, 10);
        self.stats.class_packets[s.app.class() as usize] += 1;
        let len = match step {
            Step::Query | Step::Answer => self.udp(s, step),
            Step::ArpRequest | Step::ArpReply => self.arp(s, step),
            _ => self.tcp(s, step),
        };
        self.write_record(len)
    }

    /// Writes the frame (`len` bytes, padded to 60) as one pcap record.
    fn write_record(&mut self, len: usize) -> io::Result<()> {
        let len = if len < MIN_FRAME {
            self.frame[len..MIN_FRAME].fill(0);
            MIN_FRAME
        } else {
            len
        };
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((self.now_us / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((self.now_us % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(len as u32).to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(&self.frame[..len])?;
        if self.stats.packets == 0 {
            self.stats.first_us = self.now_us;
        }
        self.stats.packets += 1;
        self.stats.bytes += len as u64;
        self.stats.last_us = self.now_us;
        Ok(())
    }

    /// Writes the Ethernet and IPv4 headers for a `l4_len`-byte transport packet of `s`
    /// going `dir`, and returns the (source, destination) addresses.
    fn ip_headers(&mut self, s: &mut Session, dir: Dir, proto: u8, l4_len: usize) -> (u32, u32) {
        let (src_mac, dst_mac, src, dst, id, df) = match dir {
            Dir::Up => {
                s.ip_id = s.ip_id.wrapping_add(1);
                let df = proto != 17;
                (
                    UPSTREAM_MAC,
                    ROUTER_OUTSIDE_MAC,
                    s.client_ip,
                    s.server_ip,
                    s.ip_id,
                    df,
                )
            }
            Dir::Down => {
                let h = &mut self.hosts[usize::from(s.host)];
                h.ip_id = h.ip_id.wrapping_add(1);
                (
                    h.mac,
                    ROUTER_INSIDE_MAC,
                    h.ip,
                    s.client_ip,
                    h.ip_id,
                    proto == 6,
                )
            }
        };
        let f = &mut self.frame;
        f[0..6].copy_from_slice(&dst_mac);
        f[6..12].copy_from_slice(&src_mac);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let iph = &mut f[ETH..L4];
        iph[0] = 0x45;
        iph[1] = 0;
        iph[2..4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
        iph[4..6].copy_from_slice(&id.to_be_bytes());
        iph[6..8].copy_from_slice(&(if df { 0x4000u16 } else { 0 }).to_be_bytes());
        iph[8] = 64;
        iph[9] = proto;
        iph[10..12].fill(0);
        iph[12..16].copy_from_slice(&src.to_be_bytes());
        iph[16..20].copy_from_slice(&dst.to_be_bytes());
        let csum = fold(sum_be(iph));
        iph[10..12].copy_from_slice(&csum.to_be_bytes());
        (src, dst)
    }

    /// A TCP segment; returns the frame length.
    fn tcp(&mut self, s: &mut Session, step: Step) -> usize {
        /// SYN options: MSS 1460, NOP, window scale 7, NOP, NOP, SACK permitted.
        const SYN_OPTIONS: [u8; 12] = [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2];
        let (dir, mut flags, opt_len) = match step {
            Step::Syn => (Dir::Up, TCP_SYN, SYN_OPTIONS.len()),
            Step::SynAck => (Dir::Down, TCP_SYN | TCP_ACK, SYN_OPTIONS.len()),
            Step::Ack(dir) => (dir, TCP_ACK, 0),
            Step::Request => (Dir::Up, TCP_PSH | TCP_ACK, 0),
            Step::Header { .. } => (Dir::Down, TCP_ACK, 0),
            Step::Data { dir, push, .. } => (dir, TCP_ACK | if push { TCP_PSH } else { 0 }, 0),
            Step::Fin(dir) => (dir, TCP_FIN | TCP_ACK, 0),
            Step::Rst(dir) => (dir, TCP_RST | TCP_ACK, 0),
            _ => unreachable!("not a TCP step: {step:?}"),
        };
        let data = L4 + 20 + opt_len;
        let payload_len = match step {
            Step::Request => {
                let n = self.http_request(s, data);
                s.exchange += 1;
                n
            }
            Step::Header { body } => {
                if body == 0 {
                    flags |= TCP_PSH;
                }
                self.http_header(s, data, body)
            }
            Step::Data { len, .. } => {
                let len = usize::from(len);
                let at = (s.down_seq ^ s.up_seq) as usize % 65536;
                self.frame[data..data + len].copy_from_slice(&self.filler[at..at + len]);
                len
            }
            _ => 0,
        };
        if opt_len > 0 {
            self.frame[L4 + 20..data].copy_from_slice(&SYN_OPTIONS);
        }

        let (sport, dport, seq, ack, window) = match dir {
            Dir::Up => (s.client_port, s.server_port, s.up_seq, s.down_seq, 502u16),
            Dir::Down => (s.server_port, s.client_port, s.down_seq, s.up_seq, 509u16),
        };
        let window = match step {
            Step::Syn => 64240,
            Step::SynAck => 65160,
            _ => window,
        };
        let advance = payload_len as u32 + u32::from(flags & (TCP_SYN | TCP_FIN) != 0);
        match dir {
            Dir::Up => s.up_seq = s.up_seq.wrapping_add(advance),
            Dir::Down => s.down_seq = s.down_seq.wrapping_add(advance),
        }
        let ack = if flags & TCP_ACK != 0 { ack } else { 0 };

        let l4_len = 20 + opt_len + payload_len;
        let (src, dst) = self.ip_headers(s, dir, 6, l4_len);
        let t = &mut self.frame[L4..L4 + l4_len];
        t[0..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[8..12].copy_from_slice(&ack.to_be_bytes());
        t[12] = (((20 + opt_len) / 4) as u8) << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&window.to_be_bytes());
        t[16..20].fill(0); // checksum, urgent pointer
        let csum = fold(pseudo_sum(src, dst, 6, l4_len) + sum_be(t));
        t[16..18].copy_from_slice(&csum.to_be_bytes());
        L4 + l4_len
    }

    /// Writes an HTTP GET at `at`; returns its length.
    fn http_request(&mut self, s: &Session, at: usize) -> usize {
        let mut r = s.content_rng(u64::from(s.exchange));
        let (prefix, _) = HTTP_PATHS[r.below(HTTP_PATHS.len() as u64) as usize];
        let host = DNS_HOSTS[r.below(DNS_HOSTS.len() as u64) as usize];
        let mut cur = &mut self.frame[at..];
        let room = cur.len();
        let _ = write!(
            cur,
            "GET {prefix}{:08x}?v={} HTTP/1.1\r\nHost: {host}.example.com\r\n\
             User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
             Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n",
            r.next_u64() as u32,
            r.below(100_000),
        );
        if r.chance(1, 2) {
            let _ = write!(
                cur,
                "Cookie: session={:016x}{:016x}\r\n",
                r.next_u64(),
                r.next_u64()
            );
        }
        if r.chance(1, 3) {
            let _ = write!(
                cur,
                "Referer: https://{host}.example.com/pages/{}\r\n",
                r.below(5000)
            );
        }
        let _ = write!(cur, "Connection: keep-alive\r\n\r\n");
        room - cur.len()
    }

    /// Writes the HTTP response header for the current round at `at`; returns its length.
    fn http_header(&mut self, s: &Session, at: usize, body: u32) -> usize {
        let mut r = s.content_rng(u64::from(s.exchange.wrapping_sub(1)));
        let (_, content_type) = HTTP_PATHS[r.below(HTTP_PATHS.len() as u64) as usize];
        let mut cur = &mut self.frame[at..];
        let room = cur.len();
        if body == 0 {
            let _ = write!(cur, "HTTP/1.1 304 Not Modified\r\n");
        } else {
            let _ = write!(
                cur,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {body}\r\n"
            );
        }
        let _ = write!(
            cur,
            "Server: nginx\r\nDate: Mon, 01 Jan 2024 00:00:{:02} GMT\r\n\
             Cache-Control: max-age={}\r\nETag: \"{:x}-{:x}\"\r\nConnection: keep-alive\r\n\r\n",
            (self.now_us / 1_000_000) % 60,
            60 * r.range(1, 1440),
            r.next_u64() as u32,
            body,
        );
        room - cur.len()
    }

    /// A UDP (DNS, NTP) or ICMP echo packet; returns the frame length.
    fn udp(&mut self, s: &mut Session, step: Step) -> usize {
        let dir = if matches!(step, Step::Query) {
            Dir::Up
        } else {
            Dir::Down
        };
        if s.app == App::Ping {
            return self.icmp_echo(s, dir);
        }
        let data = L4 + 8;
        let payload_len = match s.app {
            App::Dns => self.dns(s, dir, data),
            App::Ntp => self.ntp(s, dir, data),
            _ => unreachable!("not a UDP session: {:?}", s.app),
        };
        if dir == Dir::Up {
            s.query_us = self.now_us;
        } else {
            s.exchange = s.exchange.wrapping_add(1);
        }
        let (sport, dport) = match dir {
            Dir::Up => (s.client_port, s.server_port),
            Dir::Down => (s.server_port, s.client_port),
        };
        let l4_len = 8 + payload_len;
        let (src, dst) = self.ip_headers(s, dir, 17, l4_len);
        let u = &mut self.frame[L4..L4 + l4_len];
        u[0..2].copy_from_slice(&sport.to_be_bytes());
        u[2..4].copy_from_slice(&dport.to_be_bytes());
        u[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        u[6..8].fill(0);
        let csum = match fold(pseudo_sum(src, dst, 17, l4_len) + sum_be(u)) {
            0 => 0xffff, // 0 would mean "no checksum"
            c => c,
        };
        u[6..8].copy_from_slice(&csum.to_be_bytes());
        L4 + l4_len
    }

    /// Writes a DNS query or its answer at `at`; returns the payload length.
    fn dns(&mut self, s: &Session, dir: Dir, at: usize) -> usize {
        // The query and its answer draw the question from the same stream.
        let mut r = s.content_rng(u64::from(s.exchange));
        let txid = r.next_u64() as u16;
        let aaaa = r.chance(1, 4);
        let edns = r.chance(1, 2);
        let answers = if r.chance(3, 100) {
            0
        } else {
            r.range(1, 3) as u16
        };
        let p = &mut self.frame[at..];
        let mut n = 12;
        let label = |p: &mut [u8], n: &mut usize, text: &[u8]| {
            p[*n] = text.len() as u8;
            p[*n + 1..*n + 1 + text.len()].copy_from_slice(text);
            *n += 1 + text.len();
        };
        label(
            p,
            &mut n,
            DNS_HOSTS[r.below(DNS_HOSTS.len() as u64) as usize].as_bytes(),
        );
        if r.chance(3, 10) {
            let mut hex = [0u8; 8];
            let v = r.next_u64();
            for (i, b) in hex.iter_mut().enumerate() {
                *b = b"0123456789abcdef"[((v >> (4 * i)) & 15) as usize];
            }
            label(p, &mut n, &hex);
        }
        label(
            p,
            &mut n,
            DNS_DOMAINS[r.below(DNS_DOMAINS.len() as u64) as usize].as_bytes(),
        );
        label(
            p,
            &mut n,
            DNS_TLDS[r.below(DNS_TLDS.len() as u64) as usize].as_bytes(),
        );
        p[n] = 0;
        n += 1;
        let qtype: u16 = if aaaa { 28 } else { 1 };
        p[n..n + 4].copy_from_slice(&[(qtype >> 8) as u8, qtype as u8, 0, 1]);
        n += 4;

        let (flags, ancount) = match dir {
            Dir::Up => (0x0100u16, 0u16),
            Dir::Down if answers == 0 => (0x8183, 0), // NXDOMAIN
            Dir::Down => (0x8180, answers),
        };
        p[0..2].copy_from_slice(&txid.to_be_bytes());
        p[2..4].copy_from_slice(&flags.to_be_bytes());
        p[4..6].copy_from_slice(&1u16.to_be_bytes());
        p[6..8].copy_from_slice(&ancount.to_be_bytes());
        p[8..10].copy_from_slice(&0u16.to_be_bytes());
        p[10..12].copy_from_slice(&u16::from(edns).to_be_bytes());
        for _ in 0..ancount {
            let rdlen: u16 = if aaaa { 16 } else { 4 };
            let ttl = r.range(30, 3600) as u32;
            p[n..n + 2].copy_from_slice(&0xc00cu16.to_be_bytes()); // name: pointer to qname
            p[n + 2..n + 4].copy_from_slice(&qtype.to_be_bytes());
            p[n + 4..n + 6].copy_from_slice(&1u16.to_be_bytes());
            p[n + 6..n + 10].copy_from_slice(&ttl.to_be_bytes());
            p[n + 10..n + 12].copy_from_slice(&rdlen.to_be_bytes());
            n += 12;
            let addr = r.next_u64().to_be_bytes();
            let addr2 = r.next_u64().to_be_bytes();
            if aaaa {
                p[n..n + 4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                p[n + 4..n + 8].copy_from_slice(&addr[..4]);
                p[n + 8..n + 16].copy_from_slice(&addr2);
            } else {
                p[n..n + 4].copy_from_slice(&addr[..4]);
            }
            n += usize::from(rdlen);
        }
        if edns {
            // OPT: root name, type 41, UDP size 1232, no extended flags, no options.
            p[n..n + 11].copy_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
            n += 11;
        }
        n
    }

    /// Writes an NTPv4 client request or server reply at `at`; returns 48.
    fn ntp(&mut self, s: &Session, dir: Dir, at: usize) -> usize {
        let now = self.now_us;
        let p = &mut self.frame[at..at + 48];
        p.fill(0);
        match dir {
            Dir::Up => {
                p[0..4].copy_from_slice(&[0x23, 0, 6, 0xe9]); // v4, client, poll 64 s
                p[40..48].copy_from_slice(&ntp_time(now).to_be_bytes());
            }
            Dir::Down => {
                p[0..4].copy_from_slice(&[0x24, 2, 6, 0xe9]); // v4, server, stratum 2
                p[4..8].copy_from_slice(&0x0000_0010u32.to_be_bytes()); // root delay
                p[8..12].copy_from_slice(&0x0000_0020u32.to_be_bytes()); // root dispersion
                p[12..16].copy_from_slice(&UPSTREAM_GW.to_be_bytes()); // reference id
                p[16..24].copy_from_slice(&ntp_time(now - 16_000_000).to_be_bytes());
                p[24..32].copy_from_slice(&ntp_time(s.query_us).to_be_bytes());
                p[32..40].copy_from_slice(&ntp_time(now - 1).to_be_bytes());
                p[40..48].copy_from_slice(&ntp_time(now).to_be_bytes());
            }
        }
        48
    }

    /// An ICMP echo request or reply (56 bytes of data, as Linux `ping`).
    fn icmp_echo(&mut self, s: &mut Session, dir: Dir) -> usize {
        let sent_us = match dir {
            Dir::Up => {
                s.query_us = self.now_us;
                self.now_us
            }
            Dir::Down => s.query_us,
        };
        let seq = s.exchange.wrapping_add(1);
        if dir == Dir::Down {
            s.exchange = seq;
        }
        let l4_len = 8 + 56;
        self.ip_headers(s, dir, 1, l4_len);
        let m = &mut self.frame[L4..L4 + l4_len];
        m[0] = if dir == Dir::Up { 8 } else { 0 };
        m[1] = 0;
        m[2..4].fill(0);
        m[4..6].copy_from_slice(&s.client_port.to_be_bytes());
        m[6..8].copy_from_slice(&seq.to_be_bytes());
        // struct timeval of the request, then the bytes 0x10, 0x11, ... as ping fills them.
        m[8..16].copy_from_slice(&(sent_us / 1_000_000).to_le_bytes());
        m[16..24].copy_from_slice(&(sent_us % 1_000_000).to_le_bytes());
        for (i, b) in m[24..].iter_mut().enumerate() {
            *b = (i + 16) as u8;
        }
        let csum = fold(sum_be(m));
        m[2..4].copy_from_slice(&csum.to_be_bytes());
        L4 + l4_len
    }

    /// An ARP request or reply: a member asking for the router's inside address, or the
    /// upstream gateway asking for the VIP; the router answers.
    fn arp(&mut self, s: &Session, step: Step) -> usize {
        let App::Arp { inside } = s.app else {
            unreachable!("not an ARP session")
        };
        let (asker_mac, asker_ip, router_mac, router_ip) = if inside {
            let h = &self.hosts[usize::from(s.host)];
            (h.mac, h.ip, ROUTER_INSIDE_MAC, ROUTER_INSIDE)
        } else {
            (UPSTREAM_MAC, UPSTREAM_GW, ROUTER_OUTSIDE_MAC, VIP)
        };
        let (dst, src, op, sha, spa, tha, tpa) = match step {
            Step::ArpRequest => (
                BROADCAST_MAC,
                asker_mac,
                1u16,
                asker_mac,
                asker_ip,
                [0; 6],
                router_ip,
            ),
            _ => (
                asker_mac, router_mac, 2, router_mac, router_ip, asker_mac, asker_ip,
            ),
        };
        let f = &mut self.frame;
        f[0..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, op as u8]);
        f[22..28].copy_from_slice(&sha);
        f[28..32].copy_from_slice(&spa.to_be_bytes());
        f[32..38].copy_from_slice(&tha);
        f[38..42].copy_from_slice(&tpa.to_be_bytes());
        42
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generates `n` packets with `seed` into memory.
    fn capture(n: u64, seed: u64) -> (Vec<u8>, Stats) {
        let mut out = Vec::new();
        let stats = generate(n, seed, &mut out).unwrap();
        (out, stats)
    }

    /// Splits a classic pcap into (timestamp µs, frame) records.
    fn records(pcap: &[u8]) -> Vec<(u64, &[u8])> {
        let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        assert_eq!(le32(&pcap[0..4]), 0xa1b2_c3d4);
        assert_eq!(le32(&pcap[20..24]), 1);
        let mut at = 24;
        let mut out = Vec::new();
        while at < pcap.len() {
            let h = &pcap[at..at + 16];
            let ts = u64::from(le32(&h[0..4])) * 1_000_000 + u64::from(le32(&h[4..8]));
            let len = le32(&h[8..12]) as usize;
            assert_eq!(len, le32(&h[12..16]) as usize);
            out.push((ts, &pcap[at + 16..at + 16 + len]));
            at += 16 + len;
        }
        out
    }

    #[test]
    fn internet_checksum_matches_known_header() {
        // IPv4 header from RFC 1071-style worked examples; checksum 0xb861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(fold(sum_be(&hdr)), 0xb861);
        assert_eq!(fold(sum_be(&[0x01, 0x02, 0x03])), !0x0402);
    }

    #[test]
    fn same_seed_same_bytes() {
        let (a, _) = capture(20_000, 7);
        let (b, _) = capture(20_000, 7);
        let (c, _) = capture(20_000, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn exact_count_increasing_time_valid_checksums() {
        for n in [0, 1, 2, 3, 17, 5_000] {
            let (pcap, stats) = capture(n, 3);
            let recs = records(&pcap);
            assert_eq!(recs.len() as u64, n);
            assert_eq!(stats.packets, n);
            assert!(recs.windows(2).all(|w| w[0].0 < w[1].0));
            for (_, f) in recs {
                assert!(f.len() >= MIN_FRAME && f.len() <= 1514);
                if f[12..14] != [0x08, 0x00] {
                    continue;
                }
                let ihl = usize::from(f[14] & 15) * 4;
                let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
                assert_eq!(fold(sum_be(&f[ETH..ETH + ihl])), 0, "IPv4 header checksum");
                assert_eq!(f[22], 64, "TTL");
                let l4 = &f[ETH + ihl..ETH + total];
                let src = u32::from_be_bytes([f[26], f[27], f[28], f[29]]);
                let dst = u32::from_be_bytes([f[30], f[31], f[32], f[33]]);
                let proto = f[23];
                let sum = match proto {
                    1 => sum_be(l4),
                    _ => pseudo_sum(src, dst, proto, l4.len()) + sum_be(l4),
                };
                assert_eq!(fold(sum), 0, "checksum of protocol {proto}");
            }
        }
    }

    #[test]
    fn mix_matches_targets() {
        let (_, stats) = capture(300_000, 11);
        for (c, share) in SHARE.iter().enumerate() {
            let got = stats.class_packets[c] as f64 / stats.packets as f64;
            assert!((got - share).abs() < 0.02, "class {c}: {got:.3} vs {share}");
        }
        assert!(stats.peak_live >= 1000 && stats.peak_live <= 5000);
    }

    #[test]
    fn client_keys_do_not_repeat() {
        let keys = KeyPermutation {
            round_keys: [1, 2, 3, 4],
        };
        let mut seen = std::collections::HashSet::new();
        for n in 0..200_000 {
            assert!(seen.insert(keys.key(n)));
        }
    }
}
