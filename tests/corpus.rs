//! Every public capture in `../shared/corpus/` (written by other projects) replays without a
//! panic: readable files replay to the end with checksums preserved on every written packet;
//! malformed ones give a one-line error. Each is replayed in the client-side view with a
//! virtual server at the destination of its first TCP SYN and of its first UDP datagram, so
//! real sessions in it are translated. Skips, saying so, when the corpus is absent.

mod common;

use std::path::Path;

/// Files that must be refused, and a word the error must contain.
const MALFORMED: &[(&str, &str)] = &[
    ("libpcap__pcap-invalid-version-1.pcap", "version"),
    ("suricata__tls_DER-incomplete-header.pcap", "packet 7"),
    ("tcpdump__mpls-traceroute.pcap", "link type 9"),
];

#[test]
fn every_corpus_capture_replays_or_is_refused_clearly() {
    let Some(corpus) = common::corpus() else {
        eprintln!("skipping: the capture corpus is absent");
        return;
    };
    let scratch = common::scratch();
    let tmp = scratch.path();
    let files = common::captures(&corpus);
    let counts = common::manifest(&corpus);
    assert!(
        files.len() >= 30,
        "corpus looks incomplete: {}",
        files.len()
    );
    let mut translated_somewhere = 0;
    for cap in &files {
        let file = cap.file_name().unwrap().to_str().unwrap();
        let cfg = tmp.join(format!("{file}.toml"));
        let cfg_text = common::derive_config(cap).unwrap_or_else(|| {
            "[[virtual_server]]\nvip = \"203.0.113.250\"\nprotocol = \"tcp\"\nports = [1]\nmembers = [\"192.0.2.1\"]\n".into()
        });
        std::fs::write(&cfg, cfg_text).unwrap();
        let out = tmp.join(format!("out-{file}"));
        let result = lsnat::check::render(cap, Some(&cfg), Some(&out));
        if let Some((_, word)) = MALFORMED.iter().find(|(f, _)| *f == file) {
            let e = match result {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{file}: a malformed capture was accepted"),
            };
            assert!(
                !e.contains('\n') && e.contains(file) && e.contains(word),
                "{file}: {e}"
            );
            assert!(!out.exists(), "{file}: output left behind after an error");
            continue;
        }
        let g = result.unwrap_or_else(|e| panic!("{file}: {e}"));
        if let Some(&n) = counts.get(file) {
            assert_eq!(g.totals.packets, n, "{file}: packets read vs MANIFEST.tsv");
        }
        common::assert_checksums_preserved(cap, &out, &g.log.written);
        // None of these was taken on both sides of a forwarding router: no pair of copies of
        // one datagram one hop apart (`lsnat::forwarded_copies`) may be found in them.
        assert!(
            !g.totals
                .warnings
                .iter()
                .any(|w| w.contains("look like one datagram")),
            "{file}: {:?}",
            g.totals.warnings
        );
        if g.text.contains(" xlat ") {
            translated_somewhere += 1;
        }
    }
    assert!(
        translated_somewhere >= 15,
        "only {translated_somewhere} corpus captures had translated packets"
    );
}

/// Replays `capture` with the config `text` (written as `dir/NAME.toml`), its rewritten capture
/// to `dir/NAME.pcap`: the golden rendering, and that capture's path.
fn replay_with(
    capture: &Path,
    dir: &Path,
    name: &str,
    text: &str,
) -> (lsnat::check::Golden, std::path::PathBuf) {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, text).unwrap();
    let out = dir.join(format!("{name}.pcap"));
    let g = lsnat::check::render(capture, Some(&cfg), Some(&out)).unwrap();
    (g, out)
}

