//! pcapng cases no bundled or corpus capture holds (draft-ietf-opsawg-pcapng): each test
//! derives its input from `captures/lsnat-router.pcap` (a real recording), written as pcapng
//! into a scratch folder with the blocks and options under test, replays it with the
//! capture's own config and reads the output block by block.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

/// The packets of `captures/lsnat-router.pcap`: timestamp (ns) and frame.
fn router_packets() -> Vec<(u64, Vec<u8>)> {
    common::read_all(&common::root().join("captures/lsnat-router.pcap"))
        .into_iter()
        .map(|(m, b)| (m.ts.nanos(), b))
        .collect()
}

/// A pcapng file under construction, one section at a time.
#[derive(Default)]
struct Ng {
    be: bool,
    out: Vec<u8>,
}

impl Ng {
    fn w16(&self, v: u16) -> [u8; 2] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn w32(&self, v: u32) -> [u8; 4] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn block(&mut self, type_: u32, body: &[u8]) -> &mut Ng {
        let mut body = body.to_vec();
        body.resize(body.len().next_multiple_of(4), 0);
        let total = self.w32(body.len() as u32 + 12);
        self.out.extend_from_slice(&self.w32(type_));
        self.out.extend_from_slice(&total);
        self.out.extend_from_slice(&body);
        self.out.extend_from_slice(&total);
        self
    }
    fn options(&self, opts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut o = Vec::new();
        for (code, value) in opts {
            o.extend_from_slice(&self.w16(*code));
            o.extend_from_slice(&self.w16(value.len() as u16));
            o.extend_from_slice(value);
            o.resize(o.len().next_multiple_of(4), 0);
        }
        if !opts.is_empty() {
            o.extend_from_slice(&[0; 4]);
        }
        o
    }
    fn shb(&mut self, be: bool, opts: &[(u16, Vec<u8>)]) -> &mut Ng {
        self.be = be;
        let mut body = self.w32(0x1a2b_3c4d).to_vec();
        body.extend_from_slice(&self.w16(1));
        body.extend_from_slice(&self.w16(0));
        body.extend_from_slice(&[0xff; 8]);
        body.extend(self.options(opts));
        self.block(0x0a0d_0d0a, &body)
    }
    /// An Ethernet interface with this snaplen and options.
    fn idb(&mut self, snaplen: u32, opts: &[(u16, Vec<u8>)]) -> &mut Ng {
        let mut body = self.w16(1).to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.w32(snaplen));
        body.extend(self.options(opts));
        self.block(1, &body)
    }
    fn epb(&mut self, iface: u32, units: u64, data: &[u8], opts: &[(u16, Vec<u8>)]) -> &mut Ng {
        let mut body = Vec::new();
        for v in [
            iface,
            (units >> 32) as u32,
            units as u32,
            data.len() as u32,
            data.len() as u32,
        ] {
            body.extend_from_slice(&self.w32(v));
        }
        body.extend_from_slice(data);
        body.resize(body.len().next_multiple_of(4), 0);
        body.extend(self.options(opts));
        self.block(6, &body)
    }
}

/// A block of a pcapng file: its byte order, type and body.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Block {
    be: bool,
    type_: u32,
    body: Vec<u8>,
}

/// Every block of a pcapng file.
fn blocks(path: &Path) -> Vec<Block> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let (mut at, mut be) = (0, false);
    while at + 12 <= bytes.len() {
        let r32 = |b: &[u8], be: bool| {
            let w = [b[0], b[1], b[2], b[3]];
            if be {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        let type_ = r32(&bytes[at..], be);
        if type_ == 0x0a0d_0d0a {
            be = bytes[at + 8] == 0x1a;
        }
        let len = r32(&bytes[at + 4..], be) as usize;
        assert_eq!(r32(&bytes[at + len - 4..], be) as usize, len, "trailer");
        out.push(Block {
            be,
            type_,
            body: bytes[at + 8..at + len - 4].to_vec(),
        });
        at += len;
    }
    assert_eq!(at, bytes.len(), "{}: whole blocks", path.display());
    out
}

/// Runs `lsnat replay INPUT -c captures/lsnat-router.toml -o OUTPUT -q EXTRA...`.
fn replay(input: &Path, output: &Path, extra: &[&str]) -> Output {
    common::lsnat()
        .args(["replay", "-q", "-c", "captures/lsnat-router.toml"])
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(extra)
        .output()
        .expect("runs")
}

/// [`replay`], which must succeed.
fn replay_ok(input: &Path, output: &Path, extra: &[&str]) {
    let o = replay(input, output, extra);
    assert!(
        o.status.success(),
        "{}: {}",
        input.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Writes `ng` to `dir/name`.
fn save(dir: &Path, name: &str, ng: &Ng) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, &ng.out).unwrap();
    p
}

/// The one line of error of a failed run, which exited with 2.
fn one_error_line(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("lsnat: error: "), "{err}");
    err
}

