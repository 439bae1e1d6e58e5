//! Reader and writer tests on hand-built captures (the public corpus is exercised by
//! `tests/capture_corpus.rs`).

use super::*;
use std::path::{Path, PathBuf};

/// A file in the temp directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("lsnat-capture-unit-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).expect("write temp file");
        TempFile(path)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Packets with their bytes.
type Packets = Vec<(PacketMeta, Vec<u8>)>;

/// Every packet of `path` (metadata and bytes), the warnings, and the error that ended it.
fn read_all(path: &Path, max: usize) -> (Packets, Vec<String>, Option<CaptureError>) {
    let mut reader = CaptureReader::open(path).expect("open");
    let mut batch = Batch::default();
    let mut out = Vec::new();
    loop {
        match reader.read_batch(&mut batch, max) {
            Ok(true) => out.extend(
                (0..batch.packets.len()).map(|i| (batch.packets[i], batch.bytes(i).to_vec())),
            ),
            Ok(false) => return (out, reader.warnings().to_vec(), None),
            Err(e) => {
                assert!(
                    !reader.read_batch(&mut batch, max).expect("after an error"),
                    "stops after an error"
                );
                return (out, reader.warnings().to_vec(), Some(e));
            }
        }
    }
}

/// Reads `input` and writes it back to `output`; returns the bytes written.
fn copy(input: &Path, output: &Path, max: usize) -> Vec<u8> {
    let mut reader = CaptureReader::open(input).expect("open");
    let mut writer = CaptureWriter::create(output, reader.format()).expect("create");
    let mut batch = Batch::default();
    while reader.read_batch(&mut batch, max).expect("read") {
        writer.begin_batch(&batch).expect("begin");
        for i in 0..batch.packets.len() {
            writer.write(&batch, i).expect("write");
        }
        writer.end_batch(&batch).expect("end");
    }
    writer.finish().expect("finish");
    std::fs::read(output).expect("read output")
}

// ---- pcap ----------------------------------------------------------------------------------

fn pcap(
    be: bool,
    nanos: bool,
    snaplen: u32,
    linktype: u32,
    records: &[(u32, u32, u32, &[u8])],
) -> Vec<u8> {
    let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut f = w32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }).to_vec();
    f.extend_from_slice(&w16(2));
    f.extend_from_slice(&w16(4));
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&w32(snaplen));
    f.extend_from_slice(&w32(linktype));
    for (secs, frac, orig, data) in records {
        for v in [*secs, *frac, data.len() as u32, *orig] {
            f.extend_from_slice(&w32(v));
        }
        f.extend_from_slice(data);
    }
    f
}

#[test]
fn pcap_both_orders_and_precisions() {
    for (be, nanos) in [(false, false), (false, true), (true, false), (true, true)] {
        let records: &[(u32, u32, u32, &[u8])] = &[
            (1_700_000_000, 123_456, 60, &[1; 60]),
            (1_700_000_001, 999_999, 1514, &[2; 96]),
            (5, 0, 10, &[3; 20]),
        ];
        let file = TempFile::new(
            &format!("orders-{be}-{nanos}.pcap"),
            &pcap(be, nanos, 96, 113, records),
        );
        let (pkts, warnings, err) = read_all(file.path(), 2);
        assert!(err.is_none() && warnings.is_empty());
        assert_eq!(pkts.len(), 3);
        let unit = if nanos { 1 } else { 1000 };
        assert_eq!(
            pkts[0].0.ts.nanos(),
            1_700_000_000_000_000_000 + 123_456 * unit
        );
        assert_eq!(
            pkts[1].0.ts.nanos(),
            1_700_000_001_000_000_000 + 999_999 * unit
        );
        assert_eq!(
            (pkts[1].0.orig_len, pkts[1].0.len),
            (1514, 96),
            "snaplen-truncated"
        );
        assert_eq!(
            (pkts[2].0.orig_len, pkts[2].0.len),
            (10, 20),
            "incl_len > orig_len is kept"
        );
        assert_eq!(pkts[2].1, vec![3; 20]);
        assert_eq!(
            pkts.iter().map(|p| p.0.index).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(
            pkts.iter()
                .all(|p| p.0.linktype == LinkType::LINUX_SLL && p.0.interface == 0)
        );
        let out = TempFile::new(&format!("orders-out-{be}-{nanos}.pcap"), b"");
        assert_eq!(
            copy(file.path(), out.path(), 2),
            std::fs::read(file.path()).expect("input")
        );
    }
}

#[test]
fn pcap_fractional_seconds_overflow_is_read_and_reported_once() {
    let records: &[(u32, u32, u32, &[u8])] =
        &[(10, 1_500_000, 4, &[1; 4]), (10, 2_000_000, 4, &[2; 4])];
    let file = TempFile::new("frac.pcap", &pcap(false, false, 65535, 1, records));
    let (pkts, warnings, err) = read_all(file.path(), 10);
    assert!(err.is_none());
    assert_eq!(pkts[0].0.ts.nanos(), 11_500_000_000);
    assert_eq!(pkts[1].0.ts.nanos(), 12_000_000_000);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0]
            .starts_with("record 1 at byte offset 24 has a fractional-seconds field of 1500000")
    );
}

