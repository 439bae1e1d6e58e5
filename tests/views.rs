//! How each view reads which way a captured packet went (SLL2 packet types, pcapng
//! `epb_flags`), and what the member captures are called, on bundled captures or variants
//! derived from them.

mod common;

use std::path::Path;

/// `captures/lsnat-any-sll2.pcap` was taken with `tcpdump -i any` on the router: SLL2 frames
/// of both its interfaces, each forwarded packet arriving (type 0) and leaving (type 4).
const ANY: &str = "captures/lsnat-any-sll2.pcap";
const VIP: [u8; 4] = [198, 18, 0, 100];

fn json(dir: &Path, input: &Path, config: &str, extra: &[&str]) -> serde_json::Value {
    let report = dir.join("r.json");
    let o = common::lsnat()
        .args(["replay", "-q", "-c", config, "--json"])
        .arg(&report)
        .arg(input)
        .args(extra)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    common::read_json(&report)
}

/// The IPv4 header of an SLL2 frame (20-byte link header), if it carries one.
fn sll2_ipv4(frame: &[u8]) -> Option<&[u8]> {
    (frame.len() >= 40 && frame[..2] == [8, 0]).then(|| &frame[20..])
}

/// A client-side capture holds one side of the router: what the host in front of the members
/// sent are the VIP's replies. Taken with `-i any` on the router and kept to its client-side
/// interface (the one the VIP's packets cross), the replies are SLL2 type 4; in the
/// client-side view they are replayed as replies and attributed to the members, where the
/// router view would leave them out as forwarded copies.
#[test]
fn client_side_view_replays_the_replies_the_capturing_host_sent() {
    let scratch = common::scratch();
    let mut cap = common::Pcap::read(&common::root().join(ANY));
    let vip_iface = cap
        .records
        .iter()
        .find_map(|(_, f)| {
            let ip = sll2_ipv4(f)?;
            (ip[12..16] == VIP || ip[16..20] == VIP).then(|| f[4..8].to_vec())
        })
        .expect("the VIP's packets");
    cap.records
        .retain(|(_, f)| f.len() >= 8 && f[4..8] == vip_iface[..]);
    let from_vip = cap
        .records
        .iter()
        .filter(|(_, f)| sll2_ipv4(f).is_some_and(|ip| ip[12..16] == VIP))
        .count();
    let to_vip = cap
        .records
        .iter()
        .filter(|(_, f)| sll2_ipv4(f).is_some_and(|ip| ip[16..20] == VIP))
        .count();
    assert!(
        cap.records
            .iter()
            .filter(|(_, f)| sll2_ipv4(f).is_some_and(|ip| ip[12..16] == VIP))
            .all(|(_, f)| f[10] == 4),
        "the VIP's replies were sent by the capturing host"
    );
    let input = scratch.path().join("client-side-iface.pcap");
    cap.write(&input);
    let r = json(
        scratch.path(),
        &input,
        "captures/lsnat-client-side.toml",
        &[],
    );
    let p = &r["packets"];
    assert_eq!(p["outgoing_copies_not_replayed"], 0, "{p}");
    assert_eq!(p["translated_inbound"], to_vip, "{p}");
    assert_eq!(p["translated_outbound"], from_vip, "{p}");
    assert!((50..100).contains(&from_vip), "{from_vip} replies");
    // The router view of the same file leaves every one of them out.
    let r = json(scratch.path(), &input, "captures/lsnat-any-sll2.toml", &[]);
    assert_eq!(r["packets"]["outgoing_copies_not_replayed"], from_vip);
}

