//! The FTP gateway (RFC 2391 §4.2 → RFC 1631 §5, RFC 3022 §4.3) on `captures/lsnat-ftp.pcap`,
//! recorded through the kernel's FTP helper (`tests/kernel.rs` checks the translation byte for
//! byte), in the cases the audit of the gateway found wrong: each test fails on the first
//! version of the gateway.

mod common;

use std::path::Path;

fn ftp_capture() -> std::path::PathBuf {
    common::root().join("captures/lsnat-ftp.pcap")
}

/// The capture's own config with `extra` added before its first `[[virtual_server]]` table
/// (router-wide settings), written to `dir`.
fn config_with(dir: &Path, router: &str, tables: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(common::root().join("captures/lsnat-ftp.toml")).unwrap();
    let text = text.replace("ftp_ports = [21]", &format!("ftp_ports = [21]\n{router}"));
    let cfg = dir.join("ftp.toml");
    std::fs::write(&cfg, format!("{text}\n{tables}")).unwrap();
    cfg
}

/// `pcap` written to `dir` as `NAME.pcap`, with a copy of `config` beside it as `NAME.toml`
/// (the config `lsnat` finds for it).
fn derived(dir: &Path, name: &str, pcap: &common::Pcap, config: &str) -> std::path::PathBuf {
    let cap = dir.join(format!("{name}.pcap"));
    pcap.write(&cap);
    std::fs::copy(
        common::root().join(config),
        dir.join(format!("{name}.toml")),
    )
    .unwrap();
    cap
}

/// The golden's line of packet `n` (1-based).
fn packet_line(golden: &str, n: usize) -> String {
    golden
        .lines()
        .find(|l| l.starts_with(&format!("{n:>5} ")))
        .unwrap()
        .to_string()
}

/// A member's bytes are counted as the member sent them: in the router view a `227` the
/// gateway made one byte longer left the member at its captured length, which is what the
/// member's capture (`--members-dir`) holds. The first version counted the forwarded length.
#[test]
fn member_bytes_are_those_of_its_capture() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let members = dir.join("members");
    let report = common::replay_json(
        dir,
        &ftp_capture(),
        &["--members-dir".as_ref(), members.as_os_str()],
    );
    let m1 = "203.0.113.1";
    let resp: u64 = report["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["member"] == m1)
        .map(|s| s["resp_ip_bytes"].as_u64().unwrap())
        .sum();
    let sent: u64 = common::ipv4_datagrams(&members.join(format!("member-{m1}.pcap")))
        .iter()
        .filter(|(_, d)| d[12..16] == [203, 0, 113, 1])
        .map(|(_, d)| u64::from(u16::from_be_bytes([d[2], d[3]])))
        .sum();
    assert_eq!(resp, sent, "member {m1}: reported against its capture");
    assert_eq!(sent, 9360);
    // The load report counts the same bytes: every packet to or from each member, as its
    // capture holds them (before: a resized `227` at its forwarded length, one byte more).
    for m in report["load"]["members"].as_array().unwrap() {
        let addr = m["member"].as_str().unwrap();
        let octets: Vec<u8> = addr.split('.').map(|o| o.parse().unwrap()).collect();
        let captured: u64 = common::ipv4_datagrams(&members.join(format!("member-{addr}.pcap")))
            .iter()
            .filter(|(_, d)| d[12..16] == octets[..] || d[16..20] == octets[..])
            .map(|(_, d)| u64::from(u16::from_be_bytes([d[2], d[3]])))
            .sum();
        assert_eq!(m["bytes"].as_u64().unwrap(), captured, "load of {addr}");
    }
}

/// NAPT of sessions inside hosts start (§3.2) covering the members does not take the member's
/// active-mode data connection: its expectation comes first (conntrack's expectations come
/// before its NAT rules), so it leaves from the VIP's port 20 as an FTP data session. The
/// first version gave it to NAPT (from the outside address) and the client's answers passed
/// untranslated.
#[test]
fn napt_of_the_members_leaves_active_data_connections_to_the_gateway() {
    let scratch = common::scratch();
    let cfg = config_with(
        scratch.path(),
        "outside_address = \"198.18.0.1\"",
        "[napt]\ninside = [\"203.0.113.0/24\"]\n",
    );
    let g = lsnat::check::render(&ftp_capture(), Some(&cfg), None).unwrap();
    assert!(
        g.text.contains(
            "xlat out tcp 203.0.113.1:20 > 198.51.100.23:40141 => 198.18.0.100:20 > 198.51.100.23:40141"
        ),
        "{}",
        g.text
    );
    assert!(!g.text.contains(" napt\n"), "{}", g.text);
    assert_eq!(g.text.matches(" ftp-data of s").count(), 6, "{}", g.text);
}

