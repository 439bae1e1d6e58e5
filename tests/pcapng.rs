//! pcapng cases no bundled or corpus capture holds (draft-ietf-opsawg-pcapng): each test
//! derives its input from `captures/lsnat-router.pcap` (a real recording), written as pcapng
//! into a scratch folder with the blocks and options under test, replays it with the
//! capture's own config and reads the output block by block.

mod common;

use common::ng::{Ng, crc32};

use std::path::{Path, PathBuf};
use std::process::Output;

/// The packets of `captures/lsnat-router.pcap`: timestamp (ns) and frame.
fn router_packets() -> Vec<(u64, Vec<u8>)> {
    common::read_all(&common::root().join("captures/lsnat-router.pcap"))
        .into_iter()
        .map(|(m, b)| (m.ts.nanos(), b))
        .collect()
}

/// A block of a pcapng file: its byte order, type and body.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Block {
    be: bool,
    type_: u32,
    body: Vec<u8>,
}

/// Every block of a pcapng file.
fn blocks(path: &Path) -> Vec<Block> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let (mut at, mut be) = (0, false);
    while at + 12 <= bytes.len() {
        let r32 = |b: &[u8], be: bool| {
            let w = [b[0], b[1], b[2], b[3]];
            if be {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        let type_ = r32(&bytes[at..], be);
        if type_ == 0x0a0d_0d0a {
            be = bytes[at + 8] == 0x1a;
        }
        let len = r32(&bytes[at + 4..], be) as usize;
        assert_eq!(r32(&bytes[at + len - 4..], be) as usize, len, "trailer");
        out.push(Block {
            be,
            type_,
            body: bytes[at + 8..at + len - 4].to_vec(),
        });
        at += len;
    }
    assert_eq!(at, bytes.len(), "{}: whole blocks", path.display());
    out
}

/// Runs `lsnat replay INPUT -c captures/lsnat-router.toml -o OUTPUT -q EXTRA...`.
fn replay(input: &Path, output: &Path, extra: &[&str]) -> Output {
    common::lsnat()
        .args(["replay", "-q", "-c", "captures/lsnat-router.toml"])
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(extra)
        .output()
        .expect("runs")
}

/// [`replay`], which must succeed.
fn replay_ok(input: &Path, output: &Path, extra: &[&str]) {
    let o = replay(input, output, extra);
    assert!(
        o.status.success(),
        "{}: {}",
        input.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Writes `ng` to `dir/name`.
fn save(dir: &Path, name: &str, ng: &Ng) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, &ng.out).unwrap();
    p
}

/// The one line of error of a failed run, which exited with 2.
fn one_error_line(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("lsnat: error: "), "{err}");
    err
}

/// pcapng §4.2: `if_tsresol` finer than the nanoseconds lsnat keeps (2^-30 s and finer, 10^-10
/// s and finer) cannot be written back exactly, so it is refused in one line naming the file,
/// the interface block's byte offset and number and the resolution; 2^-29 s and 10^-9 s are
/// replayed. (No real capture uses such resolutions: the input is `lsnat-router.pcap` with
/// its timestamps written in the resolution under test.)
#[test]
fn timestamp_resolution_finer_than_a_nanosecond_is_refused_by_name() {
    let scratch = common::scratch();
    let packets = router_packets();
    let make = |resol: u8| {
        let mut ng = Ng::default();
        ng.shb(false, &[]).idb(1, 262_144, &[(9, &[resol])]);
        for (ns, frame) in &packets {
            let units = if resol & 0x80 != 0 {
                ((u128::from(*ns) << (resol & 0x7f)) / 1_000_000_000) as u64
            } else {
                (u128::from(*ns) * 10u128.pow(u32::from(resol)) / 1_000_000_000) as u64
            };
            ng.epb(0, units, frame.len() as u32, frame, &[]);
        }
        save(scratch.path(), &format!("res-{resol:02x}.pcapng"), &ng)
    };
    for (resol, shown) in [(0xa0, "2^-32 s"), (0x9e, "2^-30 s"), (10, "10^-10 s")] {
        let input = make(resol);
        let out = scratch.path().join("out.pcapng");
        let err = one_error_line(&replay(&input, &out, &[]));
        for word in [
            &format!("res-{resol:02x}.pcapng: byte offset 28: "),
            "interface description block (interface 0)",
            &format!("timestamp resolution {shown}"),
            "finer than the 1 ns lsnat keeps",
        ] {
            assert!(err.contains(word), "{err} should say {word}");
        }
        assert!(!out.exists());
    }
    for resol in [0x9d, 9] {
        let input = make(resol);
        let out = scratch.path().join(format!("out-{resol:02x}.pcapng"));
        replay_ok(&input, &out, &[]);
        let times = |p: &Path| -> Vec<u64> {
            common::read_all(p)
                .iter()
                .map(|(m, _)| m.ts.nanos())
                .collect()
        };
        assert_eq!(times(&out), times(&input), "timestamps as read");
    }
}