/// A frame shorter than its link header passes, whichever way it went (it cannot be told to
/// be IPv4, so it is no forwarded copy): `lsnat-router.pcap` as pcapng with `epb_flags`, its
/// ARP frames cut to 10 bytes, half of them marked outbound.
#[test]
fn a_frame_too_short_for_its_link_header_passes_whichever_way_it_went() {
    let scratch = common::scratch();
    let cap = common::Pcap::read(&common::root().join("captures/lsnat-router.pcap"));
    let (mut cut, mut cut_out) = (0, 0);
    let ng = cap.to_pcapng(|f| {
        if f[12..14] == [8, 6] {
            // ARP: cut inside the Ethernet header; inbound (1) and outbound (2) by turns.
            let flags = 1 + (cut % 2);
            cut_out += cut % 2;
            cut += 1;
            (f[..10].to_vec(), Some(flags))
        } else {
            (f.to_vec(), Some(1))
        }
    });
    assert!(cut >= 2 && cut_out >= 1, "{cut} ARP frames");
    let input = scratch.path().join("router-arp-cut.pcapng");
    std::fs::write(&input, &ng.out).unwrap();
    let r = json(scratch.path(), &input, "captures/lsnat-router.toml", &[]);
    let p = &r["packets"];
    assert_eq!(p["link_truncated"], cut, "{p}");
    assert_eq!(p["outgoing_copies_not_replayed"], 0, "{p}");
    assert_eq!(
        p["written"],
        p["read"].as_u64().unwrap() - p["dropped"]["total"].as_u64().unwrap_or(0),
        "{p}"
    );
}

/// Member captures are named for the format they are written in, the input's, whatever the
/// input's file is called: a pcapng named `.cap` gives `member-ADDR.pcapng`.
#[test]
fn member_captures_are_named_for_their_format() {
    let scratch = common::scratch();
    let cap = common::Pcap::read(&common::root().join("captures/rfc2391-fig1.pcap"));
    let ng = cap.to_pcapng(|f| (f.to_vec(), None));
    let input = scratch.path().join("fig1.cap");
    std::fs::write(&input, &ng.out).unwrap();
    let dir = scratch.path().join("members");
    json(
        scratch.path(),
        &input,
        "captures/rfc2391-fig1.toml",
        &["--members-dir", dir.to_str().unwrap()],
    );
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "member-172.85.0.1.pcapng",
            "member-172.85.0.2.pcapng",
            "member-172.85.0.3.pcapng"
        ]
    );
    for n in &names {
        let head = std::fs::read(dir.join(n)).unwrap();
        assert_eq!(head[..4], [0x0a, 0x0d, 0x0d, 0x0a], "{n} is a pcapng");
    }
}

/// Recomputes an Ethernet frame's IPv4 header and UDP checksums from scratch.
fn fix_ipv4_udp_checksums(f: &mut [u8]) {
    let fold = |mut s: u32| {
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s
    };
    let sum = |b: &[u8]| -> u32 {
        b.chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum()
    };
    let ip = &mut f[14..];
    let ihl = usize::from(ip[0] & 15) * 4;
    ip[10..12].fill(0);
    let c = !(fold(sum(&ip[..ihl])) as u16);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let udp_len = total - ihl;
    ip[ihl + 6..ihl + 8].fill(0);
    let pseudo = sum(&ip[12..20]) + 17 + udp_len as u32;
    let c = !(fold(pseudo + sum(&ip[ihl..total])) as u16);
    let c = if c == 0 { 0xffff } else { c };
    ip[ihl + 6..ihl + 8].copy_from_slice(&c.to_be_bytes());
}