/// A data connection's SYN that arrives with TTL 1 is not forwarded (RFC 1812 §5.3.1) and
/// binds nothing, whichever side opens it; its expectation waits for the next SYN. The first
/// version forwarded the client's with TTL 0, and bound the member's before dropping it.
#[test]
fn a_data_syn_with_ttl_1_is_dropped_before_anything_is_bound() {
    let scratch = common::scratch();
    let mut pcap = common::Pcap::read(&ftp_capture());
    // Packet 19: A's passive SYN to 198.18.0.100:50010; packet 148: member 1's active SYN
    // from port 20 to B:40141. Each gets TTL 1, its header checksum updated by hand.
    for index in [19usize, 148] {
        let frame = &mut pcap.records[index - 1].1;
        let ip = &mut frame[14..];
        assert_eq!(ip[33] & 0x12, 0x02, "packet {index} is a SYN");
        let old = u16::from_be_bytes([ip[8], ip[9]]);
        ip[8] = 1;
        let new = u16::from_be_bytes([ip[8], ip[9]]);
        let hc = u16::from_be_bytes([ip[10], ip[11]]);
        let sum = u32::from(!hc) + u32::from(!old) + u32::from(new);
        let sum = (sum & 0xffff) + (sum >> 16);
        let hc = !(((sum & 0xffff) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&hc.to_be_bytes());
    }
    let cap = scratch.path().join("ttl1.pcap");
    pcap.write(&cap);
    let cfg = config_with(scratch.path(), "icmp_time_exceeded = true", "");
    let g = lsnat::check::render(&cap, Some(&cfg), None).unwrap();
    let line = |n: usize| packet_line(&g.text, n);
    for n in [19, 148] {
        assert!(line(n).contains("DROP  ttl-exceeded"), "{}", line(n));
        assert!(!line(n).contains(" new"), "{}", line(n));
    }
    assert!(g.text.contains("(answering packet 19)"), "{}", g.text);
    // Nothing else of those two connections can be bound: their SYNs were the only ones.
    assert_eq!(g.text.matches(" ftp-data of s").count(), 4, "{}", g.text);
}

/// A passive data connection's 4-tuple used again while the first connection is in its close
/// grace (the capture with the first data connection of control session s1, A:40111 →
/// VIP:50010, copied 0.8 ms later, after its FINs, as a client reusing its port would): the
/// closing session ends and the new SYN is classified afresh. No control session announced it
/// again, and the VIP's port 50010 is no service, so it passes untranslated and nothing is
/// bound. The first version load-shared it as if the data port were a service of the virtual
/// server.
#[test]
fn a_data_tuple_reused_in_its_close_grace_is_classified_afresh() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let mut pcap = common::Pcap::read(&ftp_capture());
    // Ethernet: IPv4 at 14, TCP ports at 34.
    let of_s2 = |f: &[u8]| {
        let ports = [
            u16::from_be_bytes([f[34], f[35]]),
            u16::from_be_bytes([f[36], f[37]]),
        ];
        ports == [40111, 50010] || ports == [50010, 40111]
    };
    let ns = |h: &[u8; 16]| {
        u64::from(u32::from_le_bytes(h[..4].try_into().unwrap())) * 1_000_000_000
            + u64::from(u32::from_le_bytes(h[4..8].try_into().unwrap()))
    };
    let copies: Vec<([u8; 16], Vec<u8>)> = pcap
        .records
        .iter()
        .filter(|(_, f)| f.len() > 38 && f[23] == 6 && of_s2(f))
        .map(|(h, f)| {
            let t = ns(h) + 800_000;
            let mut h = *h;
            h[..4].copy_from_slice(&((t / 1_000_000_000) as u32).to_le_bytes());
            h[4..8].copy_from_slice(&((t % 1_000_000_000) as u32).to_le_bytes());
            (h, f.clone())
        })
        .collect();
    assert_eq!(copies.len(), 8);
    let last = copies.iter().map(|(h, _)| ns(h)).max().unwrap();
    // The copy ends before control session s1's next PASV reply announces anything.
    assert!(last < ns(&pcap.records[0].0) + 40_000_000);
    pcap.records.extend(copies);
    pcap.records.sort_by_key(|(h, _)| ns(h));
    let cap = derived(dir, "reused", &pcap, "captures/lsnat-ftp.toml");
    let g = lsnat::check::render(&cap, None, None).unwrap();
    let text = &g.text;
    let lines = |s: &str| text.lines().filter(|l| l.contains(s)).count();
    // The copy's SYN, and its client's packets after it: not load-shared; they pass as to no
    // service of the VIP (LSNAT: the VIP is not the router's own address).
    assert_eq!(
        lines("pass  vip-not-a-service -   tcp 198.51.100.7:40111 > 198.18.0.100:50010"),
        4,
        "{text}"
    );
    // Sessions: the five control and six data sessions of the capture, and no other.
    assert_eq!(lines(" ftp-data of s"), 6, "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with('s') && l.contains(" ftp tcp "))
            .count(),
        11,
        "{text}"
    );
    // s2, the first connection, ended when its tuple was opened again.
    let s2 = text.lines().find(|l| l.starts_with("s2 ")).unwrap();
    assert!(
        s2.contains("198.51.100.7:40111 > 198.18.0.100:50010")
            && s2.contains(" end fin at +0.003579"),
        "{s2}"
    );
}

