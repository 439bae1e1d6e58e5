//! Captures taken with a short snapshot length (`tcpdump -s`): the router saw every packet
//! whole, the capture holds its first bytes. Each test cuts a real capture's records itself
//! (no recording here was taken short) and compares with the replay of the whole capture.

mod common;

use common::{Pcap, lsnat, read_all, read_json, root, scratch};
use serde_json::Value;
use std::path::Path;

/// Replays `cap` with `config`, writing the rewritten capture and the JSON report into `dir`
/// under `name`; returns the report and the rewritten packets.
fn replay(dir: &Path, name: &str, cap: &Pcap, config: &Path) -> (Value, Vec<Vec<u8>>) {
    let input = dir.join(format!("{name}.pcap"));
    cap.write(&input);
    let (out, json) = (
        dir.join(format!("{name}.out.pcap")),
        dir.join(format!("{name}.json")),
    );
    let run = lsnat()
        .arg("replay")
        .arg(&input)
        .arg("-c")
        .arg(config)
        .arg("-o")
        .arg(&out)
        .arg("--json")
        .arg(&json)
        .arg("-q")
        .output()
        .expect("runs");
    assert!(run.status.success(), "{run:?}");
    let packets = read_all(&out).into_iter().map(|(_, b)| b).collect();
    (read_json(&json), packets)
}

/// `lsnat-edges.pcap` cut at 68 bytes (tcpdump's old default): its port-unreachable errors
/// quote a UDP header whose checksum lies past the cut. The router changed that checksum too,
/// and the ICMP checksum covers it, so every rewritten packet must be the whole capture's
/// rewritten packet, cut: before, the two ICMP errors kept their ICMP checksum
/// (6372 instead of ede4, ee02 instead of 638e).
#[test]
fn a_cut_quote_gets_the_icmp_checksum_of_the_whole_one() {
    let dir = scratch();
    let config = root().join("captures/lsnat-edges.toml");
    let whole = Pcap::read(&root().join("captures/lsnat-edges.pcap"));
    let (_, full) = replay(dir.path(), "whole", &whole, &config);
    for snap in [68, 80] {
        let (r, cut) = replay(
            dir.path(),
            &format!("cut{snap}"),
            &whole.cut_to(snap),
            &config,
        );
        assert_eq!(cut.len(), full.len(), "snaplen {snap}");
        for (i, (c, f)) in cut.iter().zip(&full).enumerate() {
            // The ICMP time exceeded the router sends quotes what the capture holds of its
            // trigger: a cut trigger gives a shorter quote (README, Inputs).
            if f[14 + 9] == 1 && f[14 + 20] == 11 {
                continue;
            }
            assert_eq!(
                c[..],
                f[..f.len().min(snap as usize)],
                "snaplen {snap}: rewritten packet {i}"
            );
        }
        assert_eq!(
            r["packets"]["dropped"],
            whole_drops(&config),
            "snaplen {snap}"
        );
    }
}

/// The drops of the whole `lsnat-edges.pcap`.
fn whole_drops(config: &Path) -> Value {
    let dir = scratch();
    let whole = Pcap::read(&root().join("captures/lsnat-edges.pcap"));
    replay(dir.path(), "w", &whole, config).0["packets"]["dropped"].clone()
}

/// Cut at 64 bytes, the same errors quote only 2 bytes of UDP: no session can be told, so
/// they pass untranslated as `truncated-headers`, and nothing is dropped that the whole
/// capture forwards. Before, the error from the client was dropped as
/// `icmp-error-without-session` (the report claimed the router had no session for it) and the
/// member's passed as `unrelated`.
#[test]
fn a_quote_cut_before_its_ports_passes_as_truncated() {
    let dir = scratch();
    let config = root().join("captures/lsnat-edges.toml");
    let whole = Pcap::read(&root().join("captures/lsnat-edges.pcap"));
    let (full, _) = replay(dir.path(), "whole", &whole, &config);
    let (r, _) = replay(dir.path(), "cut64", &whole.cut_to(64), &config);
    assert_eq!(r["packets"]["dropped"], full["packets"]["dropped"]);
    assert_eq!(r["packets"]["written"], full["packets"]["written"]);
    let truncated = |r: &Value| r["packets"]["passed"]["truncated-headers"].as_u64();
    assert_eq!(truncated(&full), None);
    assert!(truncated(&r) >= Some(2), "{}", r["packets"]["passed"]);
    assert_eq!(r["packets"]["passed"].get("unrelated"), None);
}

/// The corpus capture `suricata__detect-ipopts_input.pcap` (raw IPv4, headers with options)
/// cut at 30 bytes: some IPv4 headers end past the cut. They are not malformed, only cut: they
/// pass as `truncated-headers` like the packets of the same flow whose header fits. Before,
/// they were dropped as `malformed-ipv4` with a 0.0.0.0 tuple.
#[test]
fn an_ipv4_header_cut_by_the_snapshot_passes_as_truncated() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let dir = scratch();
    let capture = corpus.join("suricata__detect-ipopts_input.pcap");
    let config = dir.path().join("ipopts.toml");
    // The flow's server as a VIP, so that its packets are the router's business.
    std::fs::write(
        &config,
        "[[virtual_server]]\nname = \"s\"\nvip = \"13.14.15.16\"\nprotocol = \"tcp\"\n\
         ports = [80]\nmembers = [\"192.0.2.1\"]\n",
    )
    .expect("config");
    let whole = Pcap::read(&capture);
    let (r, out) = replay(dir.path(), "cut30", &whole.cut_to(30), &config);
    assert_eq!(r["packets"]["dropped"], serde_json::json!({}));
    assert_eq!(out.len(), whole.records.len());
    assert_eq!(
        r["packets"]["passed"]["truncated-headers"].as_u64(),
        Some(whole.records.len() as u64),
        "{}",
        r["packets"]["passed"]
    );
}