/// Options of section and interface blocks are copied as bytes, never decoded: an
/// `if_description` in Latin-1 (not UTF-8, as pcapng §4.2 asks) does not stop the replay and
/// leaves as it came. (Derived from `lsnat-router.pcap`; no real capture has one.)
#[test]
fn interface_description_that_is_not_utf8_is_copied_as_bytes() {
    let scratch = common::scratch();
    let description = b"Connexion r\xe9seau".to_vec();
    let mut ng = Ng::default();
    ng.shb(false, &[(3, b"\xe9t\xe9")])
        .idb(1, 262_144, &[(9, &[9]), (3, &description)]);
    for (ns, frame) in router_packets() {
        ng.epb(0, ns, frame.len() as u32, &frame, &[]);
    }
    let input = save(scratch.path(), "latin1.pcapng", &ng);
    let out = scratch.path().join("out.pcapng");
    replay_ok(&input, &out, &[]);
    let (a, b) = (blocks(&input), blocks(&out));
    assert_eq!(a[..2], b[..2], "section and interface blocks as they were");
    assert_eq!(a.len(), b.len());
}

/// The options of a packet block body (EPB, or PB with `obsolete`), in order: (code, value).
fn packet_options(b: &Block) -> Vec<(u16, Vec<u8>)> {
    let r16 = |x: &[u8]| {
        if b.be {
            u16::from_be_bytes([x[0], x[1]])
        } else {
            u16::from_le_bytes([x[0], x[1]])
        }
    };
    let r32 = |x: &[u8]| {
        let w = [x[0], x[1], x[2], x[3]];
        if b.be {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    };
    let caplen = r32(&b.body[12..]) as usize;
    let mut at = 20 + caplen.next_multiple_of(4);
    let mut out = Vec::new();
    while at + 4 <= b.body.len() {
        let (code, len) = (r16(&b.body[at..]), usize::from(r16(&b.body[at + 2..])));
        if code == 0 {
            break;
        }
        out.push((code, b.body[at + 4..at + 4 + len].to_vec()));
        at += 4 + len.next_multiple_of(4);
    }
    out
}

/// A packet block's captured bytes.
fn packet_data(b: &Block) -> &[u8] {
    let w = [b.body[12], b.body[13], b.body[14], b.body[15]];
    let caplen = if b.be {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    } as usize;
    &b.body[20..20 + caplen]
}

/// pcapng §4.3, §4.6, §4.7: a packet keeps its options (`opt_comment`, `epb_hash`,
/// `epb_packetid`, `epb_queue`, `epb_verdict`, custom options that may be copied), except
/// `epb_hash` once its bytes are rewritten (it no longer matches them; a member's capture,
/// which gets the member's own packets as they were sent, keeps it) and custom options that
/// must not be copied (codes 19372, 19373). An obsolete Packet Block keeps its comment and
/// its drop count (as `epb_dropcount`). Decryption secrets and custom blocks that may be
/// copied are written where they stood among the packets; custom blocks that must not be
/// copied, name resolution and interface statistics are not. (No real capture holds these
/// blocks and options: the input is `lsnat-router.pcap` with them added.)
#[test]
fn packet_options_custom_blocks_and_decryption_secrets_are_kept() {
    let scratch = common::scratch();
    let mut ng = Ng::default();
    ng.shb(false, &[]).idb(1, 262_144, &[(9, &[9])]);
    let pen = 32473u32.to_le_bytes().to_vec();
    let mut expected = Vec::new();
    for (k, (ns, frame)) in router_packets().into_iter().enumerate() {
        let k = k as u64 + 1;
        if k == 11 {
            // An obsolete Packet Block: interface 0, drop count 3, a comment.
            let mut body = 0u16.to_le_bytes().to_vec();
            body.extend_from_slice(&3u16.to_le_bytes());
            for v in [
                (ns >> 32) as u32,
                ns as u32,
                frame.len() as u32,
                frame.len() as u32,
            ] {
                body.extend_from_slice(&v.to_le_bytes());
            }
            body.extend_from_slice(&frame);
            body.resize(body.len().next_multiple_of(4), 0);
            body.extend(ng.options(&[(1, b"obsolete")]));
            ng.block(2, &body);
            continue;
        }
        let mut hash = vec![2];
        hash.extend_from_slice(&crc32(&frame).to_le_bytes());
        let opts = vec![
            (1, format!("packet {k}").into_bytes()),
            (2, 1u32.to_le_bytes().to_vec()),
            (3, hash),
            (5, ng.w64(k).to_vec()),
            (6, ng.w32(7).to_vec()),
            (7, vec![0, 1, 2, 3]),
            (2988, [pen.clone(), b"copy me".to_vec()].concat()),
            (19372, [pen.clone(), b"not me".to_vec()].concat()),
        ];
        let borrowed: Vec<(u16, &[u8])> = opts.iter().map(|(c, v)| (*c, v.as_slice())).collect();
        ng.epb(0, ns, frame.len() as u32, &frame, &borrowed);
        expected.push((k, frame, opts));
        if k == 5 {
            let mut nrb = vec![1, 0, 12, 0, 203, 0, 113, 1];
            nrb.extend_from_slice(b"member1\0\0\0\0\0");
            ng.block(4, &nrb)
                .block(0xbad, &[pen.clone(), b"copyable".to_vec()].concat())
                .block(
                    0x4000_0bad,
                    &[pen.clone(), b"not copyable".to_vec()].concat(),
                )
                .block(
                    0xa,
                    &[0x4b, 0x53, 0x4c, 0x54, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8],
                )
                .block(5, &[0; 16]);
        }
    }
    let input = save(scratch.path(), "options.pcapng", &ng);
    let out = scratch.path().join("out.pcapng");
    replay_ok(
        &input,
        &out,
        &["--members-dir", scratch.path().join("m").to_str().unwrap()],
    );

    let got = blocks(&out);
    let types: Vec<u32> = got.iter().map(|b| b.type_).collect();
    // The copied blocks stand after the fifth packet, as in the input.
    let packets_before = |t: u32| {
        let at = types.iter().position(|&x| x == t).expect("block written");
        types[..at].iter().filter(|&&x| x == 6).count()
    };
    assert_eq!((packets_before(0xbad), packets_before(0xa)), (5, 5));
    for gone in [4, 5, 2, 0x4000_0bad] {
        assert!(!types.contains(&gone), "block type {gone:#x} written");
    }
    let copied: Vec<&Block> = got
        .iter()
        .filter(|b| [0xbad, 0xa].contains(&b.type_))
        .collect();
    assert_eq!(copied[0].body, [pen.clone(), b"copyable".to_vec()].concat());
    assert_eq!(copied[1].body[..4], [0x4b, 0x53, 0x4c, 0x54]);

    let (mut rewritten, mut passed) = (0, 0);
    let mut obsolete = 0;
    for b in got.iter().filter(|b| b.type_ == 6) {
        let opts = packet_options(b);
        let Some((_, id)) = opts.iter().find(|(c, _)| *c == 5) else {
            assert_eq!(
                opts,
                [(1, b"obsolete".to_vec()), (4, 3u64.to_le_bytes().to_vec())]
            );
            obsolete += 1;
            continue;
        };
        let k = u64::from_le_bytes(id[..8].try_into().unwrap());
        let (_, frame, sent) = expected
            .iter()
            .find(|e| e.0 == k)
            .expect("a packet of the input");
        let same = packet_data(b) == frame.as_slice();
        let want: Vec<(u16, Vec<u8>)> = sent
            .iter()
            .filter(|(c, _)| *c != 19372 && (same || *c != 3))
            .cloned()
            .collect();
        let mut opts = opts;
        opts.sort();
        let mut want = want;
        want.sort();
        assert_eq!(opts, want, "packet {k}");
        if same { passed += 1 } else { rewritten += 1 }
    }
    assert_eq!(obsolete, 1);
    assert!(
        rewritten > 50 && passed > 2,
        "{rewritten} rewritten, {passed} passed"
    );

    // A member's capture: its own replies as it sent them keep their hash.
    let member = blocks(&scratch.path().join("m/member-203.0.113.1.pcapng"));
    let hashed = member
        .iter()
        .filter(|b| b.type_ == 6)
        .filter(|b| {
            let opts = packet_options(b);
            let hash = opts.iter().find(|(c, _)| *c == 3);
            if let Some((_, h)) = hash {
                assert_eq!(
                    h[1..],
                    crc32(packet_data(b)).to_le_bytes(),
                    "a hash that matches"
                );
            }
            hash.is_some()
        })
        .count();
    assert!(hashed > 5, "{hashed}");
    assert!(
        member.iter().any(|b| b.type_ == 0xa),
        "decryption secrets in member captures"
    );
}

/// pcapng §4.4: a Simple Packet Block has no timestamp. It is written back as one (no time
/// invented for it); the engine gives it the time of the last packet before it that has one,
/// or, before any, of the first after it, so capture time never starts in 1970 and jumps
/// (which ended sessions as idle). Here the first 20 packets of `lsnat-router.pcap` and all
/// after the 21st are Simple Packet Blocks (no real capture has them): the sessions end as
/// they do in the pcap.
#[test]
fn simple_packet_blocks_stay_simple_and_take_their_neighbours_time() {
    let scratch = common::scratch();
    let mut ng = Ng::default();
    ng.shb(false, &[]).idb(1, 262_144, &[(9, &[9])]);
    for (k, (ns, frame)) in router_packets().into_iter().enumerate() {
        if k == 20 {
            ng.epb(0, ns, frame.len() as u32, &frame, &[]);
        } else {
            let mut body = ng.w32(frame.len() as u32).to_vec();
            body.extend_from_slice(&frame);
            ng.block(3, &body);
        }
    }
    let input = save(scratch.path(), "spb.pcapng", &ng);
    let out = scratch.path().join("out.pcapng");
    let json = scratch.path().join("out.json");
    replay_ok(&input, &out, &["--json", json.to_str().unwrap()]);
    let types = |p: &Path| -> Vec<u32> { blocks(p).iter().map(|b| b.type_).collect() };
    assert_eq!(types(&out), types(&input), "every block as it came");
    for (a, b) in blocks(&input).iter().zip(&blocks(&out)) {
        assert_eq!(a.body.len(), b.body.len());
        assert_eq!(a.body[..4], b.body[..4], "original length");
    }
    let ends = |report: &serde_json::Value| report["session_ends"].clone();
    let pcap = common::replay_json(
        scratch.path(),
        &common::root().join("captures/lsnat-router.pcap"),
        &[],
    );
    let report = common::read_json(&json);
    assert_eq!(ends(&report), ends(&pcap));
    assert!(ends(&report).get("idle-timeout").is_none(), "{report}");
}

/// `captures/lsnat-edges.pcap` as pcapng, a new section (and interface) starting at packet
/// 49, as `cat a.pcapng b.pcapng` makes: packet 48 is a fragment held for its first, which
/// comes in the second section. The packets of the first section are written with the link
/// type `first_link` (their Ethernet header taken off for raw IPv4, 101).
fn edges_in_two_sections(first_link: u16) -> Ng {
    let packets = common::read_all(&common::root().join("captures/lsnat-edges.pcap"));
    let mut ng = Ng::new();
    for (m, frame) in &packets {
        if m.index == 1 || m.index == 49 {
            ng.shb(false, &[]);
            ng.idb(if m.index == 1 { first_link } else { 1 }, 0, &[]);
        }
        let frame = match (m.index < 49, first_link) {
            (true, 101) => &frame[14..],
            _ => &frame[..],
        };
        let us = m.ts.nanos() / 1000;
        ng.epb(0, us, frame.len() as u32, frame, &[]);
    }
    ng
}

/// Replays `input` with `captures/lsnat-edges.toml` into `out` and the member captures into
/// `members`; returns stderr.
fn replay_edges(input: &Path, out: &Path, members: &Path) -> String {
    let o = common::lsnat()
        .args(["replay", "-q", "-c", "captures/lsnat-edges.toml"])
        .arg(input)
        .arg("-o")
        .arg(out)
        .arg("--members-dir")
        .arg(members)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{}: {err}", input.display());
    err
}

/// Packet blocks (enhanced and simple) of a pcapng file.
fn packet_count(path: &Path) -> usize {
    blocks(path)
        .iter()
        .filter(|b| b.type_ == 6 || b.type_ == 3)
        .count()
}

/// A fragment held in one pcapng section and released by its first fragment in a later one is
/// written on the interface of its first fragment, which has the same link type: the output
/// holds as many packets as when the capture is one section, in the rewritten capture and in
/// the member captures. Where the link types differ, it is left out with a warning.
#[test]
fn held_fragment_from_an_earlier_section_is_written_on_its_first_fragments_interface() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let one = dir.join("one.pcapng");
    let mut ng = edges_in_two_sections(1);
    // The same packets as a single section: drop the second section header and interface.
    let single = {
        let packets = common::read_all(&common::root().join("captures/lsnat-edges.pcap"));
        let mut s = Ng::new();
        s.shb(false, &[]).idb(1, 0, &[]);
        for (m, frame) in &packets {
            s.epb(0, m.ts.nanos() / 1000, frame.len() as u32, frame, &[]);
        }
        s
    };
    std::fs::write(&one, &single.out).unwrap();
    let two = save(dir, "two.pcapng", &ng);
    replay_edges(&one, &dir.join("o1.pcapng"), &dir.join("m1"));
    let err = replay_edges(&two, &dir.join("o2.pcapng"), &dir.join("m2"));
    assert!(!err.contains("warning"), "{err}");
    assert_eq!(
        packet_count(&dir.join("o1.pcapng")),
        packet_count(&dir.join("o2.pcapng"))
    );
    let sections = blocks(&dir.join("o2.pcapng"))
        .iter()
        .filter(|b| b.type_ == 0x0a0d_0d0a)
        .count();
    assert_eq!(sections, 2);
    for m in std::fs::read_dir(dir.join("m1")).unwrap() {
        let name = m.unwrap().file_name();
        assert_eq!(
            packet_count(&dir.join("m1").join(&name)),
            packet_count(&dir.join("m2").join(&name)),
            "{name:?}"
        );
    }
    // The first section raw IPv4, the second Ethernet: the released fragment is left out.
    ng = edges_in_two_sections(101);
    let raw = save(dir, "raw.pcapng", &ng);
    let err = replay_edges(&raw, &dir.join("o3.pcapng"), &dir.join("m3"));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("left out of the output capture"), "{err}");
    assert!(packet_count(&dir.join("o3.pcapng")) < packet_count(&dir.join("o1.pcapng")));
}