/// An ICMP error for which no session exists is dropped and reported (RFC 3022 §4.3: a NAT
/// translates errors about the sessions it holds). The capture holds one port unreachable from
/// 192.168.1.102 to 192.168.1.1, quoting a DNS reply 192.168.1.1:53 → 192.168.1.102:59207;
/// with 192.168.1.1 as the VIP of a UDP :53 service, it refers to a session never bound.
#[test]
fn icmp_error_without_a_session_is_dropped_and_reported() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let cap = corpus.join("zeek__icmp-destunreach-udp.pcap");
    let scratch = common::scratch();
    let tmp = scratch.path();
    let (g, out) = replay_with(
        &cap,
        tmp,
        "destunreach",
        "[[virtual_server]]\nvip = \"192.168.1.1\"\nprotocol = \"udp\"\nports = [53]\nmembers = [\"192.0.2.1\", \"192.0.2.2\"]\n",
    );
    assert!(
        g.text.contains(
            "    1 +0.000000 DROP  icmp-error-no-session -   icmp 192.168.1.102 > 192.168.1.1 id 0"
        ),
        "{}",
        g.text
    );
    assert!(
        g.text.contains("dropped: icmp-error-no-session"),
        "{}",
        g.text
    );
    assert_eq!(g.log.written, [], "nothing forwarded");
    assert!(common::read_all(&out).is_empty());
}

/// Later fragments share the fate of their first fragment when it is not translated (RFC 3022
/// §4.1), instead of waiting in the hold for a first fragment that has gone by. The capture
/// holds an FTP segment from 210.54.213.247 to 131.243.1.10:21 in five fragments, in order.
/// With that address a VIP of another port, the first fragment passes untouched and so do the
/// other four; with :21 load-shared, the first is dropped (a TCP segment without a session)
/// and so are the others, for the same reason.
#[test]
fn later_fragments_pass_or_drop_with_their_first_fragment() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let cap = corpus.join("zeek__fragmented-3.pcap");
    let scratch = common::scratch();
    let tmp = scratch.path();
    for (port, verdict, written) in [
        (80, "pass  vip-not-a-service", 5),
        (21, "DROP  tcp-no-session", 0),
    ] {
        let (g, out) = replay_with(
            &cap,
            tmp,
            &format!("frag-{port}"),
            &format!(
                "[[virtual_server]]\nvip = \"131.243.1.10\"\nprotocol = \"tcp\"\nports = [{port}]\nmembers = [\"192.0.2.1\"]\n"
            ),
        );
        let lines: Vec<&str> = g.text.lines().filter(|l| l.starts_with("    ")).collect();
        assert_eq!(lines.len(), 5, "{}", g.text);
        for l in &lines {
            assert!(l.contains(verdict), "port {port}: {l}\n{}", g.text);
        }
        assert_eq!(g.log.written.len(), written, "port {port}");
        assert!(!g.text.contains("HOLD"), "port {port}: {}", g.text);
        if written > 0 {
            let bytes = |p: &std::path::Path| -> Vec<Vec<u8>> {
                common::read_all(p).into_iter().map(|(_, b)| b).collect()
            };
            assert_eq!(
                bytes(&out),
                bytes(&cap),
                "passed fragments leave byte for byte"
            );
        }
    }
}

/// A pcapng interface description whose options are broken (here the end-of-options of the
/// first interface given length 255, as one flipped byte does) would be copied into the
/// rewritten capture, which Wireshark then refuses: it is refused, naming the block's offset.
#[test]
fn broken_interface_options_are_refused_not_copied() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut bytes = std::fs::read(corpus.join("zeek__pcapng-multi-interface.pcapng")).unwrap();
    assert_eq!(
        bytes[194], 0,
        "the end-of-options length of the first interface"
    );
    bytes[194] = 0xff;
    let scratch = common::scratch();
    let cap = scratch.path().join("broken.pcapng");
    std::fs::write(&cap, &bytes).unwrap();
    let out = scratch.path().join("out.pcapng");
    let e = match lsnat::check::render(
        &cap,
        Some(Path::new("captures/lsnat-router.toml")),
        Some(&out),
    ) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("broken interface options accepted"),
    };
    for word in [
        "broken.pcapng",
        "byte offset 132",
        "interface description block",
        "length 255",
    ] {
        assert!(e.contains(word), "{e}");
    }
    assert!(!e.contains('\n') && !out.exists(), "{e}");
}

