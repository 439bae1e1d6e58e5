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

/// Where the member captures of a replay go: `DIR/member-ADDR.pcap`.
fn member(dir: &Path, addr: &str) -> std::path::PathBuf {
    dir.join(format!("member-{addr}.pcap"))
}

/// IP id and fragment offset (bytes) of an Ethernet frame carrying IPv4.
fn fragment_of(frame: &[u8]) -> Option<(u16, u16)> {
    (frame.len() >= 34 && frame[12..14] == [8, 0]).then(|| {
        let id = u16::from_be_bytes([frame[18], frame[19]]);
        let off = u16::from_be_bytes([frame[20], frame[21]]) & 0x1fff;
        (id, off * 8)
    })
}

/// (timestamp ns, fragment offset) of the fragments of datagram `id` in a capture, in order.
fn fragments(path: &Path, id: u16) -> Vec<(u64, u16)> {
    common::read_all(path)
        .iter()
        .filter_map(|(m, f)| match fragment_of(f) {
            Some((i, off)) if i == id => Some((m.ts.nanos(), off)),
            _ => None,
        })
        .collect()
}

/// A record: timestamp in ns, original length, captured bytes.
type Record = (u64, u32, Vec<u8>);

/// `packets` with the three fragments at `k..k + 3` (first, then two later ones) made to
/// arrive last fragment first: the records' contents moved, their times kept, and `fillers`
/// ARP frames (from `lsnat-router.pcap`) put between the later fragments and the first, so
/// that with enough of them they are read in an earlier batch. Also the fragments' (time,
/// offset) in the order they now arrive.
fn last_fragment_first(
    packets: &[Record],
    k: usize,
    fillers: usize,
) -> (Vec<Record>, [(u64, u16); 3]) {
    let arp = bundled("lsnat-router.pcap")
        .into_iter()
        .find(|p| p.2[12..14] == [8, 6])
        .expect("an ARP frame")
        .2;
    let mut v = packets.to_vec();
    let (first, later1, later2) = (v[k].2.clone(), v[k + 1].2.clone(), v[k + 2].2.clone());
    (v[k].2, v[k].1) = (later1.clone(), later1.len() as u32);
    (v[k + 1].2, v[k + 1].1) = (later2.clone(), later2.len() as u32);
    (v[k + 2].2, v[k + 2].1) = (first.clone(), first.len() as u32);
    let sent = [(v[k].0, 1480), (v[k + 1].0, 2960), (v[k + 2].0, 0)];
    let filler = (v[k + 1].0, arp.len() as u32, arp);
    v.splice(k + 2..k + 2, std::iter::repeat_n(filler, fillers));
    (v, sent)
}

/// A member's capture holds what the member sent and received, at the member's own times: the
/// fragments it sent before their first fragment (held by the router, RFC 791 reassembly
/// aside, and released with the first one) are there at their own times and in the order it
/// sent them, not at the release time, which is the router's (in the rewritten capture they
/// follow their first fragment, stamped with its arrival). `lsnat-edges.pcap` with member
/// 203.0.113.1's reply of IP id 40935 made to arrive last fragment first (records' contents
/// moved, their times kept); then also with 5000 ARP frames (from `lsnat-router.pcap`) between
/// its later fragments and its first, so that they are read in an earlier batch than it.
#[test]
fn member_capture_keeps_its_own_early_fragments_at_their_times() {
    let scratch = common::scratch();
    let packets = bundled("lsnat-edges.pcap");
    let at: Vec<usize> = (0..packets.len())
        .filter(|&k| fragment_of(&packets[k].2).is_some_and(|(id, _)| id == 40935))
        .collect();
    assert_eq!(at.len(), 3, "the member's three fragments");
    assert_eq!(
        (at[1], at[2]),
        (at[0] + 1, at[0] + 2),
        "one after the other"
    );
    for fillers in [0, 5000] {
        let (v, sent) = last_fragment_first(&packets, at[0], fillers);
        let input = scratch
            .path()
            .join(format!("edges-reordered-{fillers}.pcap"));
        write_pcap(&input, 262_144, 1, &v);
        let (out, dir) = (
            scratch.path().join(format!("out-{fillers}.pcap")),
            scratch.path().join(format!("members-{fillers}")),
        );
        replay(
            &input,
            "captures/lsnat-edges.toml",
            &["-o", path_str(&out), "--members-dir", path_str(&dir)],
        );
        assert_eq!(
            fragments(&member(&dir, "203.0.113.1"), 40935),
            sent,
            "{fillers} fillers: the member's capture, as it sent them"
        );
        let release = sent[2].0;
        assert_eq!(
            fragments(&out, 40935),
            [(release, 0), (release, 1480), (release, 2960)],
            "{fillers} fillers: the router forwards them after their first"
        );
    }
}

