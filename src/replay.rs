//! The replay pipeline: capture in → link layer → engine → rewritten capture(s) and observers.
//!
//! A reader thread fills batches of packets ahead of the engine; the main thread runs the
//! engine over each packet in place, writes what the modelled router forwards, and hands every
//! packet's [`Disposition`] and every session [`Event`] to the observers (reports, goldens).
//! Batches go back to the reader for reuse, so nothing is allocated per packet.

use crate::capture::LinkType;
use crate::capture::{
    Batch, CaptureDirection, CaptureError, CaptureFormat, CaptureReader, CaptureWriter, PacketMeta,
};
use crate::engine::{
    self, EmitKind, Engine, EngineConfig, Event, Flow, Outcome, PoolEvent, Prefetch, Verdict, View,
};
use crate::forwarded_copies::ForwardedCopies;
use crate::link::{self, NotIpv4, Payload};
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

const BATCH_PACKETS: usize = 4096;

/// Batches a replay holds at most (about 1.5 MB each on the benchmark capture), and how many
/// may wait between the reader and the engine, and between the engine and the writer. The
/// writer waits for the disk (O_DIRECT writes), which stalls now and then for tens of
/// milliseconds; with room for 16 handled batches the engine goes on meanwhile, where with 2
/// it stopped. In 15 alternating pairs of 10M replays 24 batches were faster than 5 in 10,
/// by about 5 % on average (the VM's noise is larger than that, run to run). Memory: about
/// 2 MB a batch once used, so at most about 50 MB, whatever the capture's length.
const BATCHES: usize = 24;
const READ_AHEAD: usize = 8;
const WRITE_BEHIND: usize = 16;

/// How many packets ahead the engine is told of a packet's flow-table entry, and of its
/// session ([`Engine::prefetch`]): far enough for a cache miss to complete, near enough that
/// the line is still there when the packet comes.
const PREFETCH_LOOKUP: usize = 6;
const PREFETCH_SESSION: usize = 3;

/// What became of one captured packet.
#[derive(Clone, Copy, Debug)]
pub enum Disposition {
    /// A copy of an IPv4 packet as the capturing host sent it (SLL/SLL2 type 4, pcapng
    /// outbound): only arriving packets are replayed.
    OutgoingCopy,
    /// Not IPv4, whichever way it went: passed through unchanged.
    NotIpv4(NotIpv4),
    /// Shorter than its own link header: passed through unchanged.
    LinkTruncated,
    /// IPv4: what the engine decided.
    Engine(Outcome),
}

/// Receives the replay's packets and session events, in order.
pub trait Observer {
    /// One captured packet, after the engine handled it.
    fn packet(&mut self, _meta: &PacketMeta, _what: &Disposition) {}
    /// A session event, right after the packet (or timer) that caused it.
    fn event(&mut self, _event: &Event) {}
    /// A pool member transition (dead host detection, timeline), right after the packet (or
    /// timer) that caused it and that packet's session events.
    fn pool_event(&mut self, _event: &PoolEvent) {}
    /// A packet the engine emitted on its own, right after the packet that caused it (or, for
    /// held fragments dropped at a timeout or at the end, whenever that happened): for a held
    /// fragment's fate `origin` is the held packet as captured; for a packet the router
    /// originated, the packet it answers. `now` is the capture time it happened at.
    fn emitted(&mut self, _origin: &PacketMeta, _now: Timestamp, _kind: &EmitKind) {}
}

/// A packet written after packet `after` of a batch (or, `before`, just before it): a held
/// fragment released, or a packet the modelled router originated. Its bytes are a range of
/// [`Work::extra_data`].
#[derive(Clone, Copy, Debug)]
struct Extra {
    after: u32,
    /// Written before packet `after` rather than after it (only to a member's capture: a
    /// fragment the member sent before that packet, its first fragment).
    before: bool,
    meta: PacketMeta,
    at: u32,
    len: u32,
    /// Written to the rewritten capture (else only to the member's: what the member sent).
    to_capture: bool,
    /// Written to this member's capture.
    member: Option<u32>,
    /// Written as it was captured, with these options (a range of [`Work::extra_data`], in
    /// the byte order of the section it was captured in) and its packet block type (a member's
    /// early fragment, [`CaptureWriter::write_as_sent`]); else as a packet the router made.
    options: Option<(u32, u32)>,
}

/// What the replay keeps of a held packet until the engine decides its fate: its metadata
/// and its frame as captured (link header and datagram), in a reused buffer.
struct HeldPacket {
    meta: PacketMeta,
    l3: usize,
    frame: Vec<u8>,
    /// Its pcapng options as captured (see [`PacketMeta::options`]).
    options: Vec<u8>,
    /// The batch it came in (counted from 0) and its index there.
    batch: u64,
    index: usize,
}

/// Whose member capture a packet goes to, from the engine's outcome for it.
struct MemberCaptures {
    /// Pool members' addresses and numbers, sorted by address; empty when NAPT packets are
    /// not written to member captures.
    napt_hosts: Vec<([u8; 4], u32)>,
}

impl MemberCaptures {
    /// For `engine`'s members; NAPT sessions go to member captures when `napt` (the router
    /// view, where a member's own packets are captured as it sent them).
    fn new(engine: &Engine, napt: bool) -> Self {
        let mut napt_hosts: Vec<([u8; 4], u32)> = match napt {
            true => (0u32..)
                .zip(engine.members())
                .map(|(i, m)| (m.addr.octets(), i))
                .collect(),
            false => Vec::new(),
        };
        napt_hosts.sort_unstable();
        MemberCaptures { napt_hosts }
    }