/// `captures/lsnat-edges.pcap` as pcapng with a member's fragments 46 (a simple packet block)
/// and 47 (with a comment) captured before their first fragment, 45, and `filler` ARP frames
/// between them; the other packets carry a comment.
fn edges_reordered(filler: usize) -> Ng {
    let packets = common::read_all(&common::root().join("captures/lsnat-edges.pcap"));
    let arp = [
        &[0xff; 6][..],
        &[2, 0, 0, 0, 0, 1, 8, 6, 0, 1, 8, 0, 6, 4, 0, 1],
        &[2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2],
    ]
    .concat();
    let mut ng = Ng::new();
    ng.shb(false, &[]).idb(1, 0, &[]);
    let us = |m: &lsnat::capture::PacketMeta| m.ts.nanos() / 1000;
    let first = packets.iter().find(|(m, _)| m.index == 45).unwrap();
    for (m, frame) in &packets {
        let comment = format!("c{}", m.index);
        match m.index {
            45 => continue,
            46 => {
                ng.spb(frame);
            }
            _ => {
                ng.epb(
                    0,
                    us(m),
                    frame.len() as u32,
                    frame,
                    &[(1, comment.as_bytes())],
                );
            }
        }
        if m.index == 47 {
            for _ in 0..filler {
                ng.epb(0, us(m), arp.len() as u32, &arp, &[]);
            }
            let (m, frame) = first;
            ng.epb(0, us(m), frame.len() as u32, frame, &[(1, b"c45")]);
        }
    }
    ng
}

