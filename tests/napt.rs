//! NAPT of inside-initiated sessions (RFC 2391 §3.2) on the recorded capture
//! `captures/modes-lsnat-napt.pcap`, under configurations other than the one beside it.

mod common;

use lsnat::check;

/// The packet lines of a rendered golden (between `## packets` and `## sessions`).
fn packet_lines(text: &str) -> Vec<&str> {
    text.lines()
        .skip_while(|l| !l.starts_with("## packets"))
        .take_while(|l| !l.starts_with("## sessions"))
        .collect()
}

/// An established NAPT TCP connection keeps the `tcp` idle timeout whatever `tcp_opening` is
/// (RFC 5382 §5, RFC 7857 §2.1): with `tcp_opening = "10ms"` the connection an inside host
/// opens to 198.51.100.7:80, idle ~50 ms between requests once established, is translated
/// exactly as with the capture's own configuration (the load-shared ones complete their
/// handshakes well within 10 ms).
#[test]
fn established_napt_tcp_outlives_a_short_opening_timeout() {
    let cap = common::root().join("captures/modes-lsnat-napt.pcap");
    let toml = std::fs::read_to_string(cap.with_extension("toml")).unwrap();
    assert!(toml.contains("tcp = \"24h\"\n"));
    let scratch = common::scratch();
    let variant = scratch.path().join("short-opening.toml");
    std::fs::write(
        &variant,
        toml.replace("tcp = \"24h\"\n", "tcp = \"24h\"\ntcp_opening = \"10ms\"\n"),
    )
    .unwrap();
    let base = check::render(&cap, None, None).unwrap();
    let short = check::render(&cap, Some(&variant), None).unwrap();
    let (base, short) = (packet_lines(&base.text), packet_lines(&short.text));
    assert!(base.iter().filter(|l| l.ends_with(" napt")).count() >= 30);
    assert_eq!(short, base);
}

/// A connection an outside host opens straight to an inside host (routed, not NATed) passes
/// whole, both directions `unrelated`: lsnat tracks only what it translates, and the inside
/// host's SYN-ACK and data are no NAPT session's (before, they were dropped `tcp-no-session`,
/// half a connection). Real traffic: `zeek__http-qinq-0.pcap` from the corpus, an HTTP
/// session 141.142.228.5 → 192.150.187.43:80, with 192.150.187.0/24 as the inside network of
/// a figure 2 router whose outside address (a VIP with a member inside) is elsewhere.
#[test]
fn a_routed_connection_to_an_inside_host_passes_both_ways() {
    let Some(corpus) = common::corpus() else {
        eprintln!("skipping: the capture corpus is absent");
        return;
    };
    let cap = corpus.join("zeek__http-qinq-0.pcap");
    let scratch = common::scratch();
    let cfg = scratch.path().join("routed.toml");
    std::fs::write(
        &cfg,
        "[router]\noutside_address = \"198.51.100.1\"\n[napt]\ninside = [\"192.150.187.0/24\"]\n\
         [[virtual_server]]\nvip = \"198.51.100.1\"\nprotocol = \"tcp\"\nports = [80]\n\
         members = [\"192.150.187.10\"]\n",
    )
    .unwrap();
    let g = check::render(&cap, Some(&cfg), None).unwrap();
    let lines: Vec<&str> = packet_lines(&g.text).into_iter().skip(1).collect();
    let from_inside = lines
        .iter()
        .filter(|l| l.contains(" tcp 192.150.187.43:80 > 141.142.228.5:59856"))
        .count();
    assert_eq!(lines.len(), 14, "{}", g.text);
    assert_eq!(from_inside, 7, "{}", g.text);
    for l in &lines {
        assert!(l.contains(" pass  unrelated "), "{l}");
    }
}
