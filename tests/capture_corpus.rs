//! The capture reader, writer and link layer against the public capture corpus
//! (`../shared/corpus`, see its MANIFEST.tsv). Skipped, saying so, when the corpus is absent.
//!
//! Expected timestamps and link-layer facts were checked by hand with `tshark` / `capinfos`.

use lsnat::capture::{
    Batch, CaptureDirection, CaptureError, CaptureFormat, CaptureReader, CaptureWriter, LinkType,
    PacketMeta,
};
mod common;

use common::{captures, corpus, manifest};
use lsnat::link::{self, Payload};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Everything a read produced.
struct Read {
    packets: Vec<(PacketMeta, Vec<u8>)>,
    warnings: Vec<String>,
    error: Option<CaptureError>,
}

fn read_all(path: &Path, max: usize) -> Result<Read, CaptureError> {
    let mut reader = CaptureReader::open(path)?;
    let mut batch = Batch::default();
    let mut packets = Vec::new();
    let error = loop {
        match reader.read_batch(&mut batch, max) {
            Ok(true) => packets.extend(
                (0..batch.packets.len()).map(|i| (batch.packets[i], batch.bytes(i).to_vec())),
            ),
            Ok(false) => break None,
            Err(e) => break Some(e),
        }
    };
    Ok(Read {
        packets,
        warnings: reader.warnings().to_vec(),
        error,
    })
}

fn name(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned()
}

const INVALID_VERSION: &str = "libpcap__pcap-invalid-version-1.pcap";
const TRUNCATED: &str = "suricata__http-mime-truncated_input.pcap";
const CORRUPT: &str = "suricata__tls_DER-incomplete-header.pcap";

#[test]
fn every_file_reads_with_the_manifest_packet_count() {
    let Some(dir) = corpus() else { return };
    let counts = manifest(&dir);
    let files = captures(&dir);
    assert!(files.len() >= 30, "corpus has {} captures", files.len());
    for path in files {
        let file = name(&path);
        let expected = counts[&file];
        if file == INVALID_VERSION {
            assert!(read_all(&path, 64).is_err(), "{file} must not open");
            continue;
        }
        let read = read_all(&path, 64).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(read.packets.len() as u64, expected, "{file}: packet count");
        let indexes: Vec<u64> = read.packets.iter().map(|p| p.0.index).collect();
        assert!(
            indexes.iter().copied().eq(1..=expected),
            "{file}: record numbers"
        );
        for (m, bytes) in &read.packets {
            assert_eq!(bytes.len(), m.len as usize);
        }
        match file.as_str() {
            TRUNCATED => assert_eq!(read.warnings.len(), 1, "{file}"),
            CORRUPT => assert!(read.error.is_some(), "{file}"),
            _ => {
                assert!(read.warnings.is_empty(), "{file}: {:?}", read.warnings);
                assert!(
                    read.error.is_none(),
                    "{file}: {:?}",
                    read.error.map(|e| e.to_string())
                );
            }
        }
    }
}

/// (file, packet count, first timestamp, last timestamp, last captured length, last interface)
const TIMESTAMPS: &[(&str, usize, &str, &str, u32, u32)] = &[
    (
        "zeek__pcapng-multi-interface.pcapng",
        6,
        "1767663089.500330493",
        "1767663437.140942000",
        182,
        1,
    ),
    (
        "ndpi__sites.pcapng",
        699,
        "1595957694.169758000",
        "1722540110.397706326",
        821,
        21,
    ),
    (
        "tcpdump__tcp-handshake-nano.pcap",
        3,
        "1418145369.924505488",
        "1418145370.052115157",
        68,
        0,
    ),
    (
        "tcpdump__pptp.pcap",
        23,
        "954147395.148077000",
        "954147396.347775000",
        60,
        0,
    ),
    (
        "pcap-parser__test001-be.pcapng",
        4,
        "0.000000000",
        "0.000000000",
        342,
        0,
    ),
    (
        "zeek__retransmit-timeout.pcapng",
        3,
        "629503200.000030000",
        "629503500.000040000",
        72,
        0,
    ),
    (
        "zeek__http-qinq-0.pcap",
        14,
        "1362692526.869344000",
        "1362692527.080972000",
        74,
        0,
    ),
    (
        "zeek__linux_dlt_sll2.pcap",
        6,
        "1660534249.872259000",
        "1660535793.578961000",
        48,
        0,
    ),
    (
        "zeek__timestamp.pcap",
        878,
        "1533585360.505285000",
        "1533585361.054417000",
        66,
        0,
    ),
    (
        TRUNCATED,
        2696,
        "1567255440.735719000",
        "1567255455.207352000",
        54,
        0,
    ),
    (
        CORRUPT,
        6,
        "1429518024.029122000",
        "1429518024.029385000",
        4274,
        0,
    ),
];