    /// The member whose capture a packet with outcome `o` belongs to: the member of its
    /// load-shared session or, for a packet NAPT translated for a session an inside host
    /// started (RFC 2391 §3.2), that host when it is a pool member: the source of what it
    /// sent, the destination of what it is sent.
    fn member(&self, o: &Outcome) -> Option<u32> {
        if let Some(m) = o.member {
            return Some(m as u32);
        }
        if !o.is_napt() || self.napt_hosts.is_empty() {
            return None;
        }
        let host = match o.flow {
            Flow::Outbound => o.before.src,
            Flow::Inbound => o.after.dst,
            Flow::None => return None,
        };
        let k = self.napt_hosts.binary_search_by_key(&host, |h| h.0).ok()?;
        Some(self.napt_hosts[k].1)
    }
}

/// The link header for a packet the router sends back toward where `frame` came from: an
/// Ethernet header (with any VLAN tags) gets its MAC addresses swapped; a Linux cooked header
/// (SLL, SLL2) gets packet type 4, "sent by us"; raw IP has none; other headers (BSD null /
/// loopback) are kept as they are.
pub fn reply_link_header(linktype: LinkType, header: &[u8], out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(header);
    let h = &mut out[at..];
    match linktype {
        LinkType::ETHERNET if h.len() >= 12 => {
            let (dst, src) = h.split_at_mut(6);
            dst.swap_with_slice(&mut src[..6]);
        }
        LinkType::LINUX_SLL if h.len() >= 2 => h[..2].copy_from_slice(&4u16.to_be_bytes()),
        LinkType::LINUX_SLL2 if h.len() >= 11 => h[10] = 4,
        _ => {}
    }
}

/// What to replay and where to write.
#[derive(Clone, Debug)]
pub struct ReplayJob {
    /// The capture.
    pub input: PathBuf,
    /// Its configuration file (only to refuse overwriting it).
    pub config_path: PathBuf,
    /// The validated configuration.
    pub config: EngineConfig,
    /// Where to write the rewritten capture.
    pub output: Option<PathBuf>,
    /// A folder for one capture per pool member (what each server would see).
    pub member_dir: Option<PathBuf>,
}

/// What a replay counted, besides what observers saw.
#[derive(Clone, Debug, Default)]
pub struct ReplayTotals {
    /// Records read.
    pub packets: u64,
    /// First and last capture timestamps.
    pub first_ts: Option<Timestamp>,
    /// Last capture timestamp.
    pub last_ts: Option<Timestamp>,
    /// Packets the rewritten capture holds (forwarded, released and originated), whether or not
    /// it is written to a file.
    pub written: u64,
    /// Reader warnings (a file that ends inside a record, ...).
    pub warnings: Vec<String>,
    /// Timestamps earlier than one before them.
    pub timestamps_backwards: u64,
    /// Closed sessions unbound in their grace period to make room
    /// ([`crate::engine::EngineStats::grace_cut_short`]).
    pub grace_cut_short: u64,
    /// Pool members, index = `SessionRecord::member`.
    pub members: Vec<std::net::Ipv4Addr>,
    /// Virtual servers' names, index = the virtual server's index in events.
    pub virtual_servers: Vec<String>,
    /// Member captures written, by member address.
    pub member_captures: BTreeMap<String, PathBuf>,
}

impl ReplayTotals {
    /// Every warning of the replay, in the order the summary lists them: the reader's (a file
    /// cut inside a record, ...), then timestamps that went backwards. `replay`, `--compare`
    /// and `audit` print the same (with `-q`, to stderr).
    pub fn all_warnings(&self) -> Vec<String> {
        let mut out = self.warnings.clone();
        if self.timestamps_backwards > 0 {
            out.push(format!(
                "{} packets had a timestamp earlier than the one before; capture time was held",
                self.timestamps_backwards
            ));
        }
        out
    }
}

/// A replay that could not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The capture could not be read or an output written.
    #[error("{0}")]
    Capture(#[from] CaptureError),
    /// A refused request (same path for input and output, unsupported link type, ...).
    #[error("{0}")]
    Refused(String),
}

/// Refuses an output path that is one of the inputs (never write over an input file), or an
/// existing folder (found before any work, rather than when the finished file is renamed).
/// The output's partial file (`PATH.partial`, see [`crate::output_file`]) may not be an input
/// either. A path is the same file as an input when both resolve to one canonical path or,
/// when both exist, to one device and inode (a bind mount, a hard link).
pub fn refuse_overwrite(out: &Path, inputs: &[impl AsRef<Path>]) -> Result<(), ReplayError> {
    if out.is_dir() {
        return Err(ReplayError::Refused(format!(
            "{}: output path is a folder; give a file name",
            out.display()
        )));
    }
    let partial = crate::output_file::Destination::partial_path(out);
    for input in inputs.iter().map(AsRef::as_ref) {
        if same_file(out, input) {
            return Err(ReplayError::Refused(format!(
                "{}: output path is an input file; refusing to write over it",
                out.display()
            )));
        }
        if let Some(p) = partial.as_deref().filter(|p| same_file(p, input)) {
            return Err(ReplayError::Refused(format!(
                "{}: this output is written to {} first, which is an input file; refusing to \
                 write over it",
                out.display(),
                p.display()
            )));
        }
    }
    Ok(())
}

/// Every input a replay of `capture` with the config at `config` reads: the capture, the config
/// and the files it names ([`crate::config::input_files`]). No output may be one of them.
pub fn inputs(capture: &Path, config: &Path) -> Vec<PathBuf> {
    let mut v = vec![capture.to_path_buf()];
    v.extend(crate::config::input_files(config));
    v
}