/// A member's fragments captured before their first are written to its capture as they were
/// sent (a simple packet block stays one, options kept), whether their first fragment comes
/// in the same batch or thousands of packets later: the member captures are the same.
#[test]
fn members_early_fragments_keep_their_block_and_options_across_batches() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let near = save(dir, "near.pcapng", &edges_reordered(0));
    let far = save(dir, "far.pcapng", &edges_reordered(5000));
    replay_edges(&near, &dir.join("o1.pcapng"), &dir.join("m1"));
    replay_edges(&far, &dir.join("o2.pcapng"), &dir.join("m2"));
    let mut compared = 0;
    for m in std::fs::read_dir(dir.join("m1")).unwrap() {
        let name = m.unwrap().file_name();
        let (a, b) = (
            blocks(&dir.join("m1").join(&name)),
            blocks(&dir.join("m2").join(&name)),
        );
        assert!(a == b, "{name:?}");
        compared += a.iter().filter(|b| b.type_ == 3).count();
    }
    assert_eq!(
        compared, 1,
        "the simple packet block, in its member's capture"
    );
}

/// pcapng §4.1: a section of a major version other than 1 is refused in one line naming the
/// file, the section header's byte offset and the version, also in a later section.
#[test]
fn section_of_major_version_2_is_refused() {
    let scratch = common::scratch();
    let packets = router_packets();
    for later in [false, true] {
        let mut ng = Ng::new();
        if later {
            ng.shb(false, &[]).idb(1, 0, &[]);
            let (ts, f) = &packets[0];
            ng.epb(0, ts / 1000, f.len() as u32, f, &[]);
        }
        let at = ng.out.len();
        ng.shb(false, &[]).idb(1, 0, &[]);
        ng.out[at + 12] = 2; // major version, little-endian
        for (ts, f) in &packets[1..] {
            ng.epb(0, ts / 1000, f.len() as u32, f, &[]);
        }
        let input = save(scratch.path(), "v2.pcapng", &ng);
        let out = scratch.path().join("o.pcapng");
        let err = one_error_line(&replay(&input, &out, &[]));
        assert!(err.contains("v2.pcapng"), "{err}");
        assert!(err.contains(&format!("byte offset {at}")), "{err}");
        assert!(err.contains("major version 2"), "{err}");
    }
}