/// The same in the client-side view, where a member's replies come from the VIP and what the
/// member sent is the reply translated back to it: a client-side capture of lsnat-edges (the
/// clients' packets to the VIP as they arrived at the router, `lsnat-edges.pcap`, and the
/// router's replies to them, from the kernel's output recorded beside it), with the reply of IP
/// id 40935 made to arrive last fragment first as above, with and without 5000 ARP frames
/// between. The member's capture has the fragments at their own times, in the order they came,
/// translated back to it; before, they were all at the first fragment's time, first one first.
#[test]
fn client_side_member_capture_keeps_early_fragments_at_their_times() {
    let scratch = common::scratch();
    const VIP: [u8; 4] = [198, 18, 0, 100];
    let ipv4 = |f: &[u8]| f.len() >= 34 && f[12..14] == [8, 0];
    let mut packets: Vec<(u64, u32, Vec<u8>)> = bundled("lsnat-edges.pcap")
        .into_iter()
        .filter(|p| ipv4(&p.2) && p.2[30..34] == VIP)
        .collect();
    let kernel = common::root().join("tests/kernel/lsnat-edges.kernel-out.pcap");
    packets.extend(
        common::read_all(&kernel)
            .into_iter()
            .filter(|(_, f)| ipv4(f) && f[26..30] == VIP)
            .map(|(m, b)| (m.ts.nanos(), m.orig_len, b)),
    );
    packets.sort_by_key(|p| p.0);
    let at: Vec<usize> = (0..packets.len())
        .filter(|&k| fragment_of(&packets[k].2).is_some_and(|(id, _)| id == 40935))
        .collect();
    assert_eq!(at.len(), 3, "the reply's three fragments");
    assert_eq!((at[1], at[2]), (at[0] + 1, at[0] + 2));
    let config = scratch.path().join("edges-client-side.toml");
    let edges = std::fs::read_to_string(common::root().join("captures/lsnat-edges.toml")).unwrap();
    std::fs::write(
        &config,
        edges.replace("view = \"router\"", "view = \"client-side\""),
    )
    .unwrap();
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("client-side")
    );
    for fillers in [0, 5000] {
        let (v, sent) = last_fragment_first(&packets, at[0], fillers);
        let input = scratch.path().join(format!("edges-cs-{fillers}.pcap"));
        write_pcap(&input, 262_144, 1, &v);
        let (out, dir) = (
            scratch.path().join(format!("cs-out-{fillers}.pcap")),
            scratch.path().join(format!("cs-members-{fillers}")),
        );
        replay(
            &input,
            path_str(&config),
            &["-o", path_str(&out), "--members-dir", path_str(&dir)],
        );
        // The member the reply came from: the one whose capture has it.
        let with_reply: Vec<_> = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
            .into_iter()
            .filter(|m| !fragments(&member(&dir, m), 40935).is_empty())
            .collect();
        assert_eq!(with_reply.len(), 1, "{fillers} fillers: {with_reply:?}");
        let m = member(&dir, with_reply[0]);
        assert_eq!(
            fragments(&m, 40935),
            sent,
            "{fillers} fillers: the member's capture, as it sent them"
        );
        // Translated back to the member: from its own address.
        let addr: Vec<u8> = with_reply[0]
            .split('.')
            .map(|o| o.parse().unwrap())
            .collect();
        for (_, f) in common::read_all(&m) {
            if fragment_of(&f).is_some_and(|(id, _)| id == 40935) {
                assert_eq!(f[26..30], addr[..], "{fillers} fillers");
            }
        }
        let release = sent[2].0;
        assert_eq!(
            fragments(&out, 40935),
            [(release, 0), (release, 1480), (release, 2960)],
            "{fillers} fillers: the rewritten capture, after their first"
        );
    }
}

/// A member's capture holds what the member sent and received, its own NAPT sessions (RFC 2391
/// §3.2, sessions it started toward the outside) included, each packet as the member sees it:
/// what it sent untranslated, what it was sent translated back to it. On the bundled captures
/// of LSNAT with NAPT (every packet forwarded, so record k of the rewritten capture is packet
/// k translated), member H's capture is, in order, every packet translated from H (as
/// captured) or to H (as forwarded), load-shared or NAPT, as the capture's golden lists them.
#[test]
fn member_captures_hold_the_members_own_napt_sessions() {
    let scratch = common::scratch();
    for name in ["modes-lsnat-napt", "modes-napt-icmp"] {
        let capture = common::root().join(format!("captures/{name}.pcap"));
        let (out, dir) = (
            scratch.path().join(format!("{name}.pcap")),
            scratch.path().join(name),
        );
        replay(
            &capture,
            &format!("captures/{name}.toml"),
            &["-o", path_str(&out), "--members-dir", path_str(&dir)],
        );
        let input = common::read_all(&capture);
        let output = common::read_all(&out);
        assert_eq!(input.len(), output.len(), "{name}: every packet forwarded");
        let golden =
            std::fs::read_to_string(common::root().join(format!("golden/{name}.snap"))).unwrap();
        let mut expected: std::collections::BTreeMap<String, Vec<Vec<u8>>> = Default::default();
        let mut napt = 0;
        for line in golden.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (Some(k), Some(&"xlat")) = (
                words.first().and_then(|w| w.parse::<usize>().ok()),
                words.get(2),
            ) else {
                continue;
            };
            let arrow = words
                .iter()
                .position(|w| *w == "=>")
                .expect("a translation");
            let addr = |w: &str| w.split(':').next().unwrap().to_string();
            let (host, frame) = match words[3] {
                // From the member: its source as it sent it; to it: the destination forwarded.
                "out" => (addr(words[5]), &input[k - 1].1),
                "in" => (addr(words[arrow + 3]), &output[k - 1].1),
                other => panic!("{name}: {other}"),
            };
            napt += usize::from(line.ends_with(" napt"));
            expected.entry(host).or_default().push(frame.clone());
        }
        assert!(napt >= 8, "{name}: {napt} NAPT packets");
        for h in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
            let got: Vec<Vec<u8>> = common::read_all(&member(&dir, h))
                .into_iter()
                .map(|(_, f)| f)
                .collect();
            let want = expected.remove(h).unwrap_or_default();
            assert!(
                got == want,
                "{name}: member {h}: {} packets, {} expected",
                got.len(),
                want.len()
            );
        }
    }
}