/// Whether `a` and `b` name the same file: they lead to one path ([`resolve`]), or to one
/// device and inode.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (resolve(a), resolve(b));
    if let (Ok(x), Ok(y)) = (std::fs::metadata(&a), std::fs::metadata(&b))
        && (x.dev(), x.ino()) == (y.dev(), y.ino())
    {
        return true;
    }
    a == b
}

/// The absolute path `p` leads to once the outputs' folders are made: canonical where it
/// exists; a dangling symbolic link followed to where it points; below the deepest folder
/// that exists, the rest taken as written, `..` going back up (the folders created there are
/// plain folders, so `new/../x` is `x`).
pub fn resolve(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    for _ in 0..40 {
        if let Ok(c) = std::fs::canonicalize(&p) {
            return c;
        }
        if let Ok(target) = std::fs::read_link(&p) {
            p = p.parent().unwrap_or(Path::new("/")).join(target);
            continue;
        }
        let parts: Vec<Component> = p.components().collect();
        let Some((k, mut base)) = (1..parts.len()).rev().find_map(|k| {
            let prefix: PathBuf = parts[..k].iter().collect();
            std::fs::canonicalize(prefix).ok().map(|b| (k, b))
        }) else {
            return p;
        };
        for c in &parts[k..] {
            match c {
                Component::ParentDir => {
                    base.pop();
                }
                Component::Normal(n) => base.push(n),
                _ => {}
            }
        }
        if base == p {
            return p;
        }
        p = base;
    }
    p
}

/// Refuses one path given for two outputs (say `--output` and `--json`): each would be
/// written whole and renamed over the other. `outputs` pairs each path with the option that
/// named it. An output takes two names, its own and its partial file's (`PATH.partial`), and
/// no name may be taken twice. Paths are compared where they lead ([`resolve`]: symbolic links
/// followed, dangling ones too, as the outputs are written through them). A device or FIFO
/// (`/dev/null`) is written in place, not renamed over, so it may take several outputs.
pub fn refuse_shared_output(outputs: &[(&str, &Path)]) -> Result<(), ReplayError> {
    // Each output's names: its own, then its partial file's; none for one written in place.
    let names: Vec<Vec<PathBuf>> = outputs
        .iter()
        .map(
            |(_, p)| match crate::output_file::Destination::partial_path(p) {
                Some(partial) => vec![resolve(p), resolve(&partial)],
                None => Vec::new(),
            },
        )
        .collect();
    for (i, (a_flag, _)) in outputs.iter().enumerate() {
        for (j, (b_flag, b)) in outputs.iter().enumerate().skip(i + 1) {
            let msg = if !names[i].is_empty() && names[i].first() == names[j].first() {
                format!("given for both {a_flag} and {b_flag}")
            } else if names[i].iter().any(|n| names[j].contains(n)) {
                format!(
                    "{b_flag} and {a_flag} clash: an output is written to PATH.partial first, \
                     and one of them is the other's partial file"
                )
            } else {
                continue;
            };
            return Err(ReplayError::Refused(format!(
                "{}: {msg}; give each output its own path",
                b.display()
            )));
        }
    }
    Ok(())
}

/// Creates the folder `dir` (and its parents) for outputs, or says in one line why not. The
/// folders made are removed again if the run fails or is interrupted while they are empty
/// ([`crate::output_file::create_folder`]).
pub fn create_folder(dir: &Path) -> Result<(), ReplayError> {
    if dir.exists() && !dir.is_dir() {
        return Err(ReplayError::Refused(format!(
            "{}: exists and is not a folder",
            dir.display()
        )));
    }
    crate::output_file::create_folder(dir)
        .map_err(|e| ReplayError::Refused(format!("{}: cannot create folder: {e}", dir.display())))
}

/// What the writer thread does with one packet of a batch.
#[derive(Clone, Copy, Debug, Default)]
struct Fate {
    /// Written to the rewritten capture.
    forwarded: bool,
    /// Written to this member's capture.
    member: Option<u32>,
    /// For the member capture, the packet as it was before translation: a range of
    /// [`Work::originals`].
    original: Option<(u32, u32)>,
    /// The frame to write instead of the batch's, of another length (the FTP gateway): a
    /// range of [`Work::extra_data`].
    replaced: Option<(u32, u32)>,
}

/// A unit of work travelling reader → engine → writer → reader, reused (no per-packet
/// allocation).
#[derive(Default)]
struct Work {
    batch: Batch,
    /// Each packet's link header, read on the reader thread.
    views: Vec<link::LinkView>,
    /// Each IPv4 packet's checksum errors as it arrived and its key's hash
    /// ([`engine::precompute`]), computed on the reader thread while the bytes are in its cache.
    pre: Vec<engine::Precomputed>,
    fates: Vec<Fate>,
    originals: Vec<u8>,
    extras: Vec<Extra>,
    extra_data: Vec<u8>,
    /// Set by the writer: how far the output lags behind the input after this batch, in bytes
    /// (see [`CaptureReader::set_lag`]).
    lag: Option<u64>,
}

/// What the reader thread works out of a packet before the engine sees it, as the packet is
/// read: its link header and, for IPv4, its checksum errors and key hash (the part of header
/// parsing that reads every byte of the packet, and the part the engine needs packets ahead).
fn prepare(
    views: &mut Vec<link::LinkView>,
    pre: &mut Vec<engine::Precomputed>,
    frame: &[u8],
    meta: &PacketMeta,
) {
    let view = link::locate(meta.linktype, frame);
    views.push(view);
    pre.push(match view.payload {
        Payload::Ipv4 { offset } => engine::precompute(&frame[offset..]),
        _ => engine::Precomputed::default(),
    });
}