/// A "tiny" first fragment (RFC 1858 §3) is whole as captured yet stops inside its transport
/// header: `suricata__frag-ip-tcp-syn.pcap` holds a TCP SYN to 2.2.2.2:8080 in three 8-byte
/// fragments, ports and sequence number in the first, flags and checksum in the second. The
/// router, which does not reassemble, can neither key it as a SYN nor keep its checksum right:
/// all three are dropped as `transport-header-incomplete` (before, they passed untranslated to
/// the VIP as `truncated-headers`, a name for snapshot cuts). The same SYN reassembled (its
/// fragments' bytes in one datagram) is translated; that datagram cut by a snapshot to the
/// first fragment's 28 bytes passes as `truncated-headers`, as the router saw it whole.
#[test]
fn a_tiny_first_fragment_is_dropped_unlike_a_snapshot_cut() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let dir = scratch();
    let config = dir.path().join("tiny.toml");
    std::fs::write(
        &config,
        "[[virtual_server]]\nname = \"s\"\nvip = \"2.2.2.2\"\nprotocol = \"tcp\"\n\
         ports = [8080]\nmembers = [\"192.0.2.1\"]\n",
    )
    .expect("config");
    let frags = Pcap::read(&corpus.join("suricata__frag-ip-tcp-syn.pcap"));
    assert_eq!(frags.records.len(), 3);
    let (r, out) = replay(dir.path(), "frags", &frags, &config);
    let p = &r["packets"];
    assert_eq!(p["dropped"]["transport-header-incomplete"], 3, "{p}");
    assert_eq!(p["passed"], serde_json::json!({}), "{p}");
    assert!(out.is_empty());

    // Reassembled: the first fragment's header, unfragmented, with every fragment's data.
    let mut ip = frags.records[0].1[..20].to_vec();
    let mut data = vec![0u8; 24];
    for (_, f) in &frags.records {
        let off = usize::from(u16::from_be_bytes([f[6], f[7]]) & 0x1fff) * 8;
        data[off..off + 8].copy_from_slice(&f[20..28]);
    }
    ip[2..4].copy_from_slice(&44u16.to_be_bytes());
    ip[6..8].copy_from_slice(&[0, 0]);
    ip[10..12].copy_from_slice(&[0, 0]);
    let sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    let sum = (sum & 0xffff) + (sum >> 16);
    ip[10..12].copy_from_slice(&(!((sum & 0xffff) + (sum >> 16)) as u16).to_be_bytes());
    ip.extend_from_slice(&data);
    let mut h = frags.records[0].0;
    h[8..12].copy_from_slice(&44u32.to_le_bytes());
    h[12..16].copy_from_slice(&44u32.to_le_bytes());
    let whole = Pcap {
        header: frags.header.clone(),
        records: vec![(h, ip)],
    };
    let (r, out) = replay(dir.path(), "whole", &whole, &config);
    assert_eq!(r["packets"]["translated_inbound"], 1, "{}", r["packets"]);
    assert_eq!(r["sessions"].as_array().map(Vec::len), Some(1));
    assert_eq!(out[0][16..20], [192, 0, 2, 1]);
    let (r, out) = replay(dir.path(), "cut", &whole.cut_to(28), &config);
    let p = &r["packets"];
    assert_eq!(p["passed"]["truncated-headers"], 1, "{p}");
    assert_eq!(p["dropped"], serde_json::json!({}), "{p}");
    assert_eq!(out.len(), 1);
}

/// The same rule for NAPT's packets (RFC 2391 §3.2): `modes-lsnat-napt.pcap`'s first reply
/// from the outside host to the router's outside address, its UDP header cut to 7 bytes on
/// the wire (IP total length 27, the frame padded to 60 bytes as Ethernet pads it), is dropped
/// as `transport-header-incomplete`; before, it passed as `unrelated`, and an inside host's
/// datagram so cut left with its inside address.
#[test]
fn a_napt_datagram_too_short_for_its_header_is_dropped() {
    let dir = scratch();
    let config = root().join("captures/modes-lsnat-napt.toml");
    let mut cap = Pcap::read(&root().join("captures/modes-lsnat-napt.pcap"));
    let outside = [198, 51, 100, 1];
    let k = cap
        .records
        .iter()
        .position(|(_, f)| {
            f.len() > 42 && f[12..14] == [8, 0] && f[23] == 17 && f[30..34] == outside
        })
        .expect("a reply to the outside address");
    let (h, f) = &mut cap.records[k];
    f.truncate(14 + 27);
    f.resize(60, 0);
    f[16..18].copy_from_slice(&27u16.to_be_bytes());
    f[24..26].fill(0);
    let sum: u32 = f[14..34]
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    let sum = (sum & 0xffff) + (sum >> 16);
    f[24..26].copy_from_slice(&(!((sum & 0xffff) + (sum >> 16)) as u16).to_be_bytes());
    h[8..12].copy_from_slice(&60u32.to_le_bytes());
    h[12..16].copy_from_slice(&60u32.to_le_bytes());
    let (r, _) = replay(dir.path(), "napt-cut", &cap, &config);
    let dropped = r["dropped_packets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["packet"] == k as u64 + 1)
        .cloned();
    assert_eq!(
        dropped.map(|d| d["reason"].clone()),
        Some("transport-header-incomplete".into()),
        "{}",
        r["packets"]
    );
}
