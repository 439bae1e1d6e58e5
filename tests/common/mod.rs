//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod checksums;
pub mod ng;

use lsnat::capture::{Batch, CaptureReader, PacketMeta};
use lsnat::link::{self, Payload};
pub use lsnat::report::golden::Written;
use lsnat::wire::ipv4::{Ipv4, L4};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory of its own for one test (`$TMPDIR/lsnat-test-XXXXXX`), removed with
/// everything in it when the value is dropped, also when the test fails.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lsnat-test-")
        .tempdir()
        .expect("a scratch directory in the temporary folder")
}

/// The `lsnat` binary, run from the repository root.
pub fn lsnat() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lsnat"));
    c.current_dir(root());
    c
}

/// Runs `lsnat replay CAPTURE --json DIR/report.json --quiet EXTRA...`, asserts that it
/// succeeded, and returns the report, parsed.
pub fn replay_json(dir: &Path, capture: &Path, extra: &[&std::ffi::OsStr]) -> serde_json::Value {
    let json = dir.join("report.json");
    let out = lsnat()
        .arg("replay")
        .arg(capture)
        .arg("--json")
        .arg(&json)
        .arg("--quiet")
        .args(extra)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}: {out:?}", capture.display());
    read_json(&json)
}

/// A JSON file the tool wrote, parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The public capture corpus: `$LSNAT_CORPUS` when set (a folder holding MANIFEST.tsv: a
/// setting that names no such folder fails the test rather than skipping it), else
/// `../shared/corpus` beside the checkout, if present; says so when it is not.
pub fn corpus() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LSNAT_CORPUS") {
        let p = PathBuf::from(dir);
        assert!(
            p.join("MANIFEST.tsv").is_file(),
            "LSNAT_CORPUS={}: no MANIFEST.tsv there",
            p.display()
        );
        return Some(p);
    }
    let p = root().join("../shared/corpus");
    let found = p.join("MANIFEST.tsv").is_file().then_some(p);
    if found.is_none() {
        eprintln!(
            "capture corpus not found (../shared/corpus; set LSNAT_CORPUS to its folder): \
             skipping corpus tests"
        );
    }
    found
}

/// Packet counts from MANIFEST.tsv: the leading number of the `packets` column, by file name.
pub fn manifest(dir: &Path) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .expect("manifest column")
    };
    let (file, packets) = (col("file"), col("packets"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            let digits: String = fields[packets]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            (
                fields[file].to_owned(),
                digits.parse().expect("packet count"),
            )
        })
        .collect()
}

/// The capture files (pcap, pcapng) in a folder, sorted.
pub fn captures(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    files.sort();
    files
}

/// The bundled captures (`captures/`) that have a config beside them, sorted.
pub fn bundled() -> Vec<PathBuf> {
    captures(&root().join("captures"))
        .into_iter()
        .filter(|p| p.with_extension("toml").exists())
        .collect()
}

/// Every packet of a capture: metadata and bytes.
pub fn read_all(path: &Path) -> Vec<(PacketMeta, Vec<u8>)> {
    let mut r = CaptureReader::open(path).unwrap_or_else(|e| panic!("{e}"));
    let mut b = Batch::default();
    let mut out = Vec::new();
    while r.read_batch(&mut b, 1024).unwrap_or_else(|e| panic!("{e}")) {
        for i in 0..b.packets.len() {
            out.push((b.packets[i], b.bytes(i).to_vec()));
        }
    }
    out
}

/// Checksum errors of a frame computed in full by etherparse (independently of lsnat's own
/// checksum code): (IPv4 header, transport) — `None` where not checkable.
pub fn checksum_errors(
    linktype: lsnat::capture::LinkType,
    frame: &[u8],
) -> Option<(u16, Option<u16>)> {
    let Payload::Ipv4 { offset } = link::locate(linktype, frame).payload else {
        return None;
    };
    checksums::ipv4_checksum_errors(&frame[offset..])
}

/// Checks that every packet written to `output` carries the same checksum errors (usually none)
/// as the packet it came from in `input` (`written` says which, in output order), and that the
/// packets the router originated have none. Returns how many packets were compared.
pub fn assert_checksums_preserved(input: &Path, output: &Path, written: &[Written]) -> usize {
    let ins = read_all(input);
    let outs = read_all(output);
    assert_eq!(
        written.len(),
        outs.len(),
        "{}: written packet count",
        output.display()
    );
    let by_index = |i: u64| &ins[(i - 1) as usize];
    let mut compared = 0;
    for (w, (mo, bo)) in written.iter().zip(&outs) {
        let theirs = checksum_errors(mo.linktype, bo);
        match *w {
            Written::Packet(i) | Written::Released(i) => {
                let (mi, bi) = by_index(i);
                if matches!(w, Written::Packet(_)) {
                    assert_eq!(mi.ts, mo.ts, "packet {} timestamp", mi.index);
                }
                if let (Some(a), Some(b)) = (checksum_errors(mi.linktype, bi), theirs) {
                    assert_eq!(
                        a,
                        b,
                        "{}: packet {}: checksum error changed by the rewrite",
                        input.display(),
                        mi.index
                    );
                    compared += 1;
                }
            }
            Written::Originated => {
                assert_eq!(
                    theirs,
                    Some((0, Some(0))),
                    "{}: originated packet",
                    output.display()
                );
                compared += 1;
            }
        }
    }
    compared
}