/// Whole batches ([`CaptureWriter::write_all`]) give the bytes that packet-by-packet writing
/// gives: the input again for a normal file (records as they lie, in place or copied), and a
/// normalised timestamp where a fractional-seconds field was out of range. Batch sizes from
/// one packet up, records large and small (one larger than a read), both byte orders.
/// Payloads of 3000 packets of many sizes, and one larger than a whole batch's read.
fn mixed_payloads() -> (Vec<Vec<u8>>, Vec<u8>) {
    let small = (0..3000u32)
        .map(|i| vec![i as u8; 40 + (i as usize * 37) % 1500])
        .collect();
    (small, vec![7u8; super::pcap::READ_BYTES + 10_000])
}

/// Records of [`mixed_payloads`] for [`pcap`]: the large one is the 1001st.
fn mixed_records<'a>(small: &'a [Vec<u8>], big: &'a [u8]) -> Vec<(u32, u32, u32, &'a [u8])> {
    let mut records: Vec<(u32, u32, u32, &[u8])> = small
        .iter()
        .enumerate()
        .map(|(i, d)| (i as u32, 5, d.len() as u32 + 4, &d[..]))
        .collect();
    records.insert(1000, (2000, 0, big.len() as u32, big));
    records
}

#[test]
fn whole_batches_write_what_single_packets_write() {
    let (small, big) = mixed_payloads();
    for be in [false, true] {
        let mut records = mixed_records(&small, &big);
        let normal = pcap(be, false, 1 << 24, 1, &records);
        records[5].1 = 1_500_000; // out of range: written back normalised
        let odd = pcap(be, false, 1 << 24, 1, &records);
        for (name, bytes) in [("normal", &normal), ("odd", &odd)] {
            let file = TempFile::new(&format!("whole-{name}-{be}.pcap"), bytes);
            let single = TempFile::new(&format!("whole-{name}-{be}-single.pcap"), &[]);
            let expected = copy(file.path(), single.path(), 4096);
            if name == "normal" {
                assert!(expected == normal, "a plain copy is the input");
            }
            for max in [1, 3, 1000, 4096, 1 << 20] {
                let out = TempFile::new(&format!("whole-{name}-{be}-{max}.pcap"), &[]);
                let mut reader = CaptureReader::open(file.path()).expect("open");
                let mut writer =
                    CaptureWriter::create(out.path(), reader.format()).expect("create");
                let mut batch = Batch::default();
                let mut n = 0;
                while reader.read_batch(&mut batch, max).expect("read") {
                    writer.begin_batch(&batch).expect("begin");
                    n += writer.write_all(&mut batch).expect("write");
                }
                writer.finish().expect("finish");
                assert_eq!(n, records.len(), "{name} {be} {max}");
                let got = std::fs::read(out.path()).expect("output");
                assert!(got == expected, "{name}, big-endian {be}, batches of {max}");
            }
        }
    }
}