/// Shows `copies` the packets of a batch just read (see [`ForwardedCopies`]): a pass of its
/// own over the first batches, which leaves [`prepare`], run for every packet, as it is.
#[inline(never)]
fn look_for_copies(copies: &mut ForwardedCopies, batch: &Batch, views: &[link::LinkView]) {
    for (i, (meta, view)) in batch.packets.iter().zip(views).enumerate() {
        let datagram = match view.payload {
            Payload::Ipv4 { offset } => batch.bytes(i).get(offset..),
            _ => None,
        };
        let direction = match meta.direction {
            CaptureDirection::Unknown => view.direction,
            known => known,
        };
        copies.see(meta.index, direction, datagram);
    }
}

/// The writer thread's outputs.
struct Outputs {
    capture: Option<CaptureWriter>,
    members: Vec<CaptureWriter>,
    written: u64,
    /// Packets left out of a capture ([`placed`]).
    left_out: u64,
}

/// `m`, a packet written next to packet `by` (a released fragment after its first fragment, a
/// member's early fragment before it), as writer `w` can write it: on its own interface when
/// `w`'s current section describes it; else (it was held from an earlier pcapng section) on
/// `by`'s interface when that has the same link type and FCS length; else `None`, left out.
fn placed(w: &CaptureWriter, m: &PacketMeta, by: &PacketMeta) -> Option<PacketMeta> {
    if w.describes(m.interface) {
        return Some(*m);
    }
    ((m.linktype, m.fcs_len) == (by.linktype, by.fcs_len)).then_some(PacketMeta {
        interface: by.interface,
        ..*m
    })
}

impl Outputs {
    fn write(&mut self, w: &mut Work) -> Result<(), CaptureError> {
        if let Some(c) = self.capture.as_mut() {
            c.begin_batch(&w.batch)?;
        }
        for m in &mut self.members {
            m.begin_batch(&w.batch)?;
        }
        // Every packet forwarded and nothing added: the batch goes out as a whole.
        let whole =
            w.extras.is_empty() && w.fates.iter().all(|f| f.forwarded && f.replaced.is_none());
        let mut capture = self.capture.as_mut();
        if whole && let Some(c) = capture.take() {
            c.write_all(&mut w.batch)?;
        }
        // `written` counts what the rewritten capture holds, whether or not it is written to a
        // file: the forwarded packets and what the router sent besides.
        self.written += w.fates.iter().filter(|f| f.forwarded).count() as u64;
        self.written += w
            .extras
            .iter()
            .filter(|x| x.to_capture && !x.before)
            .count() as u64;
        let mut next_extra = 0;
        for (i, f) in w.fates.iter().enumerate() {
            // The blocks that stood before packet `i` (pcapng), also when it is not written.
            if let Some(c) = capture.as_mut() {
                c.blocks_before(&w.batch, i)?;
            }
            for m in &mut self.members {
                m.blocks_before(&w.batch, i)?;
            }
            // What was made of packet `i` (they follow each other in `extras`).
            let first_extra = next_extra;
            while w
                .extras
                .get(next_extra)
                .is_some_and(|x| x.after as usize == i)
            {
                next_extra += 1;
            }
            let extras = &w.extras[first_extra..next_extra];
            let by = &w.batch.packets[i];
            // A member's fragments that came before their first (packet `i`), in its capture.
            for x in extras.iter().filter(|x| x.before) {
                let bytes = &w.extra_data[x.at as usize..(x.at + x.len) as usize];
                if let Some(m) = x.member.and_then(|m| self.members.get_mut(m as usize)) {
                    match (placed(m, &x.meta, by), x.options) {
                        (Some(meta), Some((o, l))) => {
                            let options = &w.extra_data[o as usize..(o + l) as usize];
                            m.write_as_sent(&meta, x.meta.interface, bytes, options)?
                        }
                        (Some(meta), None) => m.write_bytes(&meta, bytes)?,
                        (None, _) => self.left_out += 1,
                    }
                }
            }
            let replaced = f
                .replaced
                .map(|(o, l)| &w.extra_data[o as usize..(o + l) as usize]);
            if f.forwarded
                && let Some(c) = capture.as_mut()
            {
                match replaced {
                    Some(frame) => c.write_resized(&w.batch, i, frame)?,
                    None => c.write(&w.batch, i)?,
                }
            }
            if let Some(m) = f.member.and_then(|m| self.members.get_mut(m as usize)) {
                match (f.original, replaced) {
                    (Some((o, l)), _) => m.write_as_captured(
                        &w.batch,
                        i,
                        &w.originals[o as usize..(o + l) as usize],
                    )?,
                    (None, Some(frame)) => m.write_resized(&w.batch, i, frame)?,
                    (None, None) => m.write(&w.batch, i)?,
                }
            }
            // What the router sent right after packet `i` (released fragments, ICMP time
            // exceeded), in the same order in every capture.
            for x in extras.iter().filter(|x| !x.before) {
                let bytes = &w.extra_data[x.at as usize..(x.at + x.len) as usize];
                if x.to_capture
                    && let Some(c) = capture.as_mut()
                {
                    match placed(c, &x.meta, by) {
                        Some(meta) => c.write_bytes(&meta, bytes)?,
                        None => {
                            self.left_out += 1;
                            self.written -= 1;
                        }
                    }
                }
                if let Some(m) = x.member.and_then(|m| self.members.get_mut(m as usize)) {
                    match placed(m, &x.meta, by) {
                        Some(meta) => m.write_bytes(&meta, bytes)?,
                        None => self.left_out += 1,
                    }
                }
            }
        }
        if let Some(c) = capture {
            c.end_batch(&w.batch)?;
        }
        for m in &mut self.members {
            m.end_batch(&w.batch)?;
        }
        if let Some(c) = &self.capture {
            w.lag = w
                .batch
                .end_offset()
                .map(|end| end.wrapping_sub(c.position()));
        }
        Ok(())
    }
}