/// Capture time runs to the last frame, IPv4 or not (RFC 2391 §2.4 timers fire in capture
/// time): a session whose idle timeout passed before the capture's last frame is unbound by
/// it, never reported open at the end. `tcpreplay__test.pcap` ends in MPLS and other non-IPv4
/// frames after its last IPv4 packet; every corpus capture is checked with short timeouts.
/// Sessions are reported in the order they ended, also when several end between two packets
/// (in `tcpreplay__test.pcap` two DNS sessions seen at different times end between the same
/// two packets).
#[test]
fn no_session_past_its_timeout_is_open_at_the_end() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let scratch = common::scratch();
    let tmp = scratch.path();
    const TCP_NS: u64 = 1_000_000_000;
    const OTHER_NS: u64 = 100_000_000;
    let (mut open_checked, mut expired_late) = (0, 0);
    for cap in common::captures(&corpus) {
        let file = cap.file_name().unwrap().to_str().unwrap().to_owned();
        if MALFORMED.iter().any(|(f, _)| *f == file) {
            continue;
        }
        let Some(mut cfg_text) = common::derive_config(&cap) else {
            continue;
        };
        cfg_text.push_str(
            "[timeouts]\ntcp = \"1s\"\ntcp_opening = \"1s\"\ntcp_closing = \"1s\"\nudp = \"100ms\"\nicmp = \"100ms\"\nother = \"100ms\"\n",
        );
        let cfg = tmp.join(format!("{file}.toml"));
        std::fs::write(&cfg, cfg_text).unwrap();
        let dir = tmp.join(&file);
        std::fs::create_dir_all(&dir).unwrap();
        let report = common::replay_json(&dir, &cap, &["-c".as_ref(), cfg.as_os_str()]);
        let frames = common::read_all(&cap);
        let end = frames.iter().map(|(m, _)| m.ts.0).max().unwrap_or(0);
        let last_ipv4 = frames
            .iter()
            .filter(|(m, b)| {
                matches!(
                    lsnat::link::locate(m.linktype, b).payload,
                    lsnat::link::Payload::Ipv4 { .. }
                )
            })
            .map(|(m, _)| m.ts.0)
            .max()
            .unwrap_or(0);
        let ends: Vec<u64> = report["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["end_ts_ns"].as_u64().unwrap())
            .collect();
        if let Some(w) = ends.windows(2).position(|w| w[0] > w[1]) {
            panic!(
                "{file}: records are not in the order sessions ended: {} then {}",
                report["sessions"][w],
                report["sessions"][w + 1]
            );
        }
        for s in report["sessions"].as_array().unwrap() {
            let last = s["last_ts_ns"].as_u64().unwrap();
            let timeout = if s["proto"] == "tcp" {
                TCP_NS
            } else {
                OTHER_NS
            };
            match s["end"].as_str().unwrap() {
                "open-at-end" => {
                    open_checked += 1;
                    assert!(
                        last + timeout > end,
                        "{file}: session {} last seen {} ns before the end, open at the end: {s}",
                        s["id"],
                        end - last
                    );
                    assert_eq!(s["end_ts_ns"].as_u64(), Some(end), "{file}: {s}");
                }
                "idle-timeout" => {
                    let ended = s["end_ts_ns"].as_u64().unwrap();
                    assert_eq!(ended, last + timeout, "{file}: {s}");
                    if ended > last_ipv4 {
                        expired_late += 1;
                    }
                }
                _ => {}
            }
        }
    }
    assert!(open_checked > 0, "no session open at the end anywhere");
    assert!(
        expired_late > 0,
        "no session expired after the last IPv4 packet (tcpreplay__test.pcap has some)"
    );
}