/// pcapng §4.2: `if_tsresol` finer than the nanoseconds lsnat keeps (2^-30 s and finer, 10^-10
/// s and finer) cannot be written back exactly, so it is refused in one line naming the file,
/// the interface block's byte offset and number and the resolution; 2^-29 s and 10^-9 s are
/// replayed. (No real capture uses such resolutions: the input is `lsnat-router.pcap` with
/// its timestamps written in the resolution under test.)
#[test]
fn timestamp_resolution_finer_than_a_nanosecond_is_refused_by_name() {
    let scratch = common::scratch();
    let packets = router_packets();
    let make = |resol: u8| {
        let mut ng = Ng::default();
        ng.shb(false, &[]).idb(262_144, &[(9, vec![resol])]);
        for (ns, frame) in &packets {
            let units = if resol & 0x80 != 0 {
                ((u128::from(*ns) << (resol & 0x7f)) / 1_000_000_000) as u64
            } else {
                (u128::from(*ns) * 10u128.pow(u32::from(resol)) / 1_000_000_000) as u64
            };
            ng.epb(0, units, frame, &[]);
        }
        save(scratch.path(), &format!("res-{resol:02x}.pcapng"), &ng)
    };
    for (resol, shown) in [(0xa0, "2^-32 s"), (0x9e, "2^-30 s"), (10, "10^-10 s")] {
        let input = make(resol);
        let out = scratch.path().join("out.pcapng");
        let err = one_error_line(&replay(&input, &out, &[]));
        for word in [
            &format!("res-{resol:02x}.pcapng: byte offset 28: "),
            "interface description block (interface 0)",
            &format!("timestamp resolution {shown}"),
            "finer than the 1 ns lsnat keeps",
        ] {
            assert!(err.contains(word), "{err} should say {word}");
        }
        assert!(!out.exists());
    }
    for resol in [0x9d, 9] {
        let input = make(resol);
        let out = scratch.path().join(format!("out-{resol:02x}.pcapng"));
        replay_ok(&input, &out, &[]);
        let times = |p: &Path| -> Vec<u64> {
            common::read_all(p)
                .iter()
                .map(|(m, _)| m.ts.nanos())
                .collect()
        };
        assert_eq!(times(&out), times(&input), "timestamps as read");
    }
}

/// Options of section and interface blocks are copied as bytes, never decoded: an
/// `if_description` in Latin-1 (not UTF-8, as pcapng §4.2 asks) does not stop the replay and
/// leaves as it came. (Derived from `lsnat-router.pcap`; no real capture has one.)
#[test]
fn interface_description_that_is_not_utf8_is_copied_as_bytes() {
    let scratch = common::scratch();
    let description = b"Connexion r\xe9seau".to_vec();
    let mut ng = Ng::default();
    ng.shb(false, &[(3, b"\xe9t\xe9".to_vec())])
        .idb(262_144, &[(9, vec![9]), (3, description)]);
    for (ns, frame) in router_packets() {
        ng.epb(0, ns, &frame, &[]);
    }
    let input = save(scratch.path(), "latin1.pcapng", &ng);
    let out = scratch.path().join("out.pcapng");
    replay_ok(&input, &out, &[]);
    let (a, b) = (blocks(&input), blocks(&out));
    assert_eq!(a[..2], b[..2], "section and interface blocks as they were");
    assert_eq!(a.len(), b.len());
}