/// One client port to two VIPs whose sessions land on the same member and port: the member's
/// replies to both would leave it with one key, so the second session is refused
/// (`reply-key-in-use`) in the client-side view as in the router view, where that key is the
/// one the capture shows. `lsnat-client-side.pcap` with its first UDP session (198.51.100.7:34842
/// ↔ 198.18.0.100:9999) copied, 1 µs later, to a second VIP, 198.18.0.101; both virtual servers
/// have the one member 203.0.113.1. Before, both were bound, and the member capture held two
/// sessions with one 5-tuple.
#[test]
fn client_side_view_refuses_a_second_session_with_the_same_member_side_replies() {
    let scratch = common::scratch();
    let cap = common::Pcap::read(&common::root().join("captures/lsnat-client-side.pcap"));
    let client = [198, 51, 100, 7];
    let of_session = |f: &[u8]| {
        f.len() > 42
            && f[12..14] == [8, 0]
            && f[23] == 17
            && ((f[26..30] == client && f[30..34] == VIP && f[34..36] == 34842u16.to_be_bytes())
                || (f[26..30] == VIP && f[30..34] == client && f[36..38] == 34842u16.to_be_bytes()))
    };
    // The capture with the session's packets copied to the second VIP, `delay` µs later, in
    // time order.
    let with_copy = |delay: u64| {
        let ts = |h: &[u8; 16]| {
            let w = |i: usize| u64::from(u32::from_le_bytes(h[i..i + 4].try_into().unwrap()));
            w(0) * 1_000_000 + w(4)
        };
        let mut records = Vec::new();
        for (h, f) in &cap.records {
            records.push((*h, f.clone()));
            if of_session(f) {
                let mut c = f.clone();
                for at in [26, 30] {
                    if c[at..at + 4] == VIP {
                        c[at + 3] = 101;
                    }
                }
                fix_ipv4_udp_checksums(&mut c);
                let t = ts(h) + delay;
                let mut h = *h;
                h[..4].copy_from_slice(&((t / 1_000_000) as u32).to_le_bytes());
                h[4..8].copy_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
                records.push((h, c));
            }
        }
        records.sort_by_key(|(h, _)| ts(h));
        assert_eq!(
            records.len(),
            cap.records.len() + 6,
            "three exchanges copied"
        );
        common::Pcap {
            header: cap.header.clone(),
            records,
        }
    };
    let input = scratch.path().join("two-vips.pcap");
    with_copy(1).write(&input);
    let config = scratch.path().join("two-vips.toml");
    let vs = |name: &str, vip: &str| {
        format!(
            "[[virtual_server]]\nname = \"{name}\"\nvip = \"{vip}\"\nprotocol = \"udp\"\n\
             ports = [9999]\nmembers = [\"203.0.113.1\"]\n"
        )
    };
    for view in ["client-side", "router"] {
        std::fs::write(
            &config,
            format!(
                "view = \"{view}\"\n{}{}",
                vs("a", "198.18.0.100"),
                vs("b", "198.18.0.101")
            ),
        )
        .unwrap();
        let r = json(scratch.path(), &input, config.to_str().unwrap(), &[]);
        let refused = &r["packets"]["dropped"]["reply-key-in-use"];
        let sessions = r["sessions"].as_array().unwrap();
        let on_b = sessions
            .iter()
            .filter(|s| s["virtual_server"] == "b" && s["orig_h"] == "198.51.100.7")
            .count();
        // The copy's three requests are refused, and no session of it is bound.
        assert_eq!(*refused, 3, "{view}: {}", r["packets"]);
        assert_eq!(on_b, 0, "{view}");
    }
    // Once the first session has timed out, its key is free again: the copy 2 s later, with
    // UDP sessions idle out after 1 s, is bound.
    with_copy(2_000_000).write(&input);
    std::fs::write(
        &config,
        format!(
            "view = \"client-side\"\n[timeouts]\nudp = \"1s\"\n{}{}",
            vs("a", "198.18.0.100"),
            vs("b", "198.18.0.101")
        ),
    )
    .unwrap();
    let r = json(scratch.path(), &input, config.to_str().unwrap(), &[]);
    assert_eq!(
        r["packets"]["dropped"],
        serde_json::json!({}),
        "{}",
        r["packets"]
    );
    let on_b = r["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["virtual_server"] == "b" && s["orig_h"] == "198.51.100.7")
        .count();
    assert_eq!(on_b, 1);
}

/// `lsnat-router.pcap` (what arrived at the router, `tcpdump -Q in` on both its interfaces)
/// merged with `tests/kernel/lsnat-router.kernel-out.pcap` (what its kernel sent, `-Q out`, in
/// the same run): the capture `tcpdump` on both interfaces without `-Q` would have taken.
fn both_directions() -> (common::Pcap, Vec<bool>) {
    let root = common::root();
    common::Pcap::merge(
        &root.join("captures/lsnat-router.pcap"),
        &root.join("tests/kernel/lsnat-router.kernel-out.pcap"),
    )
}

/// A capture of both directions of the router's interfaces with nothing to tell which copy
/// arrived (classic pcap, or pcapng without `epb_flags`, as `dumpcap` on two interfaces
/// writes) holds every forwarded packet twice: the replay warns, naming the first pair, on
/// the terminal and in the JSON report. The same capture with direction flags, or either
/// side alone, gets no warning.
#[test]
fn a_capture_of_both_directions_with_no_direction_is_warned_about() {
    let scratch = common::scratch();
    let (both, tags) = both_directions();
    let outs = tags.iter().filter(|t| **t).count();
    assert!(
        outs > 100 && tags.len() - outs > 100,
        "{outs} of {}",
        tags.len()
    );
    let bytes = both.bytes();
    let mut at = 0;
    let unflagged = both.to_pcapng(|f| (f.to_vec(), None));
    let flagged = both.to_pcapng(|f| {
        at += 1;
        (f.to_vec(), Some(if tags[at - 1] { 2 } else { 1 }))
    });
    let config = "captures/lsnat-router.toml";
    let expected = "packet 3 (TTL 64) and packet 6 (TTL 63) look like one datagram as it arrived \
                    at a router and as the router sent it on (IP ID 0x02ca), and so do 133 more \
                    pairs in the first 268 IPv4 packets";
    // Packets 3 and 6: the first ping as it arrived and as the router sent it on.
    assert!(!tags[2] && tags[5], "{:?}", &tags[..6]);
    for (name, data) in [("both.pcapng", &unflagged.out), ("both.pcap", &bytes)] {
        let input = scratch.path().join(name);
        std::fs::write(&input, data).unwrap();
        let o = common::lsnat()
            .args(["replay", "-q", "-c", config])
            .arg(&input)
            .output()
            .expect("runs");
        assert!(o.status.success());
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.starts_with(&format!("lsnat: warning: {expected}")),
            "{name}: {stderr}"
        );
        let r = json(scratch.path(), &input, config, &[]);
        let w = r["warnings"].as_array().expect("warnings");
        assert!(
            w.len() == 1 && w[0].as_str().unwrap().starts_with(expected),
            "{name}: {w:?}"
        );
        // Each forwarded packet replayed twice: the leaving copies pass as unrelated.
        assert_eq!(r["packets"]["outgoing_copies_not_replayed"], 0);
    }
    let input = scratch.path().join("flagged.pcapng");
    std::fs::write(&input, &flagged.out).unwrap();
    let r = json(scratch.path(), &input, config, &[]);
    assert_eq!(r["warnings"], serde_json::json!([]), "{}", r["warnings"]);
    // The leaving copies left out, but for the router's own ARP frames (not IPv4: passed).
    let ipv4_outs = (both.records.iter().zip(&tags))
        .filter(|((_, f), out)| **out && f[12..14] == [8, 0])
        .count();
    assert!(ipv4_outs + 10 > outs, "{ipv4_outs} of {outs}");
    assert_eq!(r["packets"]["outgoing_copies_not_replayed"], ipv4_outs);
    for side in [
        "captures/lsnat-router.pcap",
        "tests/kernel/lsnat-router.kernel-out.pcap",
    ] {
        let r = json(scratch.path(), &common::root().join(side), config, &[]);
        assert_eq!(r["warnings"], serde_json::json!([]), "{side}");
    }
}