/// Member 203.0.113.1 removed by the pool timeline 1 ms into the capture, after control
/// session s1 (to it) began and before either of its data connections (s2, s3) opened: the
/// data connections still go to s1's member (IPVS's FTP helper sends them to the control
/// connection's server; §2.5: bound sessions are not moved), and as that member's sessions
/// after its removal each one's end is reported as `removed-session-ended` with all its
/// packets after the removal. The first version reported only s1's end.
#[test]
fn data_connections_of_a_removed_members_control_session_report_their_end() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let cfg = config_with(
        dir,
        "",
        "[[timeline]]\nat = \"+1ms\"\naction = \"remove\"\nmember = \"203.0.113.1\"\n",
    );
    let report = common::replay_json(dir, &ftp_capture(), &["-c".as_ref(), cfg.as_os_str()]);
    let events: Vec<(String, u64, String)> = report["pool_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["transition"].as_str().unwrap().to_string(),
                e["sessions"][0].as_u64().unwrap(),
                e["evidence"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let ended = |n: u64, packets: [u64; 2]| {
        (
            "removed-session-ended".to_string(),
            n,
            format!(
                "s{n} ended; {} packets to it and {} from it after the removal",
                packets[0], packets[1]
            ),
        )
    };
    let sessions = report["sessions"].as_array().unwrap();
    let session = |n: u64| sessions.iter().find(|s| s["id"] == n).unwrap();
    for n in [2, 3] {
        assert_eq!(session(n)["ftp_data_of"], 1);
        assert_eq!(session(n)["member"], "203.0.113.1");
    }
    assert_eq!(
        events,
        vec![
            (
                "removed".to_string(),
                1,
                "no new sessions; bound sessions are not moved".to_string()
            ),
            ended(2, [4, 4]),
            ended(3, [6, 6]),
            ended(1, [16, 16]),
        ]
    );
    // The data sessions' packets: all of them after the removal.
    for (n, packets) in [(2, 4), (3, 6)] {
        assert_eq!(session(n)["orig_pkts"], packets);
        assert_eq!(session(n)["resp_pkts"], packets);
    }
}

/// What the gateway read and did, counted in the JSON report's `ftp_gateway` and the
/// terminal summary: on the capture as recorded, every command and reply followed; with the
/// address of client B's `PORT` (packet 144) changed to a third party's, 198.51.100.24 (its
/// TCP checksum recomputed), that command is forwarded unrewritten and not followed, as Linux's
/// `nf_conntrack_ftp` does not record it, and member 1's data connection to B (packet 148)
/// binds nothing.
#[test]
fn the_report_counts_commands_followed_and_not_followed() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let gateway = |report: &serde_json::Value| report["ftp_gateway"].clone();
    let report = common::replay_json(dir, &ftp_capture(), &[]);
    assert_eq!(
        gateway(&report),
        serde_json::json!({
            "followed": {"227": 3, "229": 1, "EPRT": 1, "PORT": 1},
            "unfollowed": {},
            "resized": 3,
            "data_sessions": 6,
        })
    );
    let out = common::lsnat()
        .arg("replay")
        .arg(ftp_capture())
        .arg("--json")
        .arg(dir.join("r.json"))
        .output()
        .unwrap();
    let terminal = String::from_utf8_lossy(&out.stdout);
    for row in ["227 followed", "PORT followed", "data connections bound"] {
        assert!(terminal.contains(row), "{row}: {terminal}");
    }

    let mut pcap = common::Pcap::read(&ftp_capture());
    let frame = &mut pcap.records[143].1;
    let text = b"PORT 198,51,100,23,";
    let at = frame
        .windows(text.len())
        .position(|w| w == text)
        .expect("packet 144 is B's PORT");
    frame[at + text.len() - 2] = b'4';
    common::fix_tcp_checksum(frame);
    let cap = derived(dir, "third-party", &pcap, "captures/lsnat-ftp.toml");
    let report = common::replay_json(dir, &cap, &[]);
    assert_eq!(
        gateway(&report),
        serde_json::json!({
            "followed": {"227": 3, "229": 1, "EPRT": 1},
            "unfollowed": {"address-not-sender": 1},
            "resized": 3,
            "data_sessions": 5,
        })
    );
    let g = lsnat::check::render(&cap, None, None).unwrap();
    let line = |n: usize| packet_line(&g.text, n);
    assert!(
        line(144).contains("198.51.100.23:40024 > 203.0.113.1:21")
            && line(144).ends_with("ftp PORT unfollowed address-not-sender s8"),
        "{}",
        line(144)
    );
    assert!(!line(148).contains("xlat"), "{}", line(148));
}

