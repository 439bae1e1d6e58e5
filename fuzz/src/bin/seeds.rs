//! Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ from the bundled
//! captures (captures/*.pcap with their configs, the per-algorithm and inline configs on the
//! captures whose addresses they share) and a few small files of the shared capture corpus
//! (`$LSNAT_CORPUS`, else ../shared/corpus beside the checkout).
//!
//! cargo run --release --manifest-path fuzz/Cargo.toml --bin seeds

use lsnat::capture::{Batch, CaptureDirection, CaptureReader};
use lsnat::link::{self, Payload};
use lsnat_fuzz::{config_index, configs, flags, push_chunk, root};
use std::path::{Path, PathBuf};

/// The largest seed for engine_packets (libFuzzer runs with -max_len=65536).
const MAX_SEED: usize = 60_000;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("corpus folder");
    std::fs::write(dir.join(name), bytes).expect("seed");
}

/// engine_packets seeds of one capture with config `cfg`: the capture cut into windows of at
/// most MAX_SEED bytes.
fn engine_seeds(dir: &Path, cap: &Path, cfg: usize, tag: &str) -> usize {
    let mut r = CaptureReader::open(cap).unwrap_or_else(|e| panic!("{e}"));
    let mut b = Batch::default();
    let mut seed = vec![cfg as u8];
    let mut last = None;
    let mut n = 0;
    let stem = cap.file_stem().unwrap().to_string_lossy().into_owned();
    while r.read_batch(&mut b, 1024).unwrap_or_else(|e| panic!("{e}")) {
        for i in 0..b.packets.len() {
            let m = b.packets[i];
            let frame = b.bytes(i);
            let dt = last.map_or(0, |l: u64| m.ts.0.saturating_sub(l));
            last = Some(m.ts.0);
            let view = link::locate(m.linktype, frame);
            match view.payload {
                Payload::Ipv4 { offset } if m.direction != CaptureDirection::Outbound => {
                    push_chunk(&mut seed, 0, dt, &frame[offset..]);
                }
                _ => push_chunk(&mut seed, flags::PASS_TIME, dt, &[]),
            }
            if seed.len() > MAX_SEED {
                write(dir, &format!("{stem}-{tag}-{n}"), &seed);
                n += 1;
                seed = vec![cfg as u8];
            }
        }
    }
    if seed.len() > 1 {
        write(dir, &format!("{stem}-{tag}-{n}"), &seed);
        n += 1;
    }
    n
}

fn main() {
    let r = root();
    let out = r.join("fuzz/corpus");
    let all = configs();
    println!("{} fixed configs", all.len());
    let mut caps: Vec<PathBuf> = std::fs::read_dir(r.join("captures"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    caps.sort();
    let ep = out.join("engine_packets");
    let rc = out.join("replay_capture");
    let mut n = 0;
    for cap in &caps {
        let own = config_index(&cap.with_extension("toml")).expect("a config beside");
        n += engine_seeds(&ep, cap, own, "own");
        let mut whole = vec![own as u8];
        whole.extend(std::fs::read(cap).unwrap());
        write(&rc, &cap.file_name().unwrap().to_string_lossy(), &whole);
        let stem = cap.file_stem().unwrap().to_string_lossy().into_owned();
        // Other configs on captures with the same addresses.
        let mut others: Vec<usize> = Vec::new();
        for dir in ["lsnat-router", "lsnat-client-side", "lsnat-pool"] {
            if stem == dir {
                let d = r.join("tests/algorithms").join(dir);
                for (i, c) in all.iter().enumerate() {
                    if c.path.starts_with(&d) {
                        others.push(i);
                    }
                }
            }
        }
        if stem == "lsnat-pool" {
            others.extend(config_index(&r.join("tests/pool/lsnat-pool-timeline.toml")));
        }
        let inline = |name: &str| config_index(&r.join("fuzz").join(name));
        match stem.as_str() {
            "lsnat-edges" | "lsnat-ftp" | "modes-lsnat-napt" | "lsnat-router" => {
                others.extend(inline("inline-stress-router.toml"));
            }
            _ => {}
        }
        if matches!(
            stem.as_str(),
            "lsnat-ftp-napt" | "lsnat-ftp" | "modes-ls-napt"
        ) {
            others.extend(inline("inline-stress-lsnapt-ftp.toml"));
        }
        if stem == "lsnat-client-side" {
            others.extend(inline("inline-stress-client-side-ftp.toml"));
        }
        for i in others {
            n += engine_seeds(&ep, cap, i, &format!("cfg{i}"));
            if std::fs::metadata(cap).unwrap().len() < 50_000 {
                let mut whole = vec![i as u8];
                whole.extend(std::fs::read(cap).unwrap());
                write(&rc, &format!("{stem}-cfg{i}"), &whole);
            }
        }
    }
    println!("{n} engine_packets seeds");
    // The shared corpus: small files, replayed with a config derived from them (the selector
    // past the fixed configs).
    let corpus = std::env::var_os("LSNAT_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| r.join("../shared/corpus"));
    if let Ok(rd) = std::fs::read_dir(&corpus) {
        let mut files: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "pcap" || e == "pcapng")
                    && std::fs::metadata(p).is_ok_and(|m| m.len() <= 40_000)
            })
            .collect();
        files.sort();
        for f in &files {
            let mut whole = vec![all.len() as u8];
            whole.extend(std::fs::read(f).unwrap());
            write(&rc, &f.file_name().unwrap().to_string_lossy(), &whole);
        }
        println!("{} shared corpus files", files.len());
    }
    // config_toml: every config's text.
    let ct = out.join("config_toml");
    for (i, c) in all.iter().enumerate() {
        if let Ok(text) = std::fs::read(&c.path) {
            write(&ct, &format!("cfg{i}"), &text);
        }
    }
    for (name, text) in lsnat_fuzz::INLINE {
        write(&ct, name, text.as_bytes());
    }
}
