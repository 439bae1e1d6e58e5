//! Ethernet frames that end with their frame check sequence (IEEE 802.3 §3.2.9), as the
//! capture declares: pcap's LinkType FCS bits (draft-ietf-opsawg-pcap §4) or pcapng's
//! `if_fcslen` / `epb_flags` FCS length (pcapng §4.2, §4.3). No bundled or corpus capture has
//! them: each test derives its input from a bundled capture, every frame given its FCS.

mod common;

use common::ng::{Ng, crc32};

use std::path::Path;

/// The frame with its FCS appended, wrong by `error` (0: right).
fn with_fcs(frame: &[u8], error: u32) -> Vec<u8> {
    let mut f = frame.to_vec();
    f.extend_from_slice(&(crc32(frame) ^ error).to_le_bytes());
    f
}

/// How wrong the FCS that ends `frame` is (0: right).
fn fcs_error(frame: &[u8]) -> u32 {
    let at = frame.len() - 4;
    u32::from_le_bytes(frame[at..].try_into().unwrap()) ^ crc32(&frame[..at])
}

/// The error planted in packet `index`'s FCS: every fifth is wrong, each by its own amount.
fn planted(index: u64) -> u32 {
    if index.is_multiple_of(5) {
        0x5a00_0000 | index as u32
    } else {
        0
    }
}

/// Replays `input` with `config` to `out`; every frame of `out` must end with an FCS that is
/// right or wrong by an amount planted in the input. Returns the errors found, by frame.
fn replay_and_read_errors(input: &Path, config: &str, out: &Path) -> Vec<u32> {
    let o = common::lsnat()
        .args(["replay", "-q", "-c", config])
        .arg(input)
        .arg("-o")
        .arg(out)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let errors: Vec<u32> = common::read_all(out)
        .iter()
        .map(|(m, frame)| {
            assert_eq!(m.len, m.orig_len, "whole frames");
            fcs_error(frame)
        })
        .collect();
    for e in &errors {
        assert!(
            *e == 0 || (*e & 0xff00_0000 == 0x5a00_0000 && planted(u64::from(*e & 0xffff)) == *e),
            "an FCS wrong by {e:#x}, not as it came"
        );
    }
    errors
}

/// A pcap whose LinkType field says every frame ends with a 4-byte FCS (0x24000001: bit 26
/// set, two 16-bit words, Ethernet): `lsnat-edges.pcap` with an FCS on every frame, every
/// fifth wrong. The frames the router rewrites keep a right FCS right and a wrong one wrong by
/// the same amount (the old FCS was left, wrong for every rewritten frame); the ICMP time
/// exceeded it sends gets a right one (it had none); the fragments it releases after their
/// first keep theirs.
#[test]
fn pcap_frames_keep_their_fcs_right_or_wrong_by_the_same_amount() {
    let scratch = common::scratch();
    let src = std::fs::read(common::root().join("captures/lsnat-edges.pcap")).unwrap();
    let mut bytes = src[..24].to_vec();
    bytes[20..24].copy_from_slice(&0x2400_0001u32.to_le_bytes());
    let packets = common::read_all(&common::root().join("captures/lsnat-edges.pcap"));
    let mut wrong = 0;
    for (m, frame) in &packets {
        let f = with_fcs(frame, planted(m.index));
        wrong += usize::from(planted(m.index) != 0);
        let ns = m.ts.nanos();
        for v in [
            (ns / 1_000_000_000) as u32,
            (ns % 1_000_000_000) as u32,
            f.len() as u32,
            m.orig_len + 4,
        ] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes.extend_from_slice(&f);
    }
    let input = scratch.path().join("edges-fcs.pcap");
    std::fs::write(&input, &bytes).unwrap();
    let out = scratch.path().join("out.pcap");
    let errors = replay_and_read_errors(&input, "captures/lsnat-edges.toml", &out);
    let kept_wrong = errors.iter().filter(|e| **e != 0).count();
    assert!(
        kept_wrong > 3 && kept_wrong <= wrong,
        "{kept_wrong} of {wrong} wrong FCSs"
    );
    assert_eq!(&std::fs::read(&out).unwrap()[..24], &bytes[..24], "header");
    // The time exceeded the router sent (answering packet 5) is there, with its FCS.
    let time_exceeded = common::read_all(&out)
        .iter()
        .filter(|(_, f)| f[12..14] == [8, 0] && f[23] == 1 && f[34] == 11)
        .count();
    assert_eq!(time_exceeded, 1);
}

/// pcapng: `if_fcslen` (in bits, 32) on the interface, or `epb_flags` bits 5-8 (in bytes, 4)
/// on the packet, say the frames end with an FCS; it is kept as right or as wrong as it came.
/// (`lsnat-router.pcap`, written as pcapng with an FCS on every frame.)
#[test]
fn pcapng_frames_keep_their_fcs_by_interface_or_packet() {
    let scratch = common::scratch();
    let packets = common::read_all(&common::root().join("captures/lsnat-router.pcap"));
    for per_packet in [false, true] {
        let mut ng = Ng::new();
        // if_tsresol: ns; without per-packet flags, if_fcslen: 32 bits.
        let fcslen: &[(u16, &[u8])] = if per_packet { &[] } else { &[(13, &[32])] };
        ng.shb(false, &[])
            .idb(1, 262_144, &[&[(9u16, &[9u8][..])][..], fcslen].concat());
        for (m, frame) in &packets {
            let f = with_fcs(frame, planted(m.index));
            // epb_flags: inbound, FCS length 4 bytes.
            let flags = (1u32 | 4 << 5).to_le_bytes();
            let opts: &[(u16, &[u8])] = if per_packet { &[(2, &flags)] } else { &[] };
            ng.epb(0, m.ts.nanos(), f.len() as u32, &f, opts);
        }
        let input = scratch
            .path()
            .join(format!("router-fcs-{per_packet}.pcapng"));
        std::fs::write(&input, &ng.out).unwrap();
        let out = scratch.path().join(format!("out-{per_packet}.pcapng"));
        let errors = replay_and_read_errors(&input, "captures/lsnat-router.toml", &out);
        assert!(errors.iter().filter(|e| **e != 0).count() > 3);
    }
}