/// LS-NAPT with no TU port left toward the member: `captures/lsnat-ftp-napt.pcap` with
/// 3 × 64,512 + 3 client SYNs to the VIP's port 21 (from 198.19.x.y) inserted just before
/// control session s5's `PORT` (packet 87), which fill every member's pool (round-robin
/// gives each a third). The `PORT` is then forwarded with its client's address unrewritten,
/// nothing is expected, and the report says why (`no-tu-port`); Linux's `nf_nat_ftp` drops
/// it instead ("all ports in use"), a choice lsnat does not copy: the command is the client's
/// and the member may still answer it on the router's address.
#[test]
fn a_port_with_no_tu_port_free_is_reported_as_not_followed() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let capture = common::root().join("captures/lsnat-ftp-napt.pcap");
    let mut pcap = common::Pcap::read(&capture);
    let (header, port) = pcap.records[86].clone();
    assert!(
        port.windows(5).any(|w| w == b"PORT "),
        "packet 87 is s5's PORT"
    );
    let n = 3 * 64_512 + 3;
    let flood: Vec<([u8; 16], Vec<u8>)> = (0..n)
        .map(|i: u32| {
            let mut f = port[..14 + 40].to_vec();
            let ip = &mut f[14..];
            ip[2..4].copy_from_slice(&40u16.to_be_bytes());
            ip[10..12].copy_from_slice(&[0, 0]);
            ip[12..16].copy_from_slice(&(0xC613_0000 + i / 60_000).to_be_bytes()); // 198.19.x.y
            let tcp = &mut ip[20..];
            tcp[0..2].copy_from_slice(&(1024 + (i % 60_000) as u16).to_be_bytes());
            tcp[4..8].copy_from_slice(&i.to_be_bytes());
            tcp[8..12].copy_from_slice(&[0; 4]);
            tcp[12] = 5 << 4;
            tcp[13] = 0x02; // SYN
            let sum: u32 = f[14..34]
                .chunks(2)
                .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
                .sum();
            let sum = (sum & 0xffff) + (sum >> 16);
            let hc = !(((sum & 0xffff) + (sum >> 16)) as u16);
            f[24..26].copy_from_slice(&hc.to_be_bytes());
            common::fix_tcp_checksum(&mut f);
            let mut h = header;
            h[8..12].copy_from_slice(&54u32.to_le_bytes());
            h[12..16].copy_from_slice(&54u32.to_le_bytes());
            (h, f)
        })
        .collect();
    pcap.records.splice(86..86, flood);
    let cap = derived(dir, "full", &pcap, "captures/lsnat-ftp-napt.toml");
    let out = dir.join("out.pcap");
    let report = common::replay_json(dir, &cap, &["-o".as_ref(), out.as_os_str()]);
    assert_eq!(
        report["ftp_gateway"]["unfollowed"],
        serde_json::json!({"no-tu-port": 1})
    );
    let index = 87 + n as usize;
    // The pools are full: the first packet refused is one of the inserted SYNs, before the
    // PORT.
    let first = &report["dropped_packets"][0];
    assert_eq!(first["reason"], "napt-ports-exhausted");
    assert!(
        first["tuple"]["src"]
            .as_str()
            .unwrap()
            .starts_with("198.19.")
    );
    assert!(first["packet"].as_u64().unwrap() < index as u64);
    let g = lsnat::check::render(&cap, None, None).unwrap();
    let line = packet_line(&g.text, index);
    assert!(
        line.contains(
            "198.51.100.7:40033 > 198.18.0.100:21 => 203.0.113.254:40033 > 203.0.113.3:21"
        ) && line.ends_with(" ftp PORT unfollowed no-tu-port s5"),
        "{line}"
    );
    // Forwarded as it came but for the translation: the client's own address.
    let ports: Vec<String> = common::ipv4_datagrams(&out)
        .iter()
        .filter_map(|(_, d)| {
            let at = d.windows(5).position(|w| w == b"PORT ")?;
            let text = String::from_utf8_lossy(&d[at..]).trim_end().to_string();
            text.starts_with("PORT 1").then_some(text)
        })
        .collect();
    assert_eq!(ports, ["PORT 198,51,100,7,157,39"]);
}

