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

/// RFC 2391 §2.2 other protocols: GRE sessions keyed by (client, protocol, VIP), load-shared
/// by round robin exactly as the kernel's DNAT did.
#[test]
fn gre_load_shared_matches_the_kernel_byte_for_byte() {
    assert!(compare("modes-gre.pcap", "modes-gre.kernel-out.pcap") > 20);
}

/// RFC 2391 §3.2: LSNAT for client → VIP sessions and NAPT (Linux masquerade on the outside
/// interface) for the sessions members start toward an outside host, in one router.
#[test]
fn lsnat_with_napt_matches_the_kernel_byte_for_byte() {
    assert!(compare("modes-lsnat-napt.pcap", "modes-lsnat-napt.kernel-out.pcap") > 30);
}

/// RFC 2391 §3, §4.1: member 2 statically mapped to a backup; the kernel's round-robin map
/// sends member 2's slot to the backup.
#[test]
fn static_member_mapping_matches_the_kernel_byte_for_byte() {
    assert!(
        compare(
            "modes-static-member.pcap",
            "modes-static-member.kernel-out.pcap"
        ) > 30
    );
}

/// RFC 2391 §3: only member 2's telnet service mapped to the backup.
#[test]
fn static_port_mapping_matches_the_kernel_byte_for_byte() {
    assert!(
        compare(
            "modes-static-port.pcap",
            "modes-static-port.kernel-out.pcap"
        ) > 30
    );
}

/// RFC 2391 §3: with the VIP owned by the router, packets to its other ports are not forwarded
/// (the kernel's input hook drops them); lsnat drops and reports them.
#[test]
fn service_restriction_matches_the_kernel_byte_for_byte() {
    assert!(
        compare(
            "modes-service-restriction.pcap",
            "modes-service-restriction.kernel-out.pcap"
        ) > 20
    );
    let g = lsnat::check::render(
        &common::root().join("captures/modes-service-restriction.pcap"),
        None,
        None,
    )
    .unwrap();
    assert!(
        g.text
            .contains("DROP  router-vip-not-a-service -   tcp 198.51.100.7:")
    );
    assert!(
        g.text
            .contains("DROP  router-vip-not-a-service -   udp 198.51.100.23:")
    );
}

/// RFC 2391 §3.3 LS-NAPT against Linux masquerade on the inside interface.
///
/// Every session keeps the client's port toward its member when it is free, as the kernel
/// does, so its datagrams are byte-identical — except one. Two clients use the same source
/// port (41000) toward the same member: there the kernel picks a *random* free port, while
/// lsnat takes the next free port upward (41001, deterministic, as the README states). For
/// that session this test checks that lsnat's datagrams toward the member equal the kernel's
/// once the kernel's port is put in (port field and TCP checksum, RFC 1624); the member's
/// replies to the kernel's port have no session in lsnat (dropped as `tcp-no-session`): they
/// are exactly the kernel datagrams left over.
#[test]
fn ls_napt_matches_the_kernel_except_the_clash_port() {
    let root = common::root();
    let cap = root.join("captures/modes-ls-napt.pcap");
    // The kernel's port for the clashing session, from its conntrack log.
    let log = std::fs::read_to_string(root.join("captures/modes-ls-napt.conntrack.log")).unwrap();
    let line = log
        .lines()
        .find(|l| {
            l.contains("[NEW]") && l.contains("src=198.51.100.23 ") && l.contains("sport=41000 ")
        })
        .expect("the clashing session's conntrack entry");
    let kernel_port: u16 = line
        .rsplit("dport=")
        .next()
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(
        kernel_port, 41000,
        "the kernel must have moved the clashing port"
    );
    let out =
        std::env::temp_dir().join(format!("lsnat-kernel-{}-ls-napt.pcap", std::process::id()));
    let g = lsnat::check::render(&cap, None, Some(&out)).unwrap();
    let ours = ipv4_datagrams(&out);
    let theirs = ipv4_datagrams(&root.join("tests/kernel/modes-ls-napt.kernel-out.pcap"));
    let mut pool: HashMap<Vec<u8>, usize> = HashMap::new();
    for (_, d) in &theirs {
        *pool.entry(d.clone()).or_default() += 1;
    }
    let (mut exact, mut clash) = (0, 0);
    for (index, d) in &ours {
        let mut d = d.clone();
        if pool.get(&d).is_none_or(|&n| n == 0) {
            // Only the clashing session toward the member may differ: router:41001 → m1:80.
            let ihl = usize::from(d[0] & 0x0f) * 4;
            assert_eq!(d[9], 6, "packet {index}: only the TCP clash may differ");
            assert_eq!(&d[12..16], &[203, 0, 113, 254], "packet {index}");
            let sport = u16::from_be_bytes([d[ihl], d[ihl + 1]]);
            assert_eq!(sport, 41001, "packet {index}: lsnat's port for the clash");
            let csum = u16::from_be_bytes([d[ihl + 16], d[ihl + 17]]);
            let csum = lsnat::wire::checksum::update16(csum, sport, kernel_port);
            d[ihl..ihl + 2].copy_from_slice(&kernel_port.to_be_bytes());
            d[ihl + 16..ihl + 18].copy_from_slice(&csum.to_be_bytes());
            clash += 1;
        } else {
            exact += 1;
        }
        let n = pool
            .get_mut(&d)
            .filter(|n| **n > 0)
            .unwrap_or_else(|| panic!("packet {index}: not among the kernel's datagrams"));
        *n -= 1;
    }
    assert!(exact > 80, "{exact}");
    assert!(clash >= 5, "{clash}");
    // What the kernel sent and lsnat did not: the member's replies on the clashing session,
    // which lsnat drops because they come back to the kernel's port.
    let left: Vec<&Vec<u8>> = pool
        .iter()
        .filter(|(_, n)| **n > 0)
        .flat_map(|(d, n)| std::iter::repeat_n(d, *n))
        .collect();
    let dropped = g
        .text
        .matches(&format!(
            "DROP  tcp-no-session -   tcp 203.0.113.1:80 > 203.0.113.254:{kernel_port}"
        ))
        .count();
    assert_eq!(left.len(), dropped);
    assert!(dropped > 0);
    for d in left {
        let ihl = usize::from(d[0] & 0x0f) * 4;
        assert_eq!(&d[12..16], &[198, 18, 0, 100]);
        assert_eq!(&d[16..20], &[198, 51, 100, 23]);
        assert_eq!(u16::from_be_bytes([d[ihl + 2], d[ihl + 3]]), 41000);
    }
}