/// An NTP client sends from port 123 to several servers on port 123 (`zeek__NTP_sync.pcap`).
/// Made two virtual servers of one member in LSNAT mode (no source translation), its sessions
/// would share one reply key (member:123 → client:123) and the router could not tell whose
/// replies it forwards: the second session is refused `reply-key-in-use` and the first keeps
/// its replies. With a member each, both are bound.
#[test]
fn sessions_that_would_share_a_reply_key_are_refused() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let cap = corpus.join("zeek__NTP_sync.pcap");
    let scratch = common::scratch();
    let tmp = scratch.path();
    for (second_member, refused) in [("192.0.2.1", true), ("192.0.2.2", false)] {
        let cfg = tmp.join(format!("ntp-{refused}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[[virtual_server]]\nname = \"a\"\nvip = \"67.129.68.9\"\nprotocol = \"udp\"\nports = [123]\nmembers = [\"192.0.2.1\"]\n\n\
                 [[virtual_server]]\nname = \"b\"\nvip = \"69.44.57.60\"\nprotocol = \"udp\"\nports = [123]\nmembers = [\"{second_member}\"]\n"
            ),
        )
        .unwrap();
        let dir = tmp.join(format!("ntp-{refused}"));
        std::fs::create_dir_all(&dir).unwrap();
        let report = common::replay_json(&dir, &cap, &["-c".as_ref(), cfg.as_os_str()]);
        let sessions = report["sessions"].as_array().unwrap();
        let to = |vip: &str| sessions.iter().filter(|s| s["resp_h"] == vip).count();
        assert_eq!(to("67.129.68.9"), 1, "{report}");
        let dropped = &report["dropped_packets"];
        let refusals = dropped
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["reason"] == "reply-key-in-use")
            .count();
        if refused {
            assert_eq!(to("69.44.57.60"), 0, "the second session is refused");
            assert!(refusals > 0, "{dropped}");
            // The first session kept its reply key: its record is whole.
            let a = sessions
                .iter()
                .find(|s| s["resp_h"] == "67.129.68.9")
                .unwrap();
            assert_eq!(a["member"], "192.0.2.1");
        } else {
            assert_eq!(to("69.44.57.60"), 1);
            assert_eq!(refusals, 0);
        }
    }
}

/// The FTP gateway turned off (`router.ftp_ports = []`): an FTP control session's `227`
/// reply passes with its payload as the server wrote it, and the passive data connection to
/// the VIP's announced port is not tied to the control session's member: it is not to a
/// service port, so it passes untouched.
#[test]
fn ftp_payloads_and_data_connections_pass_with_the_gateway_off() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let cap = corpus.join("zeek__ftp-ipv4.pcap");
    let scratch = common::scratch();
    let tmp = scratch.path();
    let text = ZEEK_FTP.replace(
        "[[virtual_server]]",
        "[router]\nftp_ports = []\n[[virtual_server]]",
    );
    let (g, out) = replay_with(&cap, tmp, "ftp", &text);
    assert!(
        g.text.contains(
            "   20 +13.767338 xlat out tcp 199.233.217.249:21 > 141.142.220.235:50003 => 192.0.2.1:21 > 141.142.220.235:50003"
        ),
        "{}",
        g.text
    );
    assert!(
        g.text.contains(
            "   22 +13.767615 pass  vip-not-a-service -   tcp 141.142.220.235:37604 > 199.233.217.249:56666"
        ),
        "{}",
        g.text
    );
    assert!(
        !g.text.contains(" ftp 227") && !g.text.contains("ftp-data"),
        "{}",
        g.text
    );
    let input = common::read_all(&cap);
    let output = common::read_all(&out);
    assert_eq!(input.len(), output.len(), "every packet written");
    let reply = b"227 Entering Passive Mode (199,233,217,249,221,90)\r\n";
    let tail = |frame: &[u8]| frame[frame.len() - reply.len()..].to_vec();
    assert_eq!(tail(&input[19].1), reply, "packet 20 of the capture");
    assert_eq!(tail(&output[19].1), reply, "the 227 reply as written");
    assert_eq!(input[21].1, output[21].1, "the data connection's SYN");
}

/// A config for `zeek__ftp-ipv4.pcap` (captured in front of ftp.NetBSD.org, 199.233.217.249):
/// that server is the VIP, the client-side view gives its replies to the member.
const ZEEK_FTP: &str = "view = \"client-side\"\n[[virtual_server]]\nvip = \"199.233.217.249\"\nprotocol = \"tcp\"\nports = [21]\nmembers = [\"192.0.2.1\", \"192.0.2.2\"]\n";