/// The FTP gateway's resized datagrams in pcapng (`captures/lsnat-ftp.pcap` as pcapng, each
/// packet with a comment naming it, an `epb_packetid` and an `epb_hash` of its bytes; no real
/// capture of ours is pcapng): a `227` rewritten one byte longer is written in its packet's
/// place with its comment and id but not its hash (which its new bytes no longer match), and
/// its original length one byte longer too. Every other packet keeps its options, its hash
/// too when its bytes are as captured. In the member's capture the `227` is what the member
/// sent: its hash kept, and matching.
#[test]
fn a_resized_ftp_reply_keeps_its_options_but_its_hash() {
    let scratch = common::scratch();
    let mut ng = Ng::default();
    ng.shb(false, &[]).idb(1, 262_144, &[(9, &[9])]);
    let packets: Vec<(u64, Vec<u8>)> =
        common::read_all(&common::root().join("captures/lsnat-ftp.pcap"))
            .into_iter()
            .map(|(m, b)| (m.ts.nanos(), b))
            .collect();
    for (k, (ns, frame)) in packets.iter().enumerate() {
        let mut hash = vec![2];
        hash.extend_from_slice(&crc32(frame).to_le_bytes());
        let comment = format!("packet {}", k + 1).into_bytes();
        let id = ng.w64(k as u64 + 1);
        let opts: [(u16, &[u8]); 3] = [(1, &comment), (3, &hash), (5, &id)];
        ng.epb(0, *ns, frame.len() as u32, frame, &opts);
    }
    let input = save(scratch.path(), "ftp.pcapng", &ng);
    let out = scratch.path().join("out.pcapng");
    let members = scratch.path().join("m");
    let o = common::lsnat()
        .args(["replay", "-q", "-c", "captures/lsnat-ftp.toml"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .arg("--members-dir")
        .arg(&members)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let orig_len = |b: &Block| u32::from_le_bytes(b.body[16..20].try_into().unwrap()) as usize;
    let (mut resized, mut hashed) = (0, 0);
    for b in blocks(&out).iter().filter(|b| b.type_ == 6) {
        let opts = packet_options(b);
        let id = opts
            .iter()
            .find(|(c, _)| *c == 5)
            .expect("epb_packetid kept");
        let k = u64::from_le_bytes(id.1[..8].try_into().unwrap()) as usize;
        let comment = opts.iter().find(|(c, _)| *c == 1).expect("comment kept");
        assert_eq!(comment.1, format!("packet {k}").into_bytes());
        let data = packet_data(b);
        let captured = &packets[k - 1].1;
        assert_eq!(orig_len(b), data.len(), "packet {k}: not cut, so whole");
        let hash = opts.iter().find(|(c, _)| *c == 3);
        if data.len() != captured.len() {
            assert_eq!(data.len(), captured.len() + 1, "packet {k}");
            assert!(data.windows(4).any(|w| w == b"227 "), "packet {k}");
            assert!(hash.is_none(), "packet {k}: a stale hash");
            resized += 1;
        } else if data == captured.as_slice() {
            assert_eq!(hash.expect("hash kept").1[1..], crc32(data).to_le_bytes());
        } else {
            assert!(hash.is_none(), "packet {k}: a stale hash");
        }
    }
    assert_eq!(resized, 3);
    // The member's capture: the 227 replies as the member sent them, hashes matching.
    for entry in std::fs::read_dir(&members).unwrap() {
        for b in blocks(&entry.unwrap().path())
            .iter()
            .filter(|b| b.type_ == 6)
        {
            let data = packet_data(b);
            let opts = packet_options(b);
            if data.windows(4).any(|w| w == b"227 ") {
                let hash = opts
                    .iter()
                    .find(|(c, _)| *c == 3)
                    .expect("the member's own 227 keeps its hash");
                assert_eq!(hash.1[1..], crc32(data).to_le_bytes());
                hashed += 1;
            }
        }
    }
    assert_eq!(hashed, 3);
}
