//! The translation checked against a real translator: the Linux kernel's nftables NAT.
//!
//! `scripts/record-lsnat.sh` and `scripts/record-fig1.sh` recorded, in network namespaces, what
//! arrived at a router running nftables DNAT round-robin (the captures in `captures/`) and what
//! the kernel sent out (`tests/kernel/*.kernel-out.pcap`). Replaying the arrivals through lsnat
//! must give, for every translated packet, an IPv4 datagram byte-identical to one the kernel
//! sent: addresses, ports, TTL, IP id, every checksum, the member chosen.

mod common;

use lsnat::link::{self, Payload};
use std::collections::HashMap;

fn ipv4_datagrams(path: &std::path::Path) -> Vec<(u64, Vec<u8>)> {
    common::read_all(path)
        .into_iter()
        .filter_map(|(m, b)| match link::locate(m.linktype, &b).payload {
            Payload::Ipv4 { offset } => Some((m.index, b[offset..].to_vec())),
            _ => None,
        })
        .collect()
}

fn compare(capture: &str, kernel: &str) -> usize {
    let root = common::root();
    let cap = root.join("captures").join(capture);
    let out = std::env::temp_dir().join(format!("lsnat-kernel-{}-{capture}", std::process::id()));
    let g = lsnat::check::render(&cap, None, Some(&out)).unwrap();
    let ours = ipv4_datagrams(&out);
    let theirs = ipv4_datagrams(&root.join("tests/kernel").join(kernel));
    let mut pool: HashMap<&[u8], usize> = HashMap::new();
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
                "{capture}: our packet {index} has no byte-identical datagram in the kernel's output\n  ours: {:02x?}",
                &d[..d.len().min(40)]
            ),
        }
    }
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{capture}: datagrams forwarded: lsnat vs kernel"
    );
    assert!(g.text.contains(" xlat "));
    matched
}

#[test]
fn lsnat_router_capture_matches_the_kernel_byte_for_byte() {
    assert!(compare("lsnat-router.pcap", "lsnat-router.kernel-out.pcap") > 100);
}

/// Sessions that pause 2-25 s mid-session (`scripts/record-idle.sh`): still one session each,
/// translated exactly as the kernel did after every pause.
#[test]
fn lsnat_idle_capture_matches_the_kernel_byte_for_byte() {
    assert!(compare("lsnat-idle.pcap", "lsnat-idle.kernel-out.pcap") > 80);
}

#[test]
fn rfc2391_figure_1_matches_the_kernel_byte_for_byte() {
    assert!(compare("rfc2391-fig1.pcap", "rfc2391-fig1.kernel-out.pcap") > 20);
}

/// A `tcpdump -i any` capture on the router holds each forwarded packet twice: as it arrived
/// and as the kernel sent it (SLL2 packet type 4). lsnat replays only the arrivals; its output
/// must equal the kernel's own outgoing copies in the same file.
#[test]
fn sll2_any_capture_translation_equals_the_kernels_outgoing_copies() {
    let cap = common::root().join("captures/lsnat-any-sll2.pcap");
    let out = std::env::temp_dir().join(format!("lsnat-kernel-{}-sll2.pcap", std::process::id()));
    lsnat::check::render(&cap, None, Some(&out)).unwrap();
    let mut kernel: HashMap<Vec<u8>, usize> = HashMap::new();
    for (m, b) in common::read_all(&cap) {
        let v = link::locate(m.linktype, &b);
        if let (Payload::Ipv4 { offset }, lsnat::capture::CaptureDirection::Outbound) =
            (v.payload, v.direction)
        {
            *kernel.entry(b[offset..].to_vec()).or_default() += 1;
        }
    }
    let ours = ipv4_datagrams(&out);
    assert!(ours.len() > 100);
    for (index, d) in &ours {
        let n = kernel
            .get_mut(d)
            .unwrap_or_else(|| panic!("packet {index}: not among the kernel's outgoing copies"));
        assert!(*n > 0, "packet {index}: matched twice");
        *n -= 1;
    }
    assert!(
        kernel.values().all(|&n| n == 0),
        "kernel sent datagrams lsnat did not"
    );
}