/// A `227` whose rewritten address would make its datagram longer than an IPv4 total length
/// can say: `captures/lsnat-ftp.pcap` with member .2's `227` to s4 (packet 73), which the
/// gateway makes one byte longer, padded after its line to 65,535 bytes. It is forwarded with
/// the member's address unrewritten and at its length, its data connection is not expected
/// (the client's SYN to the VIP's port 50,xxx binds nothing), and the report says why
/// (`datagram-too-long`): Linux's `nf_nat_mangle_tcp_packet` refuses to enlarge a packet past
/// 65,535 bytes, and `nf_nat_ftp` then withdraws the expectation (and drops the packet).
/// Before, the length wrapped: a datagram of 65,536 bytes whose total length field said 0.
#[test]
fn a_reply_that_would_outgrow_its_total_length_is_not_followed() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let mut pcap = common::Pcap::read(&ftp_capture());
    let (h, frame) = &mut pcap.records[72];
    assert!(
        frame.windows(4).any(|w| w == b"227 "),
        "packet 73 is the 227 to s4"
    );
    frame.resize(14 + 65_535, b' ');
    let ip = &mut frame[14..];
    ip[2..4].copy_from_slice(&65_535u16.to_be_bytes());
    ip[10..12].copy_from_slice(&[0, 0]);
    let sum = ip[..20]
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let c = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    common::fix_tcp_checksum(frame);
    let len = (frame.len() as u32).to_le_bytes();
    h[8..12].copy_from_slice(&len);
    h[12..16].copy_from_slice(&len);
    let cap = derived(dir, "long-227", &pcap, "captures/lsnat-ftp.toml");
    let out = dir.join("long-227-out.pcap");
    let report = common::replay_json(dir, &cap, &["-o".as_ref(), out.as_os_str()]);
    assert_eq!(
        report["ftp_gateway"],
        serde_json::json!({
            "followed": {"227": 2, "229": 1, "EPRT": 1, "PORT": 1},
            "unfollowed": {"datagram-too-long": 1},
            "resized": 2,
            "data_sessions": 5,
        })
    );
    let g = lsnat::check::render(&cap, None, None).unwrap();
    let line = packet_line(&g.text, 73);
    assert!(
        line.contains("203.0.113.2:21 > 198.51.100.23:40022 => 198.18.0.100:21")
            && line.ends_with("ftp 227 unfollowed datagram-too-long s4"),
        "{line}"
    );
    // Forwarded whole, the member's address as it sent it, every checksum right.
    let (meta, frame) = common::read_all(&out)
        .into_iter()
        .find(|(_, f)| f.len() > 60_000)
        .expect("the long 227 forwarded");
    let ip = &frame[14..];
    assert_eq!(
        (ip.len(), u16::from_be_bytes([ip[2], ip[3]])),
        (65_535, 65_535)
    );
    let text = String::from_utf8_lossy(&ip[40..120]).into_owned();
    assert!(text.contains("(203,0,113,2,"), "{text}");
    assert_eq!(
        common::checksum_errors(meta.linktype, &frame),
        Some((0, Some(0)))
    );
}