/// Packet `i` of `batch` (its datagram at `offset`), whose datagram the FTP gateway made
/// `delta` bytes longer (`datagram` is the one to forward): its frame with that datagram
/// between its link header and its trailer (an Ethernet FCS kept as right or as wrong as it
/// came), kept in `extra_data` and written in the packet's place ([`Fate::replaced`]), to the
/// rewritten capture and to a member's capture that gets the packet translated (the router
/// view's outbound packets go there as captured).
fn resized_frame(
    batch: &Batch,
    i: usize,
    offset: usize,
    (datagram, delta): (&[u8], i16),
    fate: &mut Fate,
    extra_data: &mut Vec<u8>,
) {
    let meta = batch.packets[i];
    let frame = batch.bytes(i);
    let old_end = offset + (datagram.len() as isize - isize::from(delta)) as usize;
    let at = extra_data.len();
    extra_data.extend_from_slice(&frame[..offset]);
    extra_data.extend_from_slice(datagram);
    extra_data.extend_from_slice(frame.get(old_end..).unwrap_or_default());
    if meta.fcs_len > 0
        && meta.len == meta.orig_len
        && let Some(e) = link::fcs_error(frame)
    {
        // The FCS ends the trailer: over the new bytes, wrong by what it was.
        link::set_fcs(&mut extra_data[at..], e);
    }
    fate.replaced = Some((at as u32, (extra_data.len() - at) as u32));
}

/// Tells the engine of packet `j` of the batch ahead of time (see [`Engine::prefetch`]), and
/// at the first stage starts loading the packet's headers, which the engine reads and
/// rewrites (the reader thread wrote them, on the other core).
#[inline]
fn hint(batch: &Batch, work: (&Engine, &[engine::Precomputed]), j: usize, stage: Prefetch) {
    let (engine, pre) = work;
    let Some(p) = pre.get(j) else {
        return;
    };
    engine.prefetch(p, stage);
    if stage == Prefetch::Lookup {
        let at = batch.packets[j].offset as usize;
        if let Some(headers) = batch.data.get(at..at + 128) {
            engine::prefetch_bytes(headers);
        }
    }
}

/// Spawns a scoped thread with a name (for profilers and `top -H`). Like `Scope::spawn`, it
/// panics only if the system cannot start a thread at all.
fn spawn_named<'scope, 'env, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    name: &str,
    f: impl FnOnce() -> T + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, T> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn_scoped(scope, f)
        .unwrap_or_else(|e| panic!("cannot start the {name} thread: {e}"))
}

fn take_held(held: &mut Vec<(u64, HeldPacket)>, hold: u64) -> Option<HeldPacket> {
    let i = held.iter().position(|(h, _)| *h == hold)?;
    Some(held.remove(i).1)
}

/// `member-ADDR.pcap` or `.pcapng`, as the capture's format (not its name) is.
fn member_path(dir: &Path, ng: bool, addr: std::net::Ipv4Addr) -> PathBuf {
    let ext = if ng { "pcapng" } else { "pcap" };
    dir.join(format!("member-{addr}.{ext}"))
}

/// The member captures `job` writes (`--members-dir`), one per pool member, in pool order;
/// none without a members folder.
pub fn member_paths(job: &ReplayJob) -> Vec<PathBuf> {
    let Some(dir) = &job.member_dir else {
        return Vec::new();
    };
    let ng = crate::capture::starts_as_pcapng(&job.input);
    Engine::new(job.config.clone())
        .members()
        .iter()
        .map(|m| member_path(dir, ng, m.addr))
        .collect()
}

/// Hands one session event to every observer.
fn to_observers(observers: &mut [&mut dyn Observer], ev: &Event) {
    for ob in observers.iter_mut() {
        ob.event(ev);
    }
}

/// Hands the session events, then the pool events, the engine has queued to every observer.
fn drain_events(engine: &mut Engine, observers: &mut [&mut dyn Observer]) {
    engine.drain_events(|ev| to_observers(observers, ev));
    while let Some(ev) = engine.poll_pool_event() {
        for ob in observers.iter_mut() {
            ob.pool_event(&ev);
        }
    }
}

/// Runs a replay, feeding `observers`. Three threads: the reader fills batches, this thread
/// runs the engine and the observers, the writer writes the capture(s).
pub fn run(
    job: &ReplayJob,
    observers: &mut [&mut dyn Observer],
) -> Result<ReplayTotals, ReplayError> {
    run_in_batches(job, observers, BATCH_PACKETS)
}