#[test]
fn timestamps_and_lengths_match_tshark() {
    let Some(dir) = corpus() else { return };
    for &(file, count, first, last, last_len, last_iface) in TIMESTAMPS {
        let read = read_all(&dir.join(file), 100).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(read.packets.len(), count, "{file}");
        let (a, z) = (&read.packets[0].0, &read.packets[count - 1].0);
        assert_eq!(
            (a.ts.to_string(), z.ts.to_string()),
            (first.to_owned(), last.to_owned()),
            "{file}"
        );
        assert_eq!((z.len, z.interface), (last_len, last_iface), "{file}");
    }
    // The corrupt file's second record carries a garbage 1994 timestamp (tshark agrees).
    let read = read_all(&dir.join(CORRUPT), 100).expect("open");
    assert_eq!(read.packets[1].0.ts.to_string(), "761195582.033594000");
    // Mixed resolutions: the first packet of ndpi__sites is on interface 8 (tsresol 6).
    let read = read_all(&dir.join("ndpi__sites.pcapng"), 100).expect("open");
    assert_eq!(read.packets[0].0.interface, 8);
    // Snaplen-truncated packets keep both lengths.
    let read = read_all(&dir.join("zeek__truncated-header.pcap"), 100).expect("open");
    assert!(
        read.packets
            .iter()
            .all(|(m, _)| m.len <= 68 && m.orig_len > m.len)
    );
}

#[test]
fn truncated_file_warns_and_keeps_whole_records() {
    let Some(dir) = corpus() else { return };
    let path = dir.join(TRUNCATED);
    let len = std::fs::metadata(&path).expect("metadata").len();
    let read = read_all(&path, 1000).expect("open");
    assert!(read.error.is_none());
    assert_eq!(read.packets.len(), 2696);
    assert_eq!(
        read.warnings,
        [format!(
            "file ends inside record 2697 at byte offset {} (1 of 16 bytes of record header); the last whole record \
             is 2696",
            len - 1
        )]
    );
}