/// The FTP gateway (RFC 1631 §5, RFC 3022 §4.3) on a capture someone else took, in the
/// client-side view: the output shows what the member would have sent and received. The
/// server's `227` carries the VIP's address as captured, so the member's own carries its
/// address, six characters shorter: the reply is written 6 bytes shorter, every later
/// segment of the member is 6 lower in sequence and every acknowledgement of the client 6
/// lower, so the stream is whole as the member sees it. The two passive data connections go
/// to the control session's member and the two active ones (PORT, from the server's side) are
/// its too, none of them asking round-robin, which would have sent the next to 192.0.2.2.
#[test]
fn ftp_gateway_follows_pasv_and_port_in_the_client_side_view() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let cap = corpus.join("zeek__ftp-ipv4.pcap");
    let scratch = common::scratch();
    let tmp = scratch.path();
    let (g, out) = replay_with(&cap, tmp, "ftp", ZEEK_FTP);
    for line in [
        "   20 +13.767338 xlat out tcp 199.233.217.249:21 > 141.142.220.235:50003 => 192.0.2.1:21 > 141.142.220.235:50003 ttl 48>48 ip cb18>ab00 l4 b3ea>2c80 ftp 227 -6B s1",
        "   21 +13.767481 xlat in  tcp 141.142.220.235:50003 > 199.233.217.249:21 => 141.142.220.235:50003 > 192.0.2.1:21 ttl 64>63 ip f785>d867 l4 5dba>3da2 ack-6 s1",
        "   22 +13.767615 xlat in  tcp 141.142.220.235:37604 > 199.233.217.249:56666 => 141.142.220.235:37604 > 192.0.2.1:56666",
        "   57 +32.071696 xlat in  tcp 141.142.220.235:50003 > 199.233.217.249:21 => 141.142.220.235:50003 > 192.0.2.1:21 ttl 64>63 ip f75b>d83d l4 6982>4970 ftp PORT ack-12 s1",
        "   60 +32.183034 xlat out tcp 199.233.217.249:61920 > 141.142.220.235:33582 => 192.0.2.1:61920 > 141.142.220.235:33582",
    ] {
        assert!(g.text.contains(line), "{line}\n{}", g.text);
    }
    for s in 2..=5 {
        assert!(
            g.text.lines().any(|l| l.starts_with(&format!("s{s} "))
                && l.ends_with(" ftp-data of s1")
                && l.contains("=> 192.0.2.1 first")
                && l.contains(" end fin ")),
            "s{s}\n{}",
            g.text
        );
    }
    assert!(!g.text.contains("192.0.2.2 first"), "{}", g.text);
    // Every packet written, the resized replies and the shifted segments among them, carries
    // the checksum errors (none) its input packet had, recomputed from scratch.
    assert_eq!(
        common::assert_checksums_preserved(&cap, &out, &g.log.written),
        95
    );
    let input = common::read_all(&cap);
    let output = common::read_all(&out);
    assert_eq!(input.len(), output.len(), "every packet written");
    let reply = b"227 Entering Passive Mode (192,0,2,1,221,90)\r\n";
    let frame = &output[19].1;
    assert_eq!(
        &frame[frame.len() - reply.len()..],
        reply,
        "the 227 as the member sent it"
    );
    assert_eq!(frame.len() + 6, input[19].1.len());
    assert_eq!(output[19].0.orig_len + 6, input[19].0.orig_len);
    // The client's next acknowledgement (packet 21) acknowledges the shorter reply exactly.
    let tcp = |f: &[u8]| {
        let ip = &f[14..];
        let t = &ip[usize::from(ip[0] & 15) * 4..];
        let word = |at: usize| u32::from_be_bytes(t[at..at + 4].try_into().unwrap());
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        (
            word(4),
            word(8),
            total - usize::from(ip[0] & 15) * 4 - usize::from(t[12] >> 4) * 4,
        )
    };
    let (seq, _, len) = tcp(frame);
    let (_, ack, _) = tcp(&output[20].1);
    assert_eq!(
        ack,
        seq.wrapping_add(len as u32),
        "the client acknowledges the reply"
    );
}
