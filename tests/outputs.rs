//! What the replay writes besides the packets it forwards as they came: packets the modelled
//! router makes (ICMP time exceeded, fragments released after their first) and member
//! captures (`--members-dir`), on bundled captures or variants derived from them.

mod common;

use std::path::Path;

/// Writes a classic little-endian nanosecond pcap of `packets` (timestamp in ns, original
/// length, captured bytes) with this snaplen and LinkType field.
fn write_pcap(path: &Path, snaplen: u32, linktype: u32, packets: &[(u64, u32, Vec<u8>)]) {
    let mut b = 0xa1b2_3c4du32.to_le_bytes().to_vec();
    b.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&snaplen.to_le_bytes());
    b.extend_from_slice(&linktype.to_le_bytes());
    for (ns, orig, data) in packets {
        for v in [
            (ns / 1_000_000_000) as u32,
            (ns % 1_000_000_000) as u32,
            data.len() as u32,
            *orig,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(data);
    }
    std::fs::write(path, b).unwrap();
}

/// The packets of a bundled capture: (timestamp in ns, original length, bytes).
fn bundled(name: &str) -> Vec<(u64, u32, Vec<u8>)> {
    common::read_all(&common::root().join("captures").join(name))
        .into_iter()
        .map(|(m, b)| (m.ts.nanos(), m.orig_len, b))
        .collect()
}

/// Runs `lsnat replay INPUT -c CONFIG -q ARGS...`, which must succeed.
fn replay(input: &Path, config: &str, args: &[&str]) {
    let o = common::lsnat()
        .args(["replay", "-q", "-c", config])
        .arg(input)
        .args(args)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A record is never longer than its file's snaplen (pcap: the global header's SnapLen): the
/// ICMP time exceeded the router sends (RFC 1812 §4.3.2.3: up to 576 bytes) is cut to it like
/// a captured packet, its original length the whole datagram's. `lsnat-edges.pcap` captured
/// with a snaplen of 80 (its records cut to it here; no bundled capture has a short snaplen).
#[test]
fn emitted_time_exceeded_is_cut_to_the_snaplen() {
    let scratch = common::scratch();
    let cut: Vec<(u64, u32, Vec<u8>)> = bundled("lsnat-edges.pcap")
        .into_iter()
        .map(|(ns, orig, mut b)| {
            b.truncate(80);
            (ns, orig, b)
        })
        .collect();
    let input = scratch.path().join("edges-snap80.pcap");
    write_pcap(&input, 80, 1, &cut);
    let out = scratch.path().join("out.pcap");
    replay(&input, "captures/lsnat-edges.toml", &["-o", path_str(&out)]);
    let written = common::read_all(&out);
    assert!(
        written.iter().all(|(m, _)| m.len <= 80),
        "records within the snaplen"
    );
    let te: Vec<_> = written
        .iter()
        .filter(|(_, f)| f[12..14] == [8, 0] && f[23] == 1 && f[34] == 11)
        .collect();
    assert_eq!(te.len(), 1, "one time exceeded");
    let (m, f) = te[0];
    // Cut to 80 bytes; its original length is its Ethernet header and whole datagram.
    let total = u32::from(u16::from_be_bytes([f[16], f[17]]));
    assert_eq!((m.len, m.orig_len), (80, 14 + total));
    assert!(total > 66, "{total}");
}

/// A pcap's link type is its global header's: a file of another link type than those read is
/// refused by name (exit 2, one line naming the file and where) whether or not it holds any
/// record, never replayed as an empty capture of it. (`lsnat-router.pcap`'s header with link
/// type 9, PPP, and no records; with its records, the first record names the same cause.)
#[test]
fn header_only_pcap_of_an_unsupported_link_type_is_refused() {
    let scratch = common::scratch();
    let mut bytes = std::fs::read(common::root().join("captures/lsnat-router.pcap")).unwrap();
    bytes[20..24].copy_from_slice(&9u32.to_le_bytes());
    for (name, len) in [("ppp-empty.pcap", 24), ("ppp.pcap", bytes.len())] {
        let input = scratch.path().join(name);
        std::fs::write(&input, &bytes[..len]).unwrap();
        let out = scratch.path().join("out.pcap");
        let o = common::lsnat()
            .args(["replay", "-q", "-c", "captures/lsnat-router.toml"])
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(2), "{name}: {o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        for word in [name, "unsupported link type 9 (PPP)"] {
            assert!(err.contains(word), "{err}");
        }
        assert!(!out.exists(), "{name}: no output");
    }
}