#[test]
fn the_hook_sees_every_packet_once_in_order_as_read() {
    // Records across read pieces, one larger than a whole batch's read, batches of every size.
    let (small, big) = mixed_payloads();
    let records = mixed_records(&small, &big);
    let pcap_file = TempFile::new("hook.pcap", &pcap(false, false, 1 << 24, 1, &records));
    let ng_file = TempFile::new("hook.pcapng", &two_sections());
    let ng_total = read_all(ng_file.path(), 100).0.len();
    assert!(ng_total > 1);
    for (file, total) in [(&pcap_file, records.len()), (&ng_file, ng_total)] {
        for max in [1, 7, 1000, 4096] {
            let mut reader = CaptureReader::open(file.path()).expect("open");
            let mut batch = Batch::default();
            let mut seen = 0;
            loop {
                let mut hooked: Vec<(PacketMeta, Vec<u8>)> = Vec::new();
                let more = reader
                    .read_batch_with(&mut batch, max, |frame, meta| {
                        hooked.push((*meta, frame.to_vec()))
                    })
                    .expect("read");
                if !more {
                    assert!(hooked.is_empty());
                    break;
                }
                assert_eq!(hooked.len(), batch.packets.len(), "max {max}");
                for (i, (meta, frame)) in hooked.iter().enumerate() {
                    assert_eq!(meta.index, batch.packets[i].index);
                    assert!(frame[..] == *batch.bytes(i), "packet {}", meta.index);
                }
                seen += hooked.len();
            }
            assert_eq!(
                seen,
                total,
                "{} with batches of {max}",
                file.path().display()
            );
        }
    }
}

#[test]
fn pcap_format_and_link_type() {
    let bytes = pcap(true, true, 1600, 101, &[]);
    let file = TempFile::new("format.pcap", &bytes);
    let reader = CaptureReader::open(file.path()).expect("open");
    match reader.format() {
        CaptureFormat::Pcap {
            header,
            nanos,
            big_endian,
            linktype,
            fcs_len,
        } => {
            assert_eq!(&header[..], &bytes[..24]);
            assert!(*nanos && *big_endian);
            assert_eq!((*linktype, *fcs_len), (LinkType::RAW, 0));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(reader.interfaces(), &[LinkType::RAW]);
    let (pkts, warnings, err) = read_all(file.path(), 10);
    assert!(pkts.is_empty() && warnings.is_empty() && err.is_none());
}

#[test]
fn pcap_ending_inside_a_record_is_a_warning() {
    let whole = pcap(
        false,
        false,
        65535,
        1,
        &[(1, 0, 60, &[7; 60]), (2, 0, 60, &[8; 60])],
    );
    // Cut inside the second record's header, then inside its data.
    for (cut, what) in [
        (24 + 76 + 5, "5 of 16 bytes of record header"),
        (24 + 76 + 16 + 30, "46 of 76 bytes"),
    ] {
        let file = TempFile::new(&format!("cut-{cut}.pcap"), &whole[..cut]);
        let (pkts, warnings, err) = read_all(file.path(), 1000);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(pkts.len(), 1);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("file ends inside record 2 at byte offset 100 (")
                && warnings[0].contains(what)
                && warnings[0].ends_with("the last whole record is 1"),
            "{}",
            warnings[0]
        );
    }
}

#[test]
fn pcap_corrupt_record_is_an_error_after_the_good_ones() {
    let mut bytes = pcap(
        false,
        false,
        65535,
        1,
        &[(1, 0, 60, &[7; 60]), (2, 0, 60, &[8; 60])],
    );
    bytes[24 + 76 + 8..24 + 76 + 12].copy_from_slice(&5_000_000u32.to_le_bytes());
    let file = TempFile::new("corrupt.pcap", &bytes);
    let (pkts, warnings, err) = read_all(file.path(), 1000);
    assert_eq!(pkts.len(), 1);
    assert!(warnings.is_empty());
    let msg = err.expect("an error").to_string();
    assert!(
        msg.contains(
            ": packet 2 (byte offset 100): corrupt record header: captured length 5000000"
        ),
        "{msg}"
    );
}

#[test]
fn files_that_are_not_captures() {
    let open_err = |bytes: &[u8], name: &str| {
        let file = TempFile::new(name, bytes);
        match CaptureReader::open(file.path()) {
            Ok(_) => panic!("{name} opened"),
            Err(e) => e.to_string(),
        }
    };
    assert!(open_err(b"", "empty").ends_with("empty file: not a pcap or pcapng capture"));
    let text = open_err(b"# not a capture\nhello\n", "text");
    assert!(text.ends_with(
        "not a pcap or pcapng capture (starts with 23 20 6e 6f 74 20 61 20, which looks like text)"
    ));
    assert!(open_err(b"ab", "short").ends_with("(only 2 bytes long)"));
    assert!(
        open_err(&pcap(false, false, 65535, 1, &[])[..20], "shorthdr")
            .ends_with("truncated pcap global header (20 of 24 bytes)")
    );
    let mut v1 = pcap(false, false, 65535, 1, &[]);
    v1[4] = 1;
    assert!(
        open_err(&v1, "v1")
            .ends_with("unsupported pcap version 1.4 in the global header (only 2.x is readable)")
    );
    let mut ng = vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4];
    ng.resize(28, 0);
    assert!(open_err(&ng, "badbom").ends_with("bad pcapng byte-order magic 01020304"));
    let missing = CaptureReader::open(Path::new("/nonexistent/lsnat.pcap"))
        .err()
        .expect("missing file")
        .to_string();
    assert!(
        missing.starts_with("/nonexistent/lsnat.pcap: cannot open: "),
        "{missing}"
    );
    assert!(!missing.contains('\n'));
}