/// A config with virtual servers at the first TCP SYN's and first UDP datagram's destinations.
pub fn derive_config(cap: &Path) -> Option<String> {
    let mut services: Vec<(u8, [u8; 4], u16)> = Vec::new();
    let mut r = lsnat::capture::CaptureReader::open(cap).ok()?;
    let mut b = lsnat::capture::Batch::default();
    'outer: while let Ok(true) = r.read_batch(&mut b, 1024) {
        for i in 0..b.packets.len() {
            let frame = b.bytes(i);
            if link::check_supported(b.packets[i].linktype).is_err() {
                return None;
            }
            let Payload::Ipv4 { offset } = link::locate(b.packets[i].linktype, frame).payload
            else {
                continue;
            };
            let Ok(ip) = Ipv4::parse(&frame[offset..]) else {
                continue;
            };
            let s = match ip.l4(&frame[offset..]) {
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
    let mut t = String::from("view = \"client-side\"\n");
    for (p, vip, port) in &services {
        let _ = write!(
            t,
            "[[virtual_server]]\nvip = \"{}\"\nprotocol = \"{}\"\nports = [{port}]\nmembers = [\"192.0.2.1\", \"192.0.2.2\", \"192.0.2.3\"]\n",
            std::net::Ipv4Addr::from(*vip),
            if *p == 6 { "tcp" } else { "udp" }
        );
    }
    // A placeholder service when the capture has neither, so the replay still runs.
    if services.is_empty() {
        t.push_str("[[virtual_server]]\nvip = \"203.0.113.250\"\nprotocol = \"tcp\"\nports = [1]\nmembers = [\"192.0.2.1\"]\n");
    }
    Some(t)
}

/// The IPv4 datagrams of a capture, with their packet indices.
pub fn ipv4_datagrams(path: &Path) -> Vec<(u64, Vec<u8>)> {
    read_all(path)
        .into_iter()
        .filter_map(|(m, b)| match link::locate(m.linktype, &b).payload {
            Payload::Ipv4 { offset } => Some((m.index, b[offset..].to_vec())),
            _ => None,
        })
        .collect()
}

/// Replays `capture` (config beside it) and asserts that every datagram lsnat forwards is
/// byte-identical to one the kernel sent (`kernel_out`), and as many: addresses, ports, TTL,
/// IP id, every checksum, the member chosen. Returns the number matched.
pub fn matches_kernel(capture: &Path, kernel_out: &Path) -> usize {
    let name = capture.file_name().unwrap().to_string_lossy().into_owned();
    let scratch = scratch();
    let out = scratch.path().join(&name);
    let g = lsnat::check::render(capture, None, Some(&out)).unwrap();
    let ours = ipv4_datagrams(&out);
    let theirs = ipv4_datagrams(kernel_out);
    let mut pool: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    for (_, d) in &theirs {
        *pool.entry(d.as_slice()).or_default() += 1;
    }
    let mut matched = 0;
    for (index, d) in &ours {
        match pool.get_mut(d.as_slice()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                matched += 1;
            }
            _ => panic!(
                "{name}: our packet {index} has no byte-identical datagram in the kernel's output\n  ours: {:02x?}",
                &d[..d.len().min(40)]
            ),
        }
    }
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{name}: datagrams forwarded: lsnat vs kernel"
    );
    assert!(g.text.contains(" xlat "));
    matched
}

/// A classic little-endian pcap (µs or ns): its global header and its records (record header, bytes).
pub struct Pcap {
    pub header: Vec<u8>,
    pub records: Vec<([u8; 16], Vec<u8>)>,
}

impl Pcap {
    pub fn read(path: &Path) -> Pcap {
        let d = std::fs::read(path).expect("capture");
        assert!(
            [[0xd4, 0xc3, 0xb2, 0xa1], [0x4d, 0x3c, 0xb2, 0xa1]]
                .contains(&d[..4].try_into().unwrap()),
            "a little-endian pcap"
        );
        let mut at = 24;
        let mut records = Vec::new();
        while at + 16 <= d.len() {
            let h: [u8; 16] = d[at..at + 16].try_into().expect("16 bytes");
            let len = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes")) as usize;
            records.push((h, d[at + 16..at + 16 + len].to_vec()));
            at += 16 + len;
        }
        Pcap {
            header: d[..24].to_vec(),
            records,
        }
    }

