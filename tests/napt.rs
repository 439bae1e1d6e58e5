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