// ---- pcapng --------------------------------------------------------------------------------

use ng_builder::Ng;

/// The pcapng builder the integration tests use too.
#[path = "../../tests/common/ng.rs"]
mod ng_builder;

/// The unit tests' section header option: a comment.
const UNIT: &[(u16, &[u8])] = &[(4, b"lsnat unit test")];

/// A two-section file: little-endian with two interfaces of different resolutions (the second
/// with an offset), flags, a Simple Packet Block and blocks to skip; then a big-endian section.
fn two_sections() -> Vec<u8> {
    let mut ng = Ng::new();
    ng.shb(false, UNIT)
        .idb(1, 262_144, &[(2, b"eth0"), (9, &[9])])
        .idb(1, 0, &[(9, &[6]), (14, &100i64.to_le_bytes())])
        .epb_flags(0, 1_700_000_000_123_456_789, 60, &[0xa; 60], Some(1))
        .block(4, &[0, 0, 0, 0]) // name resolution: end of records
        .epb_flags(1, 1_500_000, 1514, &[0xb; 61], Some(0x0000_0102))
        .spb(&[0xc; 60])
        .block(5, &[0; 12]) // interface statistics, no options
        .block(0x0000_0bad, &[0, 0, 0x7e, 0x2a, 1, 2, 3, 4]) // custom block
        .epb_flags(0, 5, 3, &[0xd; 7], None); // captured length above the original one
    ng.shb(true, UNIT)
        .idb(113, 65_535, &[(9, &[0x80 | 20])])
        .epb_flags(0, 3 << 20, 46, &[0xe; 46], Some(2));
    ng.out
}

#[test]
fn pcapng_sections_interfaces_resolutions_and_flags() {
    let file = TempFile::new("sections.pcapng", &two_sections());
    let (pkts, warnings, err) = read_all(file.path(), 2);
    assert!(err.is_none() && warnings.is_empty(), "{err:?} {warnings:?}");
    let got: Vec<_> = pkts
        .iter()
        .map(|(m, d)| {
            (
                m.index,
                m.ts.nanos(),
                m.interface,
                m.linktype.0,
                m.orig_len,
                m.len,
                m.direction,
                m.epb_flags,
                d[0],
            )
        })
        .collect();
    use CaptureDirection::*;
    let expected = [
        (
            1,
            1_700_000_000_123_456_789,
            0,
            1,
            60,
            60,
            Inbound,
            Some(1),
            0xa,
        ),
        (
            2,
            101_500_000_000,
            1,
            1,
            1514,
            61,
            Outbound,
            Some(0x102),
            0xb,
        ),
        (3, 101_500_000_000, 0, 1, 60, 60, Unknown, None, 0xc), // SPB: previous timestamp
        (4, 5, 0, 1, 3, 7, Unknown, None, 0xd),
        (5, 3_000_000_000, 2, 113, 46, 46, Outbound, Some(2), 0xe),
    ];
    assert_eq!(got, expected);

    let mut reader = CaptureReader::open(file.path()).expect("open");
    assert!(matches!(
        reader.format(),
        CaptureFormat::PcapNg { big_endian: false }
    ));
    let mut batch = Batch::default();
    let mut interfaces = Vec::new();
    while reader.read_batch(&mut batch, 1).expect("read") {
        interfaces.extend(batch.new_interfaces());
    }
    assert_eq!(
        interfaces,
        [
            (0, LinkType::ETHERNET),
            (1, LinkType::ETHERNET),
            (2, LinkType::LINUX_SLL)
        ]
    );
    assert_eq!(
        reader.interfaces(),
        &[LinkType::ETHERNET, LinkType::ETHERNET, LinkType::LINUX_SLL]
    );
}