    /// The records of `a` and `b` (the same format, link type and snaplen) in timestamp
    /// order, a record of `a` first at equal times, and for each whether it came from `b`.
    pub fn merge(a: &Path, b: &Path) -> (Pcap, Vec<bool>) {
        let (a, b) = (Pcap::read(a), Pcap::read(b));
        assert_eq!(a.header, b.header, "the same format, link type and snaplen");
        let ts = |h: &[u8; 16]| {
            let w = |at: usize| u32::from_le_bytes(h[at..at + 4].try_into().expect("4 bytes"));
            (w(0), w(4))
        };
        let mut tagged: Vec<_> = (a.records.into_iter().map(|r| (r, false)))
            .chain(b.records.into_iter().map(|r| (r, true)))
            .collect();
        tagged.sort_by_key(|((h, _), from_b)| (ts(h), *from_b));
        let tags = tagged.iter().map(|(_, from_b)| *from_b).collect();
        let records = tagged.into_iter().map(|(r, _)| r).collect();
        (
            Pcap {
                header: a.header,
                records,
            },
            tags,
        )
    }

    /// The file's bytes: its global header and records.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        for (h, f) in &self.records {
            out.extend_from_slice(h);
            out.extend_from_slice(f);
        }
        out
    }

    /// The same capture as if taken with snapshot length `snap`: each record cut to it (its
    /// original length kept), and the header's snaplen field set.
    pub fn cut_to(&self, snap: u32) -> Pcap {
        let mut header = self.header.clone();
        header[16..20].copy_from_slice(&snap.to_le_bytes());
        let records = self
            .records
            .iter()
            .map(|(h, b)| {
                let mut h = *h;
                let len = b.len().min(snap as usize);
                h[8..12].copy_from_slice(&(len as u32).to_le_bytes());
                (h, b[..len].to_vec())
            })
            .collect();
        Pcap { header, records }
    }

    /// The same capture as a pcapng of one interface with the pcap's link type and
    /// resolution; `each` gives every record's bytes and flags (`None`: no `epb_flags`).
    pub fn to_pcapng(&self, each: impl FnMut(&[u8]) -> (Vec<u8>, Option<u32>)) -> ng::Ng {
        self.to_pcapng_moved(0, each)
    }

    /// [`Pcap::to_pcapng`] with every record `seconds` later (earlier when negative), past
    /// what a classic pcap's 32-bit seconds can hold if need be.
    pub fn to_pcapng_moved(
        &self,
        seconds: i64,
        mut each: impl FnMut(&[u8]) -> (Vec<u8>, Option<u32>),
    ) -> ng::Ng {
        let nanos = self.header[..4] == [0x4d, 0x3c, 0xb2, 0xa1];
        let (resol, per_s) = if nanos {
            (9u8, 1_000_000_000)
        } else {
            (6, 1_000_000)
        };
        let linktype = u16::try_from(u32::from_le_bytes(
            self.header[20..24].try_into().expect("4 bytes"),
        ))
        .expect("a 16-bit link type");
        let mut ng = ng::Ng::new();
        ng.shb(false, &[]).idb(linktype, 262_144, &[(9, &[resol])]);
        for (h, f) in &self.records {
            let s = i64::from(u32::from_le_bytes(h[..4].try_into().expect("4 bytes")));
            let s = u64::try_from(s + seconds).expect("no record moved before the epoch");
            let frac = u64::from(u32::from_le_bytes(h[4..8].try_into().expect("4 bytes")));
            let orig = u32::from_le_bytes(h[12..16].try_into().expect("4 bytes"));
            let (data, flags) = each(f);
            ng.epb_flags(0, s * per_s + frac, orig, &data, flags);
        }
        ng
    }

    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.bytes()).expect("write capture");
    }
}

/// Recomputes the TCP checksum of an Ethernet frame from scratch (RFC 793 §3.1).
pub fn fix_tcp_checksum(frame: &mut [u8]) {
    let ip = &mut frame[14..];
    let ihl = usize::from(ip[0] & 15) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let seg_len = total - ihl;
    ip[ihl + 16] = 0;
    ip[ihl + 17] = 0;
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    add(&ip[12..20]);
    add(&[0, 6]);
    add(&(seg_len as u16).to_be_bytes());
    add(&ip[ihl..ihl + seg_len]);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    ip[ihl + 16..ihl + 18].copy_from_slice(&c.to_be_bytes());
}