/// [`run`] with batches of at most `batch_packets` packets (at least 1) instead of 4096: for
/// the tests that check that no output depends on where one batch ends and the next begins
/// (the reader, the writer's in-place writes and the packets written beside a batch's own all
/// work batch by batch). The one documented exception is a member's capture with a fragment
/// the member sent in an earlier batch than its first fragment (README, "Reports").
#[doc(hidden)]
pub fn run_in_batches(
    job: &ReplayJob,
    observers: &mut [&mut dyn Observer],
    batch_packets: usize,
) -> Result<ReplayTotals, ReplayError> {
    let batch_packets = batch_packets.max(1);
    // Only a replay with outputs needs its inputs listed (audits and comparisons replay many
    // times without any).
    let inputs = match job.output.is_some() || job.member_dir.is_some() {
        true => inputs(&job.input, &job.config_path),
        false => Vec::new(),
    };
    if let Some(out) = &job.output {
        refuse_overwrite(out, &inputs)?;
    }
    let mut reader = CaptureReader::open(&job.input)?;
    let format = reader.format().clone();
    // A pcap's link type is the header's, whether or not any record follows.
    if let CaptureFormat::Pcap {
        linktype, fcs_len, ..
    } = format
    {
        link::check_supported(linktype)
            .and_then(|()| link::check_fcs(linktype, fcs_len))
            .map_err(|m| {
                ReplayError::Refused(format!(
                    "{}: byte offset 20 (link type field): {m}",
                    job.input.display()
                ))
            })?;
    }
    let mut engine = Engine::new(job.config.clone());
    let mut outputs = Outputs {
        capture: None,
        members: Vec::new(),
        written: 0,
        left_out: 0,
    };
    // Every output is checked before any is created: none may be an input, nor share a path.
    if let Some(dir) = &job.member_dir {
        create_folder(dir)?;
    }
    let member_paths = member_paths(job);
    for p in &member_paths {
        refuse_overwrite(p, &inputs)?;
    }
    let named: Vec<(&str, &Path)> = (job.output.iter().map(|p| ("--output", p.as_path())))
        .chain(member_paths.iter().map(|p| ("--members-dir", p.as_path())))
        .collect();
    refuse_shared_output(&named)?;
    if let Some(p) = &job.output {
        outputs.capture = Some(CaptureWriter::create(p, &format)?);
    }
    for p in &member_paths {
        outputs.members.push(CaptureWriter::create(p, &format)?);
    }
    let member_captures = !outputs.members.is_empty();
    let router_view = job.config.view == View::Router;
    let keep_originals = member_captures && router_view;
    let members_of = MemberCaptures::new(&engine, keep_originals);

    let (full_tx, full_rx) = mpsc::sync_channel::<Result<Work, CaptureError>>(READ_AHEAD);
    let (done_tx, done_rx) = mpsc::sync_channel::<Work>(WRITE_BEHIND);
    let (empty_tx, empty_rx) = mpsc::channel::<Work>();
    for _ in 0..BATCHES {
        let _ = empty_tx.send(Work::default());
    }
    let mut totals = ReplayTotals::default();
    // Held fragments by hold number, and reused buffers for them.
    let mut held: Vec<(u64, HeldPacket)> = Vec::new();
    let mut held_spare: Vec<Vec<u8>> = Vec::new();
    let result = std::thread::scope(|scope| -> Result<(), ReplayError> {
        let reader_thread = spawn_named(scope, "lsnat-reader", move || {
            let mut copies = ForwardedCopies::default();
            while let Ok(mut work) = empty_rx.recv() {
                if let Some(lag) = work.lag.take() {
                    reader.set_lag(lag);
                }
                work.fates.clear();
                work.originals.clear();
                work.extras.clear();
                work.extra_data.clear();
                let Work {
                    batch, views, pre, ..
                } = &mut work;
                views.clear();
                pre.clear();
                // Room for a whole batch at once, rather than a vector grown (and copied) by
                // doublings the first time each of the BATCHES is filled (the reader does the
                // same for the batch's packet records).
                views.reserve(batch_packets);
                pre.reserve(batch_packets);
                let read = reader.read_batch_with(batch, batch_packets, |frame, meta| {
                    prepare(views, pre, frame, meta)
                });
                if copies.looking() {
                    look_for_copies(&mut copies, batch, views);
                }
                match read {
                    Ok(true) => {
                        if full_tx.send(Ok(work)).is_err() {
                            break;
                        }
                    }
                    Ok(false) => break,
                    Err(e) => {
                        let _ = full_tx.send(Err(e));
                        break;
                    }
                }
            }
            let mut warnings = reader.warnings().to_vec();
            warnings.extend(copies.warning());
            warnings
        });
        let outputs = &mut outputs;
        let writer_thread = spawn_named(
            scope,
            "lsnat-writer",
            move || -> Result<(), CaptureError> {
                for mut work in done_rx.iter() {
                    outputs.write(&mut work)?;
                    let _ = empty_tx.send(work);
                }
                Ok(())
            },
        );
        let mut checked_links = Vec::new();
        let mut last_link = None;
        let engine_result = (|| -> Result<(), ReplayError> {
            for (batch_no, work) in (0u64..).zip(full_rx.iter()) {
                let mut work = work?;
                let Work {
                    batch,
                    views,
                    pre,
                    fates,
                    originals,
                    extras,
                    extra_data,
                    ..
                } = &mut work;
                fates.reserve(batch.packets.len());
                for i in 0..batch.packets.len() {
                    hint(batch, (&engine, pre), i + PREFETCH_LOOKUP, Prefetch::Lookup);
                    hint(
                        batch,
                        (&engine, pre),
                        i + PREFETCH_SESSION,
                        Prefetch::Session,
                    );
                    let meta = batch.packets[i];
                    if last_link != Some((meta.linktype, meta.fcs_len))
                        && !checked_links.contains(&(meta.linktype, meta.fcs_len))
                    {
                        link::check_supported(meta.linktype)
                            .and_then(|()| link::check_fcs(meta.linktype, meta.fcs_len))
                            .map_err(|m| {
                                ReplayError::Refused(format!(
                                    "{}: packet {}: {m}",
                                    job.input.display(),
                                    meta.index
                                ))
                            })?;
                        checked_links.push((meta.linktype, meta.fcs_len));
                    }
                    last_link = Some((meta.linktype, meta.fcs_len));
                    totals.packets += 1;
                    totals.first_ts.get_or_insert(meta.ts);
                    totals.last_ts = Some(meta.ts);
                    let (_, frame) = batch.bytes_mut(i);
                    let view_l = views[i];
                    let mut fate = Fate::default();
                    // Only IPv4 packets are forwarded copies; a frame of another kind the
                    // capturing host sent (its own ARP), or one too short to tell, passes like
                    // any other non-IPv4 frame. A client-side capture holds one side of the
                    // router, so no forwarded copies: what the host in front of the members
                    // sent are the VIP's replies, and are replayed.
                    let what = if router_view
                        && (meta.direction == CaptureDirection::Outbound
                            || view_l.direction == CaptureDirection::Outbound)
                        && matches!(view_l.payload, Payload::Ipv4 { .. })
                    {
                        Disposition::OutgoingCopy
                    } else {
                        match view_l.payload {
                            Payload::NotIpv4(k) => Disposition::NotIpv4(k),
                            Payload::Truncated => Disposition::LinkTruncated,
                            Payload::Ipv4 { offset } => {
                                let saved = keep_originals.then(|| {
                                    let at = originals.len() as u32;
                                    originals.extend_from_slice(frame);
                                    (at, frame.len() as u32)
                                });
                                // A frame that ends with its FCS keeps it as right (or as
                                // wrong) as it came when its bytes are rewritten.
                                let fcs_error = (meta.fcs_len > 0 && meta.len == meta.orig_len)
                                    .then(|| link::fcs_error(frame))
                                    .flatten();
                                let o = engine.handle_precomputed(
                                    meta.ts,
                                    &mut frame[offset..],
                                    &pre[i],
                                );
                                if let Some(e) = fcs_error
                                    && o.verdict == Verdict::Translated
                                {
                                    link::set_fcs(frame, e);
                                }
                                if let Verdict::Held(h) = o.verdict {
                                    // The engine leaves a packet it holds untouched.
                                    let mut copy = held_spare.pop().unwrap_or_default();
                                    copy.clear();
                                    copy.extend_from_slice(frame);
                                    held.push((
                                        h,
                                        HeldPacket {
                                            meta,
                                            l3: offset,
                                            frame: copy,
                                            options: Vec::new(),
                                            batch: batch_no,
                                            index: i,
                                        },
                                    ));
                                }
                                if member_captures && let Some(m) = members_of.member(&o) {
                                    fate.member = Some(m);
                                    if o.flow == Flow::Outbound {
                                        fate.original = saved;
                                    }
                                }
                                if saved.is_some() && fate.original.is_none() {
                                    originals.truncate(saved.map_or(0, |s| s.0 as usize));
                                }
                                Disposition::Engine(o)
                            }
                        }
                    };
                    // A held packet's options, kept with it (its batch is reused meanwhile).
                    if let Disposition::Engine(o) = &what
                        && let Verdict::Held(h) = o.verdict
                        && let Some((_, p)) = held.iter_mut().rev().find(|(k, _)| *k == h)
                    {
                        let r = meta.options;
                        let all = batch.options.get(r.at as usize..(r.at + r.len) as usize);
                        p.options.extend_from_slice(all.unwrap_or_default());
                    }
                    if let Disposition::Engine(o) = &what
                        && o.verdict == Verdict::Translated
                    {
                        batch.packets[i].rewritten = true;
                    }
                    // Capture time runs with every frame, IPv4 or not: the first starts the
                    // clock, later ones fire the timers due by them, so a session whose
                    // timeout passed before the last frame is never reported open at the end.
                    if !matches!(what, Disposition::Engine(_)) {
                        engine.pass_time(meta.ts);
                    }
                    fate.forwarded = match what {
                        Disposition::OutgoingCopy => false,
                        Disposition::Engine(o) => {
                            !matches!(o.verdict, Verdict::Drop(_) | Verdict::Held(_))
                        }
                        _ => true,
                    };
                    // The FTP gateway changed the datagram's length: the frame goes out with
                    // the engine's datagram between its link header and trailer, in its place.
                    if let (Disposition::Engine(o), Payload::Ipv4 { offset }) =
                        (&what, view_l.payload)
                        && o.alg.resized != 0
                    {
                        resized_frame(
                            batch,
                            i,
                            offset,
                            (engine.resized(), o.alg.resized),
                            &mut fate,
                            extra_data,
                        );
                    }
                    fates.push(fate);
                    for ob in observers.iter_mut() {
                        ob.packet(&meta, &what);
                    }
                    let now = meta.ts;
                    let trigger_l3 = match (&what, view_l.payload) {
                        (Disposition::Engine(_), Payload::Ipv4 { offset }) => offset,
                        _ => 0,
                    };
                    while let Some(e) = engine.poll_emitted() {
                        let after = i as u32;
                        match e.kind {
                            EmitKind::HeldFragment { hold, outcome } => {
                                let Some(h) = take_held(&mut held, hold) else {
                                    continue;
                                };
                                for ob in observers.iter_mut() {
                                    ob.emitted(&h.meta, now, &e.kind);
                                }
                                if !e.bytes.is_empty() {
                                    // The frame as it came, its datagram as the router sends
                                    // it: its own link header, and its own trailer (padding,
                                    // FCS), which the engine does not hold.
                                    let at = extra_data.len() as u32;
                                    extra_data.extend_from_slice(&h.frame[..h.l3]);
                                    extra_data.extend_from_slice(e.bytes);
                                    let trailer = h.frame.get(h.l3 + e.bytes.len()..);
                                    extra_data.extend_from_slice(trailer.unwrap_or_default());
                                    let fcs = h.meta.fcs_len > 0 && h.meta.len == h.meta.orig_len;
                                    if let Some(err) =
                                        fcs.then(|| link::fcs_error(&h.frame)).flatten()
                                    {
                                        link::set_fcs(&mut extra_data[at as usize..], err);
                                    }
                                    let len = extra_data.len() as u32 - at;
                                    // Written when the router forwards it: at the releasing
                                    // packet's time, with its own link header.
                                    let meta = PacketMeta {
                                        ts: now,
                                        len,
                                        ..h.meta
                                    };
                                    let member =
                                        members_of.member(&outcome).filter(|_| member_captures);
                                    let member = match (member, outcome.flow, keep_originals) {
                                        (Some(m), Flow::Outbound, original) => {
                                            // What the member sent, at its own time and place
                                            // (the release time is the router's): in the
                                            // router view the fragment as captured; in the
                                            // client-side view, where the capture has it from
                                            // the VIP, the fragment translated back to it.
                                            // Still in this batch, it is written where it
                                            // came (the router left it out there); else just
                                            // before its first fragment, which came after it.
                                            if h.batch == batch_no
                                                && h.index < fates.len()
                                                && batch.bytes(h.index).len() == len as usize
                                            {
                                                if !original {
                                                    let own = at as usize..(at + len) as usize;
                                                    let (_, f) = batch.bytes_mut(h.index);
                                                    f.copy_from_slice(&extra_data[own]);
                                                }
                                                fates[h.index].member = Some(m);
                                            } else {
                                                let (o, n) = match original {
                                                    true => {
                                                        let o = extra_data.len() as u32;
                                                        extra_data.extend_from_slice(&h.frame);
                                                        (o, h.frame.len() as u32)
                                                    }
                                                    false => (at, len),
                                                };
                                                let opts = extra_data.len() as u32;
                                                extra_data.extend_from_slice(&h.options);
                                                extras.push(Extra {
                                                    after,
                                                    before: true,
                                                    meta: h.meta,
                                                    at: o,
                                                    len: n,
                                                    to_capture: false,
                                                    member: Some(m),
                                                    options: Some((opts, h.options.len() as u32)),
                                                });
                                            }
                                            None
                                        }
                                        (m, _, _) => m,
                                    };
                                    extras.push(Extra {
                                        after,
                                        before: false,
                                        meta,
                                        at,
                                        len,
                                        to_capture: true,
                                        member,
                                        options: None,
                                    });
                                }
                                held_spare.push(h.frame);
                            }
                            EmitKind::IcmpTimeExceeded { .. } => {
                                for ob in observers.iter_mut() {
                                    ob.emitted(&meta, now, &e.kind);
                                }
                                let at = extra_data.len() as u32;
                                reply_link_header(
                                    meta.linktype,
                                    &batch.bytes(i)[..trigger_l3],
                                    extra_data,
                                );
                                extra_data.extend_from_slice(e.bytes);
                                if meta.fcs_len > 0 {
                                    // The link says its frames end with an FCS: a right one.
                                    link::push_fcs(extra_data, at as usize);
                                }
                                let len = extra_data.len() as u32 - at;
                                let meta = PacketMeta {
                                    ts: now,
                                    len,
                                    orig_len: len,
                                    direction: CaptureDirection::Outbound,
                                    ..meta
                                };
                                extras.push(Extra {
                                    after,
                                    before: false,
                                    meta,
                                    at,
                                    len,
                                    to_capture: true,
                                    member: None,
                                    options: None,
                                });
                            }
                        }
                    }
                    drain_events(&mut engine, observers);
                }
                if done_tx.send(work).is_err() {
                    break; // the writer failed; its error is reported below
                }
            }
            Ok(())
        })();
        drop(done_tx);
        drop(full_rx);
        let written = writer_thread
            .join()
            .map_err(|_| ReplayError::Refused("the capture writer thread failed".into()))?;
        let warnings = reader_thread
            .join()
            .map_err(|_| ReplayError::Refused("the capture reader thread failed".into()))?;
        engine_result?;
        written?;
        totals.warnings = warnings;
        Ok(())
    });
    result?;
    let end = totals.last_ts.unwrap_or_default();
    engine.finish_fragments(end);
    while let Some(e) = engine.poll_emitted() {
        if let EmitKind::HeldFragment { hold, .. } = e.kind
            && let Some(h) = take_held(&mut held, hold)
        {
            for ob in observers.iter_mut() {
                ob.emitted(&h.meta, end, &e.kind);
            }
        }
    }
    drain_events(&mut engine, observers);
    engine.finish_sessions(end, Some(&mut |ev: &Event| to_observers(observers, ev)));
    drain_events(&mut engine, observers);
    totals.timestamps_backwards = engine.stats().timestamps_backwards;
    totals.grace_cut_short = engine.stats().grace_cut_short;
    totals.members = engine.members().iter().map(|m| m.addr).collect();
    totals.virtual_servers = job
        .config
        .virtual_servers
        .iter()
        .map(|v| v.name.clone())
        .collect();
    totals.written = outputs.written;
    if outputs.left_out > 0 {
        totals.warnings.push(format!(
            "{} packet(s) the router sent left out of the output capture(s): a fragment held from \
             an earlier pcapng section, released after a packet on an interface of another link \
             type or FCS length",
            outputs.left_out
        ));
    }
    // Should a member capture fail, the outputs finished before it go too.
    let mut committed = crate::output_file::Committed::default();
    if let (Some(w), Some(p)) = (outputs.capture.take(), &job.output) {
        w.finish()?;
        committed.add(p);
    }
    // The member captures, in the pool order their paths were named in before the run (the
    // members a timeline adds later have none).
    let members = engine.members().iter().zip(&member_paths);
    for ((m, p), w) in members.zip(std::mem::take(&mut outputs.members)) {
        w.finish()?;
        committed.add(p);
        totals.member_captures.insert(m.addr.to_string(), p.clone());
    }
    committed.keep();
    Ok(totals)
}