#[test]
fn corrupt_record_is_an_error_naming_packet_and_offset() {
    let Some(dir) = corpus() else { return };
    let path = dir.join(CORRUPT);
    let read = read_all(&path, 1000).expect("open");
    assert_eq!(read.packets.len(), 6);
    let err = read.error.expect("an error");
    let msg = err.to_string();
    assert_eq!(err.at.and_then(|a| a.packet), Some(7));
    assert_eq!(err.at.and_then(|a| a.offset), Some(5035));
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(
        msg.ends_with(
            ": packet 7 (byte offset 5035): corrupt record header: captured length 4325376 (original length 0) \
             exceeds the limit of 262144 bytes (snaplen 262144)"
        ),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
}

#[test]
fn invalid_version_is_a_clear_error() {
    let Some(dir) = corpus() else { return };
    let msg = read_all(&dir.join(INVALID_VERSION), 10)
        .err()
        .expect("an error")
        .to_string();
    assert!(
        msg.ends_with(": unsupported pcap version 1.4 in the global header (only 2.x is readable)"),
        "{msg}"
    );
}

#[test]
fn link_layer_on_real_frames() {
    let Some(dir) = corpus() else { return };
    let mut summary = BTreeMap::new();
    for path in captures(&dir) {
        let file = name(&path);
        let Ok(read) = read_all(&path, 256) else {
            continue;
        };
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for (m, bytes) in &read.packets {
            if link::check_supported(m.linktype).is_err() {
                *kinds.entry("unsupported".into()).or_default() += 1;
                continue;
            }
            let v = link::locate(m.linktype, bytes);
            let key = match v.payload {
                Payload::Ipv4 { offset } => {
                    assert_eq!(
                        bytes.get(offset).map(|b| b >> 4),
                        Some(4),
                        "{file} #{}: IPv4 version",
                        m.index
                    );
                    format!("ipv4@{offset}")
                }
                Payload::NotIpv4(k) => k.to_string(),
                Payload::Truncated => "truncated".into(),
            };
            let dir = match v.direction {
                CaptureDirection::Unknown => "",
                CaptureDirection::Inbound => "/in",
                CaptureDirection::Outbound => "/out",
            };
            *kinds.entry(key + dir).or_default() += 1;
        }
        summary.insert(file, kinds);
    }
    let of = |file: &str| -> Vec<(String, usize)> { summary[file].clone().into_iter().collect() };
    let v = |pairs: &[(&str, usize)]| -> Vec<(String, usize)> {
        pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
    };
    // Values from tshark: eth.type / vlan.etype / eth.len (an 802.3 frame, LLC, length 1500),
    // sll.pkttype / sll.etype, null.family.
    assert_eq!(of("zeek__http-qinq-0.pcap"), v(&[("ipv4@22", 14)]));
    assert_eq!(
        of("zeek__linux_dlt_sll2.pcap"),
        v(&[
            ("arp/out", 1),
            ("ethertype-0x8035/out", 1),
            ("ipv4@20/in", 2),
            ("ipv6/in", 2)
        ])
    );
    assert_eq!(
        of("tcpdump__resp_1_benchmark.pcap"),
        v(&[("ipv4@16/in", 150)])
    );
    assert_eq!(
        of("tcpdump__tcp-handshake-nano.pcap"),
        v(&[("ipv4@16/in", 1), ("ipv4@16/out", 2)])
    );
    assert_eq!(of("zeek__pubsub.pcap"), v(&[("ipv4@4", 60)]));
    assert_eq!(of("zeek__rotation.pcap"), v(&[("ipv4@0", 20)]));
    assert_eq!(of("suricata__frag-ip-tcp-syn.pcap"), v(&[("ipv4@0", 3)]));
    assert_eq!(
        of("tcpreplay__test.pcap"),
        v(&[
            ("arp", 1),
            ("ethertype-0x8847", 16),
            ("ethertype-0x9000", 1),
            ("ipv4@14", 150),
            ("ipv6", 10),
            ("llc", 1)
        ])
    );
    assert_eq!(
        of("tcpdump__mpls-traceroute.pcap"),
        v(&[("unsupported", 18)])
    );
    let msg = link::check_supported(LinkType(9)).expect_err("PPP");
    assert!(
        msg.starts_with("unsupported link type 9 (PPP); supported: "),
        "{msg}"
    );
}

/// Reads `input` on a separate thread (as the tool does), writes every packet to `output`.
fn copy_threaded(input: &Path, output: &Path, max: usize) -> Result<(), String> {
    let mut reader = CaptureReader::open(input).map_err(|e| e.to_string())?;
    let mut writer = CaptureWriter::create(output, reader.format()).map_err(|e| e.to_string())?;
    let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(2);
    let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
    for _ in 0..3 {
        empty_tx.send(Batch::default()).map_err(|e| e.to_string())?;
    }
    let thread = std::thread::spawn(move || -> Result<(), CaptureError> {
        while let Ok(mut batch) = empty_rx.recv() {
            match reader.read_batch(&mut batch, max) {
                Ok(true) => {
                    if full_tx.send(batch).is_err() {
                        break;
                    }
                }
                Ok(false) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    for batch in full_rx {
        writer.begin_batch(&batch).map_err(|e| e.to_string())?;
        for i in 0..batch.packets.len() {
            writer.write(&batch, i).map_err(|e| e.to_string())?;
        }
        let _ = empty_tx.send(batch);
    }
    // A corrupt record ends the copy like the end of the file; the writer still finishes.
    let _ = thread
        .join()
        .map_err(|_| "reader thread panicked".to_owned())?;
    writer.finish().map_err(|e| e.to_string())
}

#[test]
fn round_trip_preserves_every_packet() {
    let scratch = common::scratch();
    let Some(dir) = corpus() else { return };
    for path in captures(&dir) {
        let file = name(&path);
        let Ok(before) = read_all(&path, 1000) else {
            continue;
        };
        for max in [7, 4096] {
            let out = scratch.path().join(format!("rt-{max}-{file}"));
            copy_threaded(&path, &out, max).unwrap_or_else(|e| panic!("{file}: {e}"));
            let after = read_all(&out, 1000).unwrap_or_else(|e| panic!("{file} (output): {e}"));
            assert!(
                after.error.is_none() && after.warnings.is_empty(),
                "{file}: output reads cleanly"
            );
            assert_eq!(before.packets.len(), after.packets.len(), "{file}");
            for ((a, da), (b, db)) in before.packets.iter().zip(&after.packets) {
                assert_eq!(
                    (
                        a.ts,
                        a.orig_len,
                        a.len,
                        a.interface,
                        a.linktype,
                        a.direction,
                        a.epb_flags
                    ),
                    (
                        b.ts,
                        b.orig_len,
                        b.len,
                        b.interface,
                        b.linktype,
                        b.direction,
                        b.epb_flags
                    ),
                    "{file} #{}",
                    a.index
                );
                assert!(da == db, "{file} #{}: bytes differ", a.index);
            }
            let input = std::fs::read(&path).expect("input");
            let output = std::fs::read(&out).expect("output");
            let reader = CaptureReader::open(&path).expect("open");
            if let CaptureFormat::Pcap { .. } = reader.format() {
                let whole = 24
                    + before
                        .packets
                        .iter()
                        .map(|(m, _)| 16 + m.len as usize)
                        .sum::<usize>();
                assert!(
                    output == input[..whole],
                    "{file}: output is the input up to its last whole record"
                );
            }
            let _ = std::fs::remove_file(&out);
        }
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_captures_never_panic() {
    let scratch = common::scratch();
    let Some(dir) = corpus() else { return };
    let seeds = [
        "zeek__http-qinq-0.pcap",
        "zeek__pcapng-multi-interface.pcapng",
        "pcap-parser__test001-be.pcapng",
        "zeek__linux_dlt_sll2.pcap",
        CORRUPT,
        "tcpdump__pptp.pcap",
    ];
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let input = scratch.path().join("fuzz-in");
    let output = scratch.path().join("fuzz-out");
    let (mut opened, mut errors, mut warnings) = (0, 0, 0);
    for seed in seeds {
        let original = std::fs::read(dir.join(seed)).expect("seed");
        for _ in 0..80 {
            let mut bytes = original.clone();
            match rng.below(4) {
                0 => bytes.truncate(rng.below(bytes.len())),
                1 => {
                    // Flip bits, mostly in the first headers.
                    for _ in 0..1 + rng.below(4) {
                        let span = if rng.below(2) == 0 {
                            128.min(bytes.len())
                        } else {
                            bytes.len()
                        };
                        let at = rng.below(span);
                        bytes[at] ^= 1 << rng.below(8);
                    }
                }
                2 => {
                    // Overwrite an aligned word with an awkward value.
                    let at = rng.below(bytes.len() / 4) * 4;
                    let value: u32 = [0, 1, 0xffff_ffff, 0x7fff_ffff, 0x8000_0000, 262_145, 12, 28]
                        [rng.below(8)];
                    if at + 4 <= bytes.len() {
                        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
                    }
                }
                _ => {
                    let at = rng.below(bytes.len());
                    let junk: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                    bytes.splice(at..at, junk);
                }
            }
            std::fs::write(&input, &bytes).expect("write mutation");
            let mut reader = match CaptureReader::open(&input) {
                Ok(r) => r,
                Err(e) => {
                    let msg = e.to_string();
                    assert!(!msg.contains('\n') && !msg.is_empty(), "{msg:?}");
                    errors += 1;
                    continue;
                }
            };
            opened += 1;
            let mut writer =
                CaptureWriter::create(&output, reader.format()).expect("create output");
            let mut batch = Batch::default();
            let mut calls = 0;
            loop {
                calls += 1;
                assert!(calls < 100_000, "{seed}: the reader does not advance");
                match reader.read_batch(&mut batch, 16) {
                    Ok(true) => {
                        writer.begin_batch(&batch).expect("begin batch");
                        for i in 0..batch.packets.len() {
                            let m = batch.packets[i];
                            let _ = link::locate(m.linktype, batch.bytes(i));
                            if let Err(e) = writer.write(&batch, i) {
                                assert!(!e.to_string().contains('\n'));
                            }
                        }
                    }
                    Ok(false) => break,
                    Err(e) => {
                        let msg = e.to_string();
                        assert!(!msg.contains('\n') && !msg.is_empty(), "{msg:?}");
                        errors += 1;
                        break;
                    }
                }
            }
            warnings += reader.warnings().len();
            drop(writer);
        }
    }
    let _ = std::fs::remove_file(&input);
    assert!(!output.exists() && !PathBuf::from(format!("{}.partial", output.display())).exists());
    eprintln!("mutations: {opened} opened, {errors} errors, {warnings} warnings");
    assert!(opened > 100 && errors > 10 && warnings > 10);
}

/// Throughput of the batch read loop alone and of read + write, on a large capture named by
/// `LSNAT_BENCH_CAPTURE`, next to pcap-file's own pcap reader and writer for comparison. Run:
/// `LSNAT_BENCH_CAPTURE=big.pcap cargo test --release --test capture_corpus throughput -- --ignored --nocapture`
/// (`LSNAT_BENCH_OUT` names the output file, e.g. on a tmpfs; `LSNAT_BENCH_BATCH` the batch size).
#[test]
#[ignore = "benchmark; needs LSNAT_BENCH_CAPTURE"]
fn throughput() {
    use std::io::BufWriter;
    use std::time::Instant;
    let scratch = common::scratch();
    let Some(path) = std::env::var_os("LSNAT_BENCH_CAPTURE").map(PathBuf::from) else {
        eprintln!("set LSNAT_BENCH_CAPTURE to a capture file");
        return;
    };
    let batch_size: usize = std::env::var("LSNAT_BENCH_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let out = std::env::var_os("LSNAT_BENCH_OUT")
        .map_or_else(|| scratch.path().join("bench-out"), PathBuf::from);
    let report = |what: &str, n: usize, bytes: usize, t: Instant| {
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "{what:<38} {n} packets in {s:.3} s: {:6.2} Mpkt/s, {:6.0} MB/s",
            n as f64 / s / 1e6,
            bytes as f64 / s / 1e6
        );
    };
    for _ in 0..3 {
        let t = Instant::now();
        let mut reader = CaptureReader::open(&path).expect("open");
        let mut batch = Batch::default();
        let (mut n, mut bytes) = (0, 0);
        while reader.read_batch(&mut batch, batch_size).expect("read") {
            n += batch.packets.len();
            bytes += batch.data.len();
        }
        report("CaptureReader::read_batch", n, bytes, t);

        let _ = std::fs::remove_file(&out);
        let t = Instant::now();
        let mut reader = CaptureReader::open(&path).expect("open");
        let mut writer = CaptureWriter::create(&out, reader.format()).expect("create");
        while reader.read_batch(&mut batch, batch_size).expect("read") {
            writer.begin_batch(&batch).expect("begin");
            for i in 0..batch.packets.len() {
                writer.write(&batch, i).expect("write");
            }
        }
        writer.finish().expect("finish");
        report("read_batch + CaptureWriter::write", n, bytes, t);

        if matches!(
            CaptureReader::open(&path).expect("open").format(),
            CaptureFormat::Pcap { .. }
        ) {
            // pcap-file 3.0.0-rc.3, copying each packet into a reused batch buffer as we do.
            let t = Instant::now();
            let file = std::fs::File::open(&path).expect("open");
            let mut reader = pcap_file::pcap::PcapReader::new(file).expect("pcap-file");
            let mut data = Vec::with_capacity(1 << 20);
            let (mut n, mut bytes) = (0, 0);
            while let Some(p) = reader.next_raw_packet() {
                let p = p.expect("pcap-file read");
                if n % batch_size == 0 {
                    bytes += data.len();
                    data.clear();
                }
                data.extend_from_slice(&p.data);
                n += 1;
            }
            bytes += data.len();
            report("pcap-file next_raw_packet + copy", n, bytes, t);

            let _ = std::fs::remove_file(&out);
            let t = Instant::now();
            let file = std::fs::File::open(&path).expect("open");
            let mut reader = pcap_file::pcap::PcapReader::new(file).expect("pcap-file");
            let sink =
                BufWriter::with_capacity(4 << 20, std::fs::File::create(&out).expect("create"));
            let mut writer =
                pcap_file::pcap::PcapWriter::with_header(sink, reader.header()).expect("writer");
            while let Some(p) = reader.next_raw_packet() {
                writer
                    .write_raw_packet(&p.expect("pcap-file read"))
                    .expect("pcap-file write");
            }
            writer.flush().expect("flush");
            report("pcap-file next_raw_packet + write_raw", n, bytes, t);
        }
    }
    let _ = std::fs::remove_file(&out);
}