#[test]
fn pcapng_round_trip() {
    let input = two_sections();
    let file = TempFile::new("rt.pcapng", &input);
    let (before, _, _) = read_all(file.path(), 3);
    for max in [1, 2, 100] {
        let out = TempFile::new(&format!("rt-out-{max}.pcapng"), b"");
        let written = copy(file.path(), out.path(), max);
        let (after, warnings, err) = read_all(out.path(), 3);
        assert!(err.is_none() && warnings.is_empty());
        assert_eq!(before.len(), after.len());
        for ((a, da), (b, db)) in before.iter().zip(&after) {
            assert_eq!(
                (
                    a.index,
                    a.ts,
                    a.interface,
                    a.linktype,
                    a.orig_len,
                    a.direction,
                    a.epb_flags,
                    da
                ),
                (
                    b.index,
                    b.ts,
                    b.interface,
                    b.linktype,
                    b.orig_len,
                    b.direction,
                    b.epb_flags,
                    db
                )
            );
        }
        // The section and interface blocks are copied verbatim (the section length was already
        // "unknown").
        let mut head = 0;
        for _ in 0..3 {
            head +=
                u32::from_le_bytes(input[head + 4..head + 8].try_into().expect("4 bytes")) as usize;
        }
        assert_eq!(&written[..head], &input[..head]);
        // Name resolution and interface statistics blocks are not written.
        assert!(written.len() < input.len());
    }
}

#[test]
fn pcapng_direction_changes_are_written() {
    let file = TempFile::new("dir.pcapng", &two_sections());
    let mut reader = CaptureReader::open(file.path()).expect("open");
    let out = TempFile::new("dir-out.pcapng", b"");
    let mut writer = CaptureWriter::create(out.path(), reader.format()).expect("create");
    let mut batch = Batch::default();
    while reader.read_batch(&mut batch, 10).expect("read") {
        writer.begin_batch(&batch).expect("begin");
        for m in &mut batch.packets {
            m.direction = CaptureDirection::Inbound;
        }
        for i in 0..batch.packets.len() {
            writer.write(&batch, i).expect("write");
        }
        writer.end_batch(&batch).expect("end");
    }
    writer.finish().expect("finish");
    let (after, _, _) = read_all(out.path(), 10);
    let flags: Vec<_> = after
        .iter()
        .map(|p| (p.0.direction, p.0.epb_flags))
        .collect();
    use CaptureDirection::{Inbound, Unknown};
    assert_eq!(
        flags,
        [
            (Inbound, Some(1)),
            (Inbound, Some(0x101)),
            (Unknown, None), // a simple packet block has no flags to say it
            (Inbound, Some(1)),
            (Inbound, Some(1))
        ]
    );
}

#[test]
fn pcapng_ending_inside_a_block_is_a_warning() {
    let input = two_sections();
    // Cut inside the fifth packet's block (the last block of the file).
    let cut = input.len() - 10;
    let file = TempFile::new("cut.pcapng", &input[..cut]);
    let (pkts, warnings, err) = read_all(file.path(), 100);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pkts.len(), 4);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with("file ends inside record 5 at byte offset"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[0].ends_with("the last whole record is 4"),
        "{}",
        warnings[0]
    );
}

