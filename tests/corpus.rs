//! Every public capture in `../shared/corpus/` (written by other projects) replays without a
//! panic: readable files replay to the end with checksums preserved on every written packet;
//! malformed ones give a one-line error. Each is replayed in the client-side view with a
//! virtual server at the destination of its first TCP SYN and of its first UDP datagram, so
//! real sessions in it are translated. Skips, saying so, when the corpus is absent.

mod common;

/// Files that must be refused, and a word the error must contain.
const MALFORMED: &[(&str, &str)] = &[
    ("libpcap__pcap-invalid-version-1.pcap", "version"),
    ("suricata__tls_DER-incomplete-header.pcap", "packet 7"),
    ("tcpdump__mpls-traceroute.pcap", "link type 9"),
];

#[test]
fn every_corpus_capture_replays_or_is_refused_clearly() {
    let Some(corpus) = common::corpus() else {
        eprintln!("skipping: ../shared/corpus is absent");
        return;
    };
    let tmp = std::env::temp_dir().join(format!("lsnat-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
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
        common::assert_checksums_preserved(cap, &out, &g.log.forwarded);
        if g.text.contains(" xlat ") {
            translated_somewhere += 1;
        }
    }
    assert!(
        translated_somewhere >= 15,
        "only {translated_somewhere} corpus captures had translated packets"
    );
}