#[test]
fn pcapng_packet_for_an_undescribed_interface_is_an_error() {
    let mut ng = Ng::new();
    ng.shb(true, UNIT)
        .idb(1, 0, &[])
        .epb_flags(0, 1, 4, &[1; 4], None)
        .epb_flags(3, 2, 4, &[2; 4], None);
    let file = TempFile::new("badif.pcapng", &ng.out);
    let (pkts, _, err) = read_all(file.path(), 100);
    assert_eq!(pkts.len(), 1);
    let msg = err.expect("error").to_string();
    assert!(msg.contains("packet 2 (byte offset "), "{msg}");
    assert!(
        msg.ends_with("packet block refers to interface 3 but its section describes 1"),
        "{msg}"
    );
}

#[test]
fn big_endian_pcapng_without_packets_round_trips() {
    let mut ng = Ng::new();
    ng.shb(true, UNIT).idb(1, 0, &[]);
    let file = TempFile::new("empty.pcapng", &ng.out);
    let out = TempFile::new("empty-out.pcapng", b"");
    let written = copy(file.path(), out.path(), 10);
    assert_eq!(written, ng.out);
}

#[test]
fn writer_leaves_nothing_behind_unless_finished() {
    let file = TempFile::new(
        "w.pcap",
        &pcap(false, false, 65535, 1, &[(1, 0, 4, &[1; 4])]),
    );
    let reader = CaptureReader::open(file.path()).expect("open");
    let out = std::env::temp_dir().join(format!(
        "lsnat-capture-unit-{}-dropped.pcap",
        std::process::id()
    ));
    let partial = PathBuf::from(format!("{}.partial", out.display()));
    let writer = CaptureWriter::create(&out, reader.format()).expect("create");
    assert!(partial.exists());
    drop(writer);
    assert!(!partial.exists() && !out.exists());
    let writer = CaptureWriter::create(&out, reader.format()).expect("create");
    writer.finish().expect("finish");
    assert!(!partial.exists());
    assert_eq!(std::fs::read(&out).expect("output").len(), 24);
    let _ = std::fs::remove_file(&out);
}

#[test]
fn reader_is_send() {
    fn send<T: Send>() {}
    send::<CaptureReader>();
    send::<Batch>();
}

/// pcapng §4.4: Simple Packet Blocks before any timestamp take the first one after them,
/// found by reading ahead, also past the batch they are in and past another interface's
/// description (whose resolution decodes it); with none in the file they are at 0.
#[test]
fn simple_packet_blocks_before_any_timestamp_take_the_next_one() {
    let mut ng = Ng::new();
    ng.shb(false, UNIT)
        .idb(1, 0, &[(9, &[9])])
        .spb(&[1; 20])
        .spb(&[2; 20])
        .block(4, &[0, 0, 0, 0])
        .idb(1, 0, &[(9, &[3])])
        .epb_flags(1, 1_700_000_000_123, 20, &[3; 20], None)
        .spb(&[4; 20]);
    let file = TempFile::new("lead-spb.pcapng", &ng.out);
    for max in [1, 100] {
        let (pkts, _, err) = read_all(file.path(), max);
        assert!(err.is_none(), "{err:?}");
        let got: Vec<(u64, bool)> = pkts.iter().map(|(m, _)| (m.ts.nanos(), m.simple)).collect();
        let t = 1_700_000_000_123_000_000;
        assert_eq!(
            got,
            [(t, true), (t, true), (t, false), (t, true)],
            "batches of {max}"
        );
    }
    let mut none = Ng::new();
    none.shb(true, UNIT)
        .idb(1, 0, &[])
        .spb(&[1; 20])
        .spb(&[2; 20]);
    let file = TempFile::new("no-ts.pcapng", &none.out);
    let (pkts, _, _) = read_all(file.path(), 1);
    assert!(pkts.iter().all(|(m, _)| m.ts.nanos() == 0 && m.simple));
    let out = TempFile::new("no-ts-out.pcapng", b"");
    assert_eq!(
        copy(file.path(), out.path(), 1),
        none.out,
        "written back as they were"
    );
}
