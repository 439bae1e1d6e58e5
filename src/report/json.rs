//! The JSON report (schema `lsnat-replay/1`, documented in README.md): written as the replay
//! runs, one session record per line as each session is unbound, so memory does not grow with
//! the capture. The lines are formatted on a thread of their own, in batches of sessions, so the
//! replay's thread only collects records; the sessions still open at the end, reported when
//! nothing else is left to do, are formatted on two (`Helper`). The file is an
//! [`OutputFile`] (`PATH.partial`, renamed to `PATH` when complete).

use super::Summary;
use crate::engine::{
    AffinityOutcome, Algorithm, Decision, DecisionEntry, EngineConfig, Event, PoolEvent,
    SessionRecord, Tuple,
};
use crate::output_file::OutputFile;
use crate::replay::{Observer, ReplayTotals};
use crate::wire::proto;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

/// The schema identifier written at the top of every report.
pub const SCHEMA: &str = "lsnat-replay/1";

/// A tuple in JSON.
#[derive(Serialize)]
pub struct TupleJson {
    /// Source address.
    pub src: Ipv4Addr,
    /// Source port (ICMP: query identifier).
    pub src_port: u16,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Destination port.
    pub dst_port: u16,
}

impl From<Tuple> for TupleJson {
    fn from(t: Tuple) -> Self {
        TupleJson {
            src: t.src.into(),
            src_port: t.sport,
            dst: t.dst.into(),
            dst_port: t.dport,
        }
    }
}

/// One session, modelled on Zeek's conn.log.
#[derive(Serialize)]
pub struct SessionJson<'a> {
    /// Session number (binding order).
    pub id: u64,
    /// First packet, seconds since the epoch.
    pub ts: f64,
    /// Protocol name.
    pub proto: String,
    /// Virtual server name.
    pub virtual_server: &'a str,
    /// Client address.
    pub orig_h: Ipv4Addr,
    /// Client port (ICMP: query identifier).
    pub orig_p: u16,
    /// Virtual server address.
    pub resp_h: Ipv4Addr,
    /// Service port.
    pub resp_p: u16,
    /// Pool member the session was bound to.
    pub member: Ipv4Addr,
    /// The session as translated toward the member.
    pub translated: TupleJson,
    /// First packet (ns since the epoch).
    pub first_ts_ns: u64,
    /// Last packet.
    pub last_ts_ns: u64,
    /// First packet from the member.
    pub first_reply_ts_ns: Option<u64>,
    /// When it was unbound.
    pub end_ts_ns: u64,
    /// Last minus first packet, seconds.
    pub duration: f64,
    /// Packets client → member.
    pub orig_pkts: u64,
    /// IP bytes client → member.
    pub orig_ip_bytes: u64,
    /// Packets member → client.
    pub resp_pkts: u64,
    /// IP bytes member → client.
    pub resp_ip_bytes: u64,
    /// Zeek-style history letters.
    pub history: &'a str,
    /// fin, rst, idle-timeout, retired, open-at-end.
    pub end: &'static str,
    /// Packets whose input checksum was wrong.
    pub checksum_faults: u64,
    /// An FTP data connection: the id of its control session, whose member it was bound to
    /// by the FTP gateway (absent for every other session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ftp_data_of: Option<u64>,
    /// The load-share algorithm that chose the member.
    pub algorithm: Option<&'static str>,
    /// Why this member: every candidate's figure, the chosen one, affinity.
    pub decision: Option<DecisionJson>,
}

/// A figure in JSON: a number, `"inf"` (excluded), or null (not compared / not measured).
#[derive(Clone, Copy, Debug)]
pub struct Figure(pub f64);

impl Serialize for Figure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_nan() {
            s.serialize_none()
        } else if self.0.is_infinite() {
            s.serialize_str("inf")
        } else {
            s.serialize_f64(self.0)
        }
    }
}

/// One candidate of a decision.
#[derive(Serialize)]
pub struct CandidateJson {
    /// The member.
    pub member: Ipv4Addr,
    /// The figure compared.
    pub figure: Figure,
    /// Sessions bound to it then.
    pub bound: u32,
}

/// A binding decision in JSON.
#[derive(Serialize)]
pub struct DecisionJson {
    /// The member chosen.
    pub chosen: Ipv4Addr,
    /// What the figure is.
    pub figure: &'static str,
    /// The candidates (at most [`crate::engine::DECISION_LIST`]), in configured order.
    pub candidates: Vec<CandidateJson>,
    /// How many members were considered.
    pub considered: u32,
    /// The key's hash (hashing algorithms), hex.
    pub hash: Option<String>,
    /// off, new, kept, broken.
    pub affinity: &'static str,
    /// Why affinity was broken.
    pub affinity_broken: Option<&'static str>,
}

/// What a session line says of a decision, borrowed from a [`Decision`] or from the form the
/// report keeps it in until the session ends.
#[derive(Clone, Copy, Debug)]
pub struct DecisionView<'a> {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The member chosen.
    pub chosen_addr: [u8; 4],
    /// The candidates listed.
    pub entries: &'a [DecisionEntry],
    /// How many members were considered.
    pub considered: u32,
    /// The key's hash (hashing algorithms).
    pub hash: Option<u64>,
    /// What client affinity did.
    pub affinity: AffinityOutcome,
}

impl<'a> From<&'a Decision> for DecisionView<'a> {
    fn from(d: &'a Decision) -> Self {
        DecisionView {
            algorithm: d.algorithm,
            chosen_addr: d.chosen_addr,
            entries: d.entries(),
            considered: d.considered,
            hash: d.hash,
            affinity: d.affinity,
        }
    }
}

/// A decision as kept until its session ends: only the candidates listed, so a live session
/// costs about a hundred bytes here rather than the fixed-size [`Decision`]'s four hundred.
/// Up to [`INLINE_ENTRIES`] candidates are kept inline (no allocation per session).
struct StoredDecision {
    /// Everything but the candidates (`entries` empty).
    head: DecisionView<'static>,
    entries: StoredEntries,
}

/// Candidates a stored decision keeps without allocating.
const INLINE_ENTRIES: usize = 4;

enum StoredEntries {
    Inline(u8, [DecisionEntry; INLINE_ENTRIES]),
    Boxed(Box<[DecisionEntry]>),
}

impl StoredDecision {
    fn pack(d: &Decision) -> StoredDecision {
        let list = d.entries();
        let entries = match list.len() {
            n @ 0..=INLINE_ENTRIES => {
                let mut inline = [DecisionEntry::default(); INLINE_ENTRIES];
                inline[..n].copy_from_slice(list);
                StoredEntries::Inline(n as u8, inline)
            }
            _ => StoredEntries::Boxed(list.into()),
        };
        StoredDecision {
            head: DecisionView {
                entries: &[],
                ..DecisionView::from(d)
            },
            entries,
        }
    }

    fn view(&self) -> DecisionView<'_> {
        DecisionView {
            entries: match &self.entries {
                StoredEntries::Inline(n, e) => &e[..usize::from(*n)],
                StoredEntries::Boxed(e) => e,
            },
            ..self.head
        }
    }
}

impl From<&Decision> for DecisionJson {
    fn from(d: &Decision) -> Self {
        DecisionJson {
            chosen: d.chosen_addr.into(),
            figure: d.algorithm.figure(),
            candidates: d
                .entries()
                .iter()
                .map(|e| CandidateJson {
                    member: e.addr.into(),
                    figure: Figure(e.figure),
                    bound: e.bound,
                })
                .collect(),
            considered: d.considered,
            hash: d.hash.map(|h| format!("{h:016x}")),
            affinity: d.affinity.name(),
            affinity_broken: match d.affinity {
                AffinityOutcome::Broken(r) => Some(r.name()),
                _ => None,
            },
        }
    }
}

impl<'a> SessionJson<'a> {
    /// The JSON form of a record, with its binding decision when known.
    pub fn new(r: &'a SessionRecord, virtual_server: &'a str, decision: Option<&Decision>) -> Self {
        SessionJson {
            id: r.number,
            ts: r.first.as_secs_f64(),
            proto: proto::name(r.key.protocol).into_owned(),
            virtual_server,
            orig_h: r.key.src.into(),
            orig_p: r.key.sport,
            resp_h: r.key.dst.into(),
            resp_p: r.key.dport,
            member: r.translated.dst.into(),
            translated: r.translated.into(),
            first_ts_ns: r.first.nanos(),
            last_ts_ns: r.last.nanos(),
            first_reply_ts_ns: r.first_reply.map(|t| t.nanos()),
            end_ts_ns: r.ended_at.nanos(),
            duration: r.last.since(r.first).as_secs_f64(),
            orig_pkts: r.orig_packets,
            orig_ip_bytes: r.orig_bytes,
            resp_pkts: r.resp_packets,
            resp_ip_bytes: r.resp_bytes,
            history: r.history.as_str(),
            end: r.end.name(),
            checksum_faults: r.checksum_faults,
            ftp_data_of: r.ftp_data_of,
            algorithm: decision.map(|d| d.algorithm.name()),
            decision: decision.map(DecisionJson::from),
        }
    }
}

#[derive(Serialize)]
struct VirtualServerJson<'a> {
    name: &'a str,
    vip: Ipv4Addr,
    protocol: String,
    ports: &'a [u16],
    algorithm: &'static str,
    members: &'a [Ipv4Addr],
}

/// The decimal digits of each octet value, and how many there are.
const OCTETS: [([u8; 3], u8); 256] = {
    let mut t = [([0u8; 3], 0u8); 256];
    let mut v = 0;
    while v < 256 {
        let (h, d, u) = ((v / 100) as u8, (v / 10 % 10) as u8, (v % 10) as u8);
        t[v] = match v {
            0..=9 => ([b'0' + u, 0, 0], 1),
            10..=99 => ([b'0' + d, b'0' + u, 0], 2),
            _ => ([b'0' + h, b'0' + d, b'0' + u], 3),
        };
        v += 1;
    }
    t
};

/// Bytes a session line may take beyond its names, history and candidates (about 700 at
/// most): the rest of the line's room is scratch the writers below overwrite.
const LINE_FIXED: usize = 2048;
/// Bytes a listed candidate may take (at most 94).
const LINE_PER_CANDIDATE: usize = 128;

/// The most bytes [`session_line`] writes for a record of virtual server `quoted_name` with
/// `decision`.
fn line_bound(quoted_name: &str, decision: Option<&DecisionView<'_>>) -> usize {
    LINE_FIXED + quoted_name.len() + decision.map_or(0, |d| d.entries.len() * LINE_PER_CANDIDATE)
}

/// Writes into a buffer sized beforehand ([`line_bound`]): no capacity check per write, and
/// addresses written with fixed-size copies whose bytes past the value are overwritten by the
/// next write. Running past the end is a bug, caught by the slice bounds check (a panic,
/// never a corrupt line).
struct Cursor<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Cursor<'_> {
    /// Writes `s` (inlined to a fixed-size copy for a literal).
    #[inline(always)]
    fn put(&mut self, s: &[u8]) {
        self.buf[self.at..self.at + s.len()].copy_from_slice(s);
        self.at += s.len();
    }

    /// Writes `v` in decimal, as `Display` and serde_json do (both use itoa).
    #[inline]
    fn u64(&mut self, v: u64) {
        self.put(itoa::Buffer::new().format(v).as_bytes());
    }

    /// An IPv4 address as a JSON string, dotted quad (a dozen of them per session line).
    #[inline]
    fn ip(&mut self, a: [u8; 4]) {
        let out = &mut self.buf[self.at..self.at + 17];
        out[0] = b'"';
        let mut n = 1;
        for (i, o) in a.into_iter().enumerate() {
            if i > 0 {
                out[n] = b'.';
                n += 1;
            }
            let (digits, len) = OCTETS[usize::from(o)];
            out[n..n + 3].copy_from_slice(&digits);
            n += usize::from(len);
        }
        out[n] = b'"';
        self.at += n + 1;
    }

    /// A figure as serde_json writes an `f64` (`null` when not finite).
    fn f64(&mut self, v: f64) {
        if v.fract() == 0.0 && v.is_sign_positive() && v < 1e15 {
            // Whole figures (round-robin turns, session counts) as serde_json writes them: "3.0".
            self.u64(v as u64);
            self.put(b".0");
        } else if v.is_finite() {
            self.put(zmij::Buffer::new().format_finite(v).as_bytes());
        } else {
            self.put(b"null");
        }
    }
}

/// An IPv4 address as a JSON string, appended to `b`.
#[cfg(test)]
fn put_ip(b: &mut Vec<u8>, a: [u8; 4]) {
    let start = b.len();
    b.resize(start + 17, 0);
    let mut c = Cursor { buf: b, at: start };
    c.ip(a);
    let end = c.at;
    b.truncate(end);
}

/// A decision as serde_json would serialize [`DecisionJson`] (held together by the test
/// `session_line_matches_serde`).
fn put_decision(b: &mut Cursor<'_>, d: DecisionView<'_>) {
    b.put(b"{\"chosen\":");
    b.ip(d.chosen_addr);
    b.put(b",\"figure\":");
    // The figure names are fixed ASCII without quotes or backslashes.
    b.put(b"\"");
    b.put(d.algorithm.figure().as_bytes());
    b.put(b"\",\"candidates\":[");
    for (i, e) in d.entries.iter().enumerate() {
        if i > 0 {
            b.put(b",");
        }
        b.put(b"{\"member\":");
        b.ip(e.addr);
        b.put(b",\"figure\":");
        if e.figure.is_nan() {
            b.put(b"null");
        } else if e.figure.is_infinite() {
            b.put(b"\"inf\"");
        } else {
            b.f64(e.figure);
        }
        b.put(b",\"bound\":");
        b.u64(e.bound.into());
        b.put(b"}");
    }
    b.put(b"],\"considered\":");
    b.u64(d.considered.into());
    b.put(b",\"hash\":");
    match d.hash {
        Some(h) => {
            let mut hex = [0u8; 18];
            hex[0] = b'"';
            hex[17] = b'"';
            for (i, x) in hex[1..17].iter_mut().enumerate() {
                *x = b"0123456789abcdef"[(h >> (60 - 4 * i) & 0xf) as usize];
            }
            b.put(&hex);
        }
        None => b.put(b"null"),
    }
    b.put(b",\"affinity\":\"");
    b.put(d.affinity.name().as_bytes());
    b.put(b"\",\"affinity_broken\":");
    match d.affinity {
        AffinityOutcome::Broken(r) => {
            b.put(b"\"");
            b.put(r.name().as_bytes());
            b.put(b"\"");
        }
        _ => b.put(b"null"),
    }
    b.put(b"}");
}

/// One session record as a compact JSON object, appended to `line`, exactly as serde_json
/// would serialize [`SessionJson`] (the test `session_line_matches_serde` holds the two
/// together), without its per-field string escaping: the per-session cost of the report (on
/// its formatting thread, off the replay's).
/// `quoted_name` is the virtual server's name already JSON-quoted.
pub fn session_line(
    line: &mut Vec<u8>,
    r: &SessionRecord,
    quoted_name: &str,
    decision: Option<DecisionView<'_>>,
) {
    let mut text = Text {
        at: line.len(),
        buf: line,
    };
    // A text buffer takes every line.
    let _ = format_line(&mut text, b"", r, quoted_name, decision);
    let end = text.at;
    line.truncate(end);
}

/// Where formatted session lines go: a text buffer, or the report file's own buffer (no copy).
trait Lines {
    /// Gives `f` at least `room` bytes for the next line; `f` returns the line's length.
    fn line(&mut self, room: usize, f: impl FnOnce(&mut [u8]) -> usize) -> io::Result<()>;
}

/// Lines into a reused text buffer, from `at`. The buffer only grows, so it is zero-filled
/// once rather than per line.
struct Text<'a> {
    buf: &'a mut Vec<u8>,
    /// Where the lines so far end.
    at: usize,
}

impl Lines for Text<'_> {
    fn line(&mut self, room: usize, f: impl FnOnce(&mut [u8]) -> usize) -> io::Result<()> {
        let end = self.at + room;
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        self.at += f(&mut self.buf[self.at..end]);
        Ok(())
    }
}

impl Lines for OutputFile {
    fn line(&mut self, room: usize, f: impl FnOnce(&mut [u8]) -> usize) -> io::Result<()> {
        self.append_with(room, f)
    }
}

/// `sep` then record `r`'s [`session_line`], into `out`.
fn format_line(
    out: &mut impl Lines,
    sep: &[u8],
    r: &SessionRecord,
    quoted_name: &str,
    decision: Option<DecisionView<'_>>,
) -> io::Result<()> {
    let room = sep.len() + line_bound(quoted_name, decision.as_ref());
    out.line(room, |buf| {
        let mut c = Cursor { buf, at: 0 };
        c.put(sep);
        put_session(&mut c, r, quoted_name, decision);
        c.at
    })
}

/// The lines of the ended sessions among `items`, each with its decision from `joined` (one
/// per ended session, in order), into `out`. `first`: the first line is the report's first
/// session (no comma before it).
fn format_lines(
    out: &mut impl Lines,
    items: &[Item],
    joined: &[Option<StoredDecision>],
    names: &[String],
    first: bool,
) -> io::Result<()> {
    let records = items.iter().filter_map(|item| match item {
        Item::Ended(r) => Some(r),
        Item::Bound(..) => None,
    });
    for (i, (r, d)) in records.zip(joined).enumerate() {
        let name = names.get(r.virtual_server).map_or("\"\"", String::as_str);
        let sep: &[u8] = if first && i == 0 {
            b"\n    "
        } else {
            b",\n    "
        };
        format_line(out, sep, r, name, d.as_ref().map(StoredDecision::view))?;
    }
    Ok(())
}

/// A session line into a cursor with room for [`line_bound`] bytes.
fn put_session(
    b: &mut Cursor<'_>,
    r: &SessionRecord,
    quoted_name: &str,
    decision: Option<DecisionView<'_>>,
) {
    b.put(b"{\"id\":");
    b.u64(r.number);
    b.put(b",\"ts\":");
    b.f64(r.first.as_secs_f64());
    b.put(b",\"proto\":\"");
    b.put(proto::name(r.key.protocol).as_bytes());
    b.put(b"\",\"virtual_server\":");
    b.put(quoted_name.as_bytes());
    b.put(b",\"orig_h\":");
    b.ip(r.key.src);
    b.put(b",\"orig_p\":");
    b.u64(r.key.sport.into());
    b.put(b",\"resp_h\":");
    b.ip(r.key.dst);
    b.put(b",\"resp_p\":");
    b.u64(r.key.dport.into());
    b.put(b",\"member\":");
    b.ip(r.translated.dst);
    b.put(b",\"translated\":{\"src\":");
    b.ip(r.translated.src);
    b.put(b",\"src_port\":");
    b.u64(r.translated.sport.into());
    b.put(b",\"dst\":");
    b.ip(r.translated.dst);
    b.put(b",\"dst_port\":");
    b.u64(r.translated.dport.into());
    b.put(b"},\"first_ts_ns\":");
    b.u64(r.first.nanos());
    b.put(b",\"last_ts_ns\":");
    b.u64(r.last.nanos());
    b.put(b",\"first_reply_ts_ns\":");
    match r.first_reply {
        Some(t) => b.u64(t.nanos()),
        None => b.put(b"null"),
    }
    b.put(b",\"end_ts_ns\":");
    b.u64(r.ended_at.nanos());
    b.put(b",\"duration\":");
    b.f64(r.last.since(r.first).as_secs_f64());
    b.put(b",\"orig_pkts\":");
    b.u64(r.orig_packets);
    b.put(b",\"orig_ip_bytes\":");
    b.u64(r.orig_bytes);
    b.put(b",\"resp_pkts\":");
    b.u64(r.resp_packets);
    b.put(b",\"resp_ip_bytes\":");
    b.u64(r.resp_bytes);
    b.put(b",\"history\":\"");
    b.put(r.history.as_str().as_bytes());
    b.put(b"\",\"end\":\"");
    b.put(r.end.name().as_bytes());
    b.put(b"\",\"checksum_faults\":");
    b.u64(r.checksum_faults);
    if let Some(c) = r.ftp_data_of {
        b.put(b",\"ftp_data_of\":");
        b.u64(c);
    }
    match decision {
        Some(d) => {
            b.put(b",\"algorithm\":\"");
            b.put(d.algorithm.name().as_bytes());
            b.put(b"\",\"decision\":");
            put_decision(b, d);
        }
        None => b.put(b",\"algorithm\":null,\"decision\":null"),
    }
    b.put(b"}");
}

/// Sessions per batch handed to the formatting thread.
const BATCH: usize = 2048;
/// Batches at most: one filling, one being formatted, up to six queued. With three, the
/// replay's thread waited about 0.6 s of a 10M-packet replay for the formatter to hand one
/// back; the queue lets the formatter fall behind for a while and catch up (7 MB at most).
const BATCHES: usize = 8;

/// Streams the JSON report. The replay's thread only collects the sessions bound (their
/// decisions) and ended (their records); a formatting thread keeps each live session's
/// decision until its record comes, turns the records into lines ([`session_line`]) and
/// writes them, in batches of `BATCH` that come back empty for reuse.
pub struct JsonReport {
    /// Sessions bound and ended since the last batch was handed over, in order.
    ended: Vec<Item>,
    /// `None` once finished, or once the thread has failed (its error is in `error`).
    formatter: Option<Formatter>,
    /// Virtual server names, already JSON-quoted.
    names: Vec<String>,
    error: Option<io::Error>,
    /// Pool member transitions, written with the totals.
    pool_events: Vec<PoolEvent>,
    /// The `load` section, when a load report was made (see [`JsonReport::set_load`]).
    load: Option<serde_json::Value>,
}

/// What the formatting thread is handed, in the order it happened: a session bound (number
/// and decision) or a session ended (its record). Batches are reused, so the decision is
/// carried inline (boxing it would allocate per session).
#[allow(clippy::large_enum_variant)]
enum Item {
    Bound(u64, Decision),
    Ended(SessionRecord),
}

/// The decisions of the sessions bound now, by session number, until their records come.
///
/// Sessions are numbered in binding order, so a deque indexed by number from its front's
/// takes them with appends, and the sessions still open at the end (unbound in number
/// order) come back in the order they went in: sequential memory both ways, where a hash
/// map read and wrote a random line per session. A session that outlives many later ones
/// would keep the deque long; once it holds more than one and a half times as many slots as
/// live decisions (plus [`Decisions::SLACK`]), its oldest entries move to a map, so memory
/// stays in proportion to the live sessions. Each entry moves at most once.
#[derive(Default)]
struct Decisions {
    /// The number of the deque's front slot.
    base: u64,
    ring: VecDeque<Option<StoredDecision>>,
    /// Slots of `ring` that hold a decision.
    in_ring: usize,
    /// Entries moved out of the deque's front.
    old: FxHashMap<u64, StoredDecision>,
}

impl Decisions {
    /// Empty slots the deque may hold beyond one and a half times its live ones before it is
    /// compacted.
    const SLACK: usize = 1024;

    fn insert(&mut self, number: u64, d: StoredDecision) {
        if self.ring.is_empty() {
            self.base = number;
        }
        let end = self.base + self.ring.len() as u64;
        if number < end {
            // Not in binding order (never from the engine): kept aside.
            self.old.insert(number, d);
            return;
        }
        while self.base + (self.ring.len() as u64) < number {
            self.ring.push_back(None);
        }
        self.ring.push_back(Some(d));
        self.in_ring += 1;
        self.compact();
    }

    /// Moves the oldest decisions to the map while the deque holds more than one and a half
    /// times as many slots as decisions, plus slack; then gives back the deque's memory if it
    /// is mostly unused.
    fn compact(&mut self) {
        if self.ring.len() > self.in_ring + self.in_ring / 2 + Self::SLACK {
            while self.ring.len() > self.in_ring + Self::SLACK / 2 {
                self.pop_front();
            }
            if self.ring.capacity() > 4 * self.ring.len() + Self::SLACK {
                self.ring.shrink_to(2 * self.ring.len() + Self::SLACK);
            }
        }
    }

    /// Moves the front slot's decision, if any, to the map.
    fn pop_front(&mut self) {
        if let Some(Some(d)) = self.ring.pop_front() {
            self.in_ring -= 1;
            self.old.insert(self.base, d);
        }
        self.base += 1;
    }

    fn remove(&mut self, number: u64) -> Option<StoredDecision> {
        let at = number.checked_sub(self.base).map(|i| i as usize);
        let Some(slot) = at.and_then(|i| self.ring.get_mut(i)) else {
            return self.old.remove(&number);
        };
        let d = slot.take();
        if d.is_some() {
            self.in_ring -= 1;
        } else if let Some(d) = self.old.remove(&number) {
            return Some(d);
        }
        while let Some(None) = self.ring.front() {
            self.ring.pop_front();
            self.base += 1;
        }
        self.compact();
        d
    }

    /// Decisions kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.in_ring + self.old.len()
    }
}

/// The formatting thread and the channels to it.
struct Formatter {
    /// Batches to format.
    full: Sender<Vec<Item>>,
    /// Batches formatted, empty.
    empty: Receiver<Vec<Item>>,
    /// Batches allocated so far, the one being filled included.
    batches: usize,
    /// Tells the thread to stop (the report is being abandoned).
    abandon: Arc<AtomicBool>,
    handle: JoinHandle<io::Result<Sessions>>,
}

/// What the formatting thread owns: the file and how far the session list is.
struct Sessions {
    /// Dropping it unfinished removes the partial file.
    out: OutputFile,
    /// Virtual server names, already JSON-quoted.
    names: Arc<[String]>,
    /// No session written yet.
    first: bool,
    /// Decisions of the sessions bound now, written with their record when they end.
    decisions: Decisions,
    /// The decisions of the batch's ended sessions, in order.
    joined: Vec<Option<StoredDecision>>,
    /// The second formatting thread, once a batch has only ended sessions to write.
    helper: Helper,
}

/// A batch with no session bound, only ended ones (as when the sessions still open at the
/// end of the capture are reported), and at least this many, is formatted on two threads.
const SPLIT_AT: usize = 64;

impl Sessions {
    /// Writes a batch of sessions, leaving it empty. The items are read where they lie (an
    /// item is a few hundred bytes; moving each out would copy them all again).
    ///
    /// The decisions are joined to their records first, in order. The lines are formatted
    /// straight into the report file's buffer ([`OutputFile::append_with`]); a batch that
    /// only ends sessions (the report's tail, formatted while nothing else runs) is split in
    /// two halves, the second formatted by [`Helper`] into its own text at the same time and
    /// copied after the first. Either way the bytes are the same.
    fn write(&mut self, batch: &mut Vec<Item>) -> io::Result<()> {
        self.joined.clear();
        let mut bound = false;
        for item in batch.iter() {
            match item {
                Item::Bound(number, decision) => {
                    bound = true;
                    self.decisions
                        .insert(*number, StoredDecision::pack(decision));
                }
                Item::Ended(record) => self.joined.push(self.decisions.remove(record.number)),
            }
        }
        if !bound && self.joined.len() >= SPLIT_AT && self.helper.ready(&self.names) {
            return self.write_split(batch);
        }
        format_lines(&mut self.out, batch, &self.joined, &self.names, self.first)?;
        self.first &= self.joined.is_empty();
        batch.clear();
        Ok(())
    }

    /// [`Sessions::write`] of a batch of ended sessions only, half of it on the helper.
    fn write_split(&mut self, batch: &mut Vec<Item>) -> io::Result<()> {
        // Only ended sessions: `joined[i]` is the decision of `batch[i]`, so both split at `mid`.
        debug_assert_eq!(self.joined.len(), batch.len());
        let mid = batch.len() / 2;
        let items = Arc::new(std::mem::take(batch));
        let joined = Arc::new(std::mem::take(&mut self.joined));
        let asked = self
            .helper
            .ask(Arc::clone(&items), Arc::clone(&joined), mid);
        let end = if asked { mid } else { items.len() };
        format_lines(
            &mut self.out,
            &items[..end],
            &joined[..end],
            &self.names,
            self.first,
        )?;
        self.first = false;
        if asked {
            let (text, n) = self.helper.answer()?;
            self.out.write_all(&text[..n])?;
            self.helper.give_back(text);
        }
        // The helper dropped its references before answering, so these are the only ones.
        *batch = Arc::try_unwrap(items).unwrap_or_default();
        self.joined = Arc::try_unwrap(joined).unwrap_or_default();
        batch.clear();
        self.joined.clear();
        Ok(())
    }
}

/// Half a batch for the helper: the ended sessions of `items[from..]` with their decisions
/// `joined[from..]`, to be formatted into `text`.
struct HalfBatch {
    items: Arc<Vec<Item>>,
    joined: Arc<Vec<Option<StoredDecision>>>,
    from: usize,
    text: Vec<u8>,
}

/// The second formatting thread (`lsnat-json-2`), started by the first batch that has only
/// ended sessions: it formats the second half of such batches while the report's thread
/// formats the first. It formats only; the report's thread writes both halves in order.
#[derive(Default)]
enum Helper {
    /// Not needed yet.
    #[default]
    NotStarted,
    Running {
        halves: Sender<HalfBatch>,
        answers: Receiver<(Vec<u8>, usize)>,
        /// Its text buffer, between halves.
        text: Option<Vec<u8>>,
        handle: JoinHandle<()>,
    },
    /// It could not be started, or stopped: the report's thread formats alone.
    Unavailable,
}

impl Helper {
    /// Starts the thread if it has not been; whether it is running.
    fn ready(&mut self, names: &Arc<[String]>) -> bool {
        if let Helper::NotStarted = self {
            let (half_tx, half_rx) = mpsc::channel::<HalfBatch>();
            let (answer_tx, answer_rx) = mpsc::channel();
            let names = Arc::clone(names);
            let started = std::thread::Builder::new()
                .name("lsnat-json-2".into())
                .spawn(move || {
                    for half in half_rx {
                        let HalfBatch {
                            items,
                            joined,
                            from,
                            mut text,
                        } = half;
                        let mut lines = Text {
                            buf: &mut text,
                            at: 0,
                        };
                        // A text buffer takes every line.
                        let _ = format_lines(
                            &mut lines,
                            &items[from..],
                            &joined[from..],
                            &names,
                            false,
                        );
                        let n = lines.at;
                        drop((items, joined));
                        if answer_tx.send((text, n)).is_err() {
                            return;
                        }
                    }
                });
            *self = match started {
                Ok(handle) => Helper::Running {
                    halves: half_tx,
                    answers: answer_rx,
                    text: Some(Vec::new()),
                    handle,
                },
                Err(_) => Helper::Unavailable,
            };
        }
        matches!(self, Helper::Running { .. })
    }

    /// Hands it the ended sessions of `items[from..]`; false if it cannot take them.
    fn ask(
        &mut self,
        items: Arc<Vec<Item>>,
        joined: Arc<Vec<Option<StoredDecision>>>,
        from: usize,
    ) -> bool {
        let Helper::Running { halves, text, .. } = self else {
            return false;
        };
        let text = text.take().unwrap_or_default();
        let sent = halves.send(HalfBatch {
            items,
            joined,
            from,
            text,
        });
        if sent.is_err() {
            *self = Helper::Unavailable;
        }
        sent.is_ok()
    }

    /// The lines of the half last asked for, and their length.
    fn answer(&mut self) -> io::Result<(Vec<u8>, usize)> {
        let answer = match self {
            Helper::Running { answers, .. } => answers.recv().ok(),
            _ => None,
        };
        answer.ok_or_else(|| {
            *self = Helper::Unavailable;
            io::Error::other("the report's second formatting thread stopped")
        })
    }

    /// Keeps the text buffer of an answer for the next half.
    fn give_back(&mut self, buf: Vec<u8>) {
        if let Helper::Running { text, .. } = self {
            *text = Some(buf);
        }
    }

    /// Stops the thread (after the half it is formatting, if any).
    fn stop(&mut self) {
        if let Helper::Running { halves, handle, .. } = std::mem::take(self) {
            drop(halves);
            let _ = handle.join();
        }
    }
}

impl Formatter {
    /// Starts the thread, which owns `sessions` until [`Formatter::join`].
    fn start(mut sessions: Sessions) -> io::Result<Formatter> {
        let (full_tx, full_rx) = mpsc::channel::<Vec<Item>>();
        let (empty_tx, empty_rx) = mpsc::channel::<Vec<Item>>();
        let abandon = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&abandon);
        let handle = std::thread::Builder::new()
            .name("lsnat-json".into())
            .spawn(move || {
                let mut written = Ok(());
                for mut batch in full_rx {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    written = sessions.write(&mut batch);
                    if written.is_err() {
                        break;
                    }
                    let _ = empty_tx.send(batch);
                }
                sessions.helper.stop();
                written.map(|()| sessions)
            })?;
        Ok(Formatter {
            full: full_tx,
            empty: empty_rx,
            batches: 1,
            abandon,
            handle,
        })
    }

    /// Waits for the thread to write what it was given and takes the file back.
    fn join(self) -> io::Result<Sessions> {
        drop(self.full);
        self.handle
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the report thread failed")))
    }
}

impl JsonReport {
    /// Starts the report at `path` (written to `path.partial` until [`JsonReport::finish`]).
    pub fn create(
        path: &Path,
        capture: &Path,
        config_path: &Path,
        config: &EngineConfig,
    ) -> io::Result<Self> {
        // The file's name is the caller's to add, as for the other errors here.
        let mut out = OutputFile::create(path).map_err(|e| e.error)?;
        let vss: Vec<VirtualServerJson> = config
            .virtual_servers
            .iter()
            .map(|v| VirtualServerJson {
                name: &v.name,
                vip: v.vip,
                protocol: proto::name(v.protocol).into_owned(),
                ports: &v.ports,
                algorithm: v.algorithm.name(),
                members: &v.members,
            })
            .collect();
        writeln!(out, "{{")?;
        writeln!(out, "  \"schema\": {},", serde_json::to_string(SCHEMA)?)?;
        writeln!(
            out,
            "  \"tool\": {},",
            serde_json::to_string(&format!("lsnat {}", env!("CARGO_PKG_VERSION")))?
        )?;
        writeln!(
            out,
            "  \"capture\": {},",
            serde_json::to_string(&capture.display().to_string())?
        )?;
        writeln!(
            out,
            "  \"config\": {},",
            serde_json::to_string(&config_path.display().to_string())?
        )?;
        writeln!(out, "  \"view\": {},", serde_json::to_string(&config.view)?)?;
        writeln!(
            out,
            "  \"virtual_servers\": {},",
            serde_json::to_string(&vss)?
        )?;
        write!(out, "  \"sessions\": [")?;
        let names: Vec<String> = config
            .virtual_servers
            .iter()
            .map(|v| serde_json::to_string(&v.name).unwrap_or_else(|_| "\"\"".into()))
            .collect();
        let formatter = Formatter::start(Sessions {
            out,
            names: names.clone().into(),
            first: true,
            decisions: Decisions::default(),
            joined: Vec::with_capacity(BATCH),
            helper: Helper::default(),
        })?;
        Ok(JsonReport {
            ended: Vec::with_capacity(BATCH),
            formatter: Some(formatter),
            names,
            error: None,
            pool_events: Vec::new(),
            load: None,
        })
    }

    /// Hands the sessions collected so far to the formatting thread and takes an empty batch
    /// (waiting for one only when [`BATCHES`] are in use). A failed thread leaves its error.
    fn hand_over(&mut self) {
        let Some(f) = self.formatter.as_mut() else {
            return;
        };
        let next = match f.empty.try_recv() {
            Ok(batch) => Some(batch),
            Err(_) if f.batches < BATCHES => {
                f.batches += 1;
                Some(Vec::with_capacity(BATCH))
            }
            Err(_) => f.empty.recv().ok(),
        };
        if let Some(next) = next
            && f.full
                .send(std::mem::replace(&mut self.ended, next))
                .is_ok()
        {
            return;
        }
        // The thread stopped: it failed.
        let e = match self.formatter.take().map(Formatter::join) {
            Some(Err(e)) => e,
            _ => io::Error::other("the report thread stopped"),
        };
        self.error.get_or_insert(e);
        self.ended.clear();
    }

    /// Adds the load-share report ([`super::load::LoadReport::to_json`]) as `load`.
    pub fn set_load(&mut self, load: serde_json::Value) {
        self.load = Some(load);
    }

    /// Waits for the sessions to be written, writes the totals and renames the file into place.
    pub fn finish(mut self, summary: &Summary, totals: &ReplayTotals) -> io::Result<()> {
        if !self.ended.is_empty() {
            self.hand_over();
        }
        if let Some(e) = self.error.take() {
            return Err(e); // dropping self removes the partial file
        }
        let Some(f) = self.formatter.take() else {
            return Err(io::Error::other("already finished"));
        };
        // On an error the file goes with `sessions`.
        let mut sessions = f.join()?;
        self.write_trailer(&mut sessions.out, sessions.first, summary, totals)?;
        sessions.out.finish().map_err(|e| e.error)
    }

    fn write_trailer(
        &mut self,
        out: &mut OutputFile,
        first: bool,
        summary: &Summary,
        totals: &ReplayTotals,
    ) -> io::Result<()> {
        out.write_all(if first { b"],\n" } else { b"\n  ],\n" })?;
        let members: Vec<serde_json::Value> = totals
            .members
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                let m = summary.members.get(i).copied().unwrap_or_default();
                serde_json::json!({
                    "member": addr,
                    "sessions": m.sessions,
                    "orig_pkts": m.orig_pkts, "orig_ip_bytes": m.orig_ip_bytes,
                    "resp_pkts": m.resp_pkts, "resp_ip_bytes": m.resp_ip_bytes,
                })
            })
            .collect();
        let ends: serde_json::Map<String, serde_json::Value> = summary
            .ends
            .iter()
            .map(|(k, v)| (k.name().to_string(), (*v).into()))
            .collect();
        let dropped: Vec<serde_json::Value> = summary
            .dropped_packets
            .iter()
            .map(|d| serde_json::json!({"packet": d.index, "reason": d.reason, "tuple": TupleJson::from(d.tuple), "proto": proto::name(d.tuple.protocol)}))
            .collect();
        let first = totals.first_ts.unwrap_or_default();
        // As the golden writes them (microseconds, truncated), with a unit.
        let time = |t: crate::time::Timestamp| format!("{}s", super::since_start(first, t));
        let vs_name = |v: usize| {
            self.names
                .get(v)
                .and_then(|n| serde_json::from_str::<String>(n).ok())
                .unwrap_or_else(|| v.to_string())
        };
        let pool_events: Vec<serde_json::Value> = self
            .pool_events
            .iter()
            .map(|e| {
                serde_json::json!({
                    "ts_ns": e.at.nanos(),
                    "member": e.member,
                    "transition": e.kind.name(),
                    "evidence": e.evidence(&time, &vs_name),
                    "sessions": e.sessions,
                })
            })
            .collect();
        let rest = serde_json::json!({
            "members": members,
            "pool_events": pool_events,
            "packets": {
                "read": summary.packets,
                "ipv4": summary.ipv4,
                "translated_inbound": summary.translated_inbound,
                "translated_outbound": summary.translated_outbound,
                "napt_outbound": summary.napt_outbound,
                "napt_inbound": summary.napt_inbound,
                "passed": summary.passed,
                "dropped": summary.dropped,
                "not_ipv4": summary.not_ipv4(),
                "outgoing_copies_not_replayed": summary.outgoing_copies,
                "link_truncated": summary.link_truncated,
                "checksum_faults": summary.checksum_faults,
                "fragments_held": summary.fragments_held,
                "fragments_released": summary.fragments_released,
                "fragments_expired": summary.fragments_expired,
                "icmp_time_exceeded_sent": summary.icmp_time_exceeded_sent,
                "written": totals.written,
                "first_ts_ns": totals.first_ts.map(|t| t.nanos()),
                "last_ts_ns": totals.last_ts.map(|t| t.nanos()),
                "timestamps_backwards": totals.timestamps_backwards,
            },
            "sessions_bound": summary.sessions,
            "session_ends": ends,
            "session_grace_cut_short": totals.grace_cut_short,
            "ftp_gateway": {
                "followed": summary.ftp.followed,
                "unfollowed": summary.ftp.unfollowed,
                "resized": summary.ftp.resized,
                "data_sessions": summary.ftp.data_sessions,
            },
            "dropped_packets": dropped,
            "dropped_packets_listed_all": summary.dropped_packets.len() as u64 == summary.dropped.values().sum::<u64>(),
            "warnings": totals.warnings,
        });
        let mut rest = rest;
        if let (Some(load), Some(obj)) = (self.load.take(), rest.as_object_mut()) {
            obj.insert("load".into(), load);
        }
        let text = serde_json::to_string_pretty(&rest)?;
        // Splice the totals object's members after "sessions".
        let inner = text
            .trim_start_matches('{')
            .trim_end_matches('}')
            .trim_matches('\n');
        out.write_all(inner.as_bytes())?;
        out.write_all(b"\n}\n")
    }
}

impl Drop for JsonReport {
    /// Stops the formatting thread unless [`JsonReport::finish`] took it; the partial file goes
    /// with it.
    fn drop(&mut self) {
        if let Some(f) = self.formatter.take() {
            f.abandon.store(true, Ordering::Relaxed);
            let _ = f.join();
        }
    }
}

impl Observer for JsonReport {
    fn pool_event(&mut self, event: &PoolEvent) {
        self.pool_events.push(event.clone());
    }

    fn event(&mut self, event: &Event) {
        if self.error.is_some() {
            return;
        }
        match event {
            Event::Bound {
                number, decision, ..
            } => self.ended.push(Item::Bound(*number, *decision)),
            Event::Ended(r) => self.ended.push(Item::Ended(*r)),
        }
        if self.ended.len() >= BATCH {
            self.hand_over();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EndReason, History};
    use crate::time::Timestamp;
    use std::path::PathBuf;

    /// Every octet value, in every position, as `Ipv4Addr` displays it.
    #[test]
    fn put_ip_writes_dotted_quads() {
        for v in 0..=255u8 {
            for a in [[v, 0, 0, 0], [1, v, 22, 255], [10, 200, 7, v], [v, v, v, v]] {
                let mut b = b"x".to_vec();
                put_ip(&mut b, a);
                assert_eq!(
                    b,
                    format!("x\"{}\"", std::net::Ipv4Addr::from(a)).into_bytes()
                );
            }
        }
    }

    /// The decision store against a map: the same answers, in any order of removal, and a
    /// deque that stays within one and a half times the live decisions (plus slack) while
    /// one session lives through a hundred thousand others.
    #[test]
    fn decisions_are_kept_by_number_in_bounded_memory() {
        let decision = |n: u64| {
            let mut d = Decision::new(crate::engine::Algorithm::RoundRobin);
            d.push(0, [192, 0, 2, 1], n as f64, n);
            d.considered = n as u32;
            StoredDecision::pack(&d)
        };
        let considered = |d: Option<StoredDecision>| d.map(|d| d.view().considered);
        let mut store = Decisions::default();
        let mut model = std::collections::BTreeMap::new();
        let mut x = 7u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for number in 1..=100_000u64 {
            store.insert(number, decision(number));
            model.insert(number, number as u32);
            // Remove a live one now and then; session 1 lives to the end.
            if number % 3 != 0 && model.len() > 1 {
                let r = next() % 64;
                let victim = model.keys().rev().nth(r as usize).copied();
                if let Some(v) = victim.filter(|&v| v != 1) {
                    assert_eq!(considered(store.remove(v)), model.remove(&v));
                }
            }
            assert!(store.ring.len() <= store.in_ring + store.in_ring / 2 + Decisions::SLACK + 1);
            assert_eq!(store.len(), model.len());
        }
        assert_eq!(considered(store.remove(5_000_000)), None);
        for (n, c) in std::mem::take(&mut model) {
            assert_eq!(considered(store.remove(n)), Some(c), "session {n}");
            assert_eq!(considered(store.remove(n)), None);
        }
        assert_eq!(store.len(), 0);
        assert!(store.ring.is_empty());
    }

    /// Numbers of every length, and around every power of ten, as `Display` writes them.
    #[test]
    fn cursor_writes_numbers_as_display() {
        let mut values = vec![0, 1, 9, u64::MAX, u64::MAX - 1];
        for p in 1..=19 {
            let t = 10u64.pow(p);
            values.extend([t - 1, t, t + 1, t + 7 * (t / 10)]);
        }
        for v in values {
            let mut buf = [b'x'; 40];
            let mut c = Cursor {
                buf: &mut buf,
                at: 3,
            };
            c.u64(v);
            let end = c.at;
            assert_eq!(&buf[3..end], v.to_string().as_bytes());
            assert_eq!(&buf[..3], b"xxx");
        }
    }

    #[test]
    fn session_line_matches_serde() {
        let mut history = History::default();
        for (l, o) in [(b's', true), (b'h', false), (b'a', true), (b'r', false)] {
            history.mark(l, o);
        }
        let key = Tuple {
            protocol: 6,
            src: [198, 51, 100, 7],
            sport: 2745,
            dst: [172, 87, 0, 100],
            dport: 80,
        };
        let mut r = SessionRecord {
            number: 42,
            virtual_server: 0,
            member: 1,
            key,
            translated: Tuple {
                dst: [172, 85, 0, 1],
                ..key
            },
            first: Timestamp(1_700_000_000_123_456_789),
            last: Timestamp(1_700_000_001_000_000_001),
            first_reply: Some(Timestamp(1_700_000_000_200_000_000)),
            orig_packets: 10,
            orig_bytes: 725,
            resp_packets: 7,
            resp_bytes: 701,
            checksum_faults: 1,
            history,
            end: EndReason::Rst,
            ended_at: Timestamp(1_700_000_003_000_000_001),
            ftp_data_of: Some(41),
        };
        let mut decision = Decision::new(crate::engine::Algorithm::LeastWeightedLoad);
        decision.push(0, [203, 0, 113, 1], 6.0, 2);
        decision.push(2, [203, 0, 113, 3], 5.0, 7);
        decision.push(1, [203, 0, 113, 2], f64::INFINITY, 0);
        decision.push(3, [203, 0, 113, 4], f64::NAN, 0);
        decision.chosen = 2;
        decision.chosen_addr = [203, 0, 113, 3];
        decision.hash = Some(0xabc);
        decision.affinity = AffinityOutcome::Broken(crate::engine::AffinityBreak::Timeout);
        let mut plain = Decision::new(crate::engine::Algorithm::RoundRobin);
        for (i, f) in [
            0.0,
            -0.0,
            0.1,
            2.5e-5,
            1e-7,
            3.0,
            123_456.789,
            123_456_789.0,
            999_999_999_999_999.0,
            -5.0,
            1e16,
            1e21,
            1e300,
        ]
        .into_iter()
        .enumerate()
        {
            plain.push(i, [192, 0, 2, i as u8], f, i as u64 * 1000);
        }
        plain.chosen_addr = [192, 0, 2, 3];
        plain.considered = 12;
        let mut kept = plain;
        kept.affinity = AffinityOutcome::Kept;
        kept.hash = Some(u64::MAX);
        for name in ["web", "we\"b\\ \u{e9}"] {
            for reply in [Some(Timestamp(5)), None] {
                r.first_reply = reply;
                for d in [None, Some(&decision), Some(&plain), Some(&kept)] {
                    // Appended after what the buffer holds.
                    let mut line = b"[".to_vec();
                    session_line(
                        &mut line,
                        &r,
                        &serde_json::to_string(name).unwrap(),
                        d.map(DecisionView::from),
                    );
                    assert_eq!(line.remove(0), b'[');
                    let ours: serde_json::Value = serde_json::from_slice(&line).unwrap();
                    let theirs = serde_json::to_value(SessionJson::new(&r, name, d)).unwrap();
                    assert_eq!(ours, theirs);
                    assert_eq!(
                        String::from_utf8(line).unwrap(),
                        serde_json::to_string(&SessionJson::new(&r, name, d)).unwrap()
                    );
                }
            }
        }
    }

    const CONFIG: &str = r#"
[[virtual_server]]
name = "web"
vip = "203.0.113.100"
protocol = "tcp"
ports = [80]
algorithm = "least-weighted-load"
members = ["192.0.2.1", "192.0.2.2"]
"#;

    fn record(n: u64) -> SessionRecord {
        let key = Tuple {
            protocol: 6,
            src: [198, 51, 100, (n % 250) as u8],
            sport: (n % 60000) as u16 + 1024,
            dst: [203, 0, 113, 100],
            dport: 80,
        };
        SessionRecord {
            number: n,
            virtual_server: 0,
            member: (n % 2) as usize,
            key,
            translated: Tuple {
                dst: [192, 0, 2, 1 + (n % 2) as u8],
                ..key
            },
            first: Timestamp(1_700_000_000_000_000_000 + n * 1_000_003),
            last: Timestamp(1_700_000_000_000_000_000 + n * 2_000_011),
            first_reply: (!n.is_multiple_of(5)).then_some(Timestamp(1_700_000_000_000_000_000 + n)),
            orig_packets: n % 17,
            orig_bytes: n * 40,
            resp_packets: n % 13,
            resp_bytes: n * 52,
            checksum_faults: 0,
            history: History::default(),
            end: EndReason::Fin,
            ended_at: Timestamp(1_700_000_000_000_000_000 + n * 3_000_000),
            ftp_data_of: None,
        }
    }

    fn report(name: &str) -> (PathBuf, JsonReport) {
        let config = crate::config::parse(Path::new("unit.toml"), CONFIG).expect("config");
        let path = std::env::temp_dir().join(format!(
            "lsnat-json-unit-{}-{name}.json",
            std::process::id()
        ));
        let report =
            JsonReport::create(&path, Path::new("c.pcap"), Path::new("unit.toml"), &config)
                .expect("create");
        (path, report)
    }

    /// Sessions handed to the formatting thread in several batches (and a last, partial one)
    /// come out in order, each exactly as `session_line` writes it, before the totals.
    #[test]
    fn batched_sessions_are_written_in_order() {
        sessions_are_written_in_order("batches", false, true);
    }

    /// The same when every session is bound first and all end after (the batches then only
    /// end sessions, and are formatted half by the report's thread, half by its helper):
    /// the same lines, the first one included, in the same order.
    #[test]
    fn sessions_ended_together_are_written_in_order() {
        sessions_are_written_in_order("ended-together", true, true);
        // No decisions at all: the report's very first line is formatted in a split batch.
        sessions_are_written_in_order("ended-only", true, false);
    }

    fn sessions_are_written_in_order(name: &str, ended_together: bool, any_bound: bool) {
        let (path, mut report) = report(name);
        let mut expected = String::new();
        let count = (BATCHES * BATCH + BATCH / 2) as u64;
        let decision = |n: u64| {
            let mut d = Decision::new(Algorithm::LeastWeightedLoad);
            d.push(0, [192, 0, 2, 1], n as f64, 1);
            d.push(1, [192, 0, 2, 2], 0.5, 2);
            d.chosen = 1;
            d.chosen_addr = [192, 0, 2, 2];
            d
        };
        let bound = |n: u64| any_bound && !n.is_multiple_of(3);
        let bind = |report: &mut JsonReport, n: u64| {
            let r = record(n);
            if bound(n) {
                report.event(&Event::Bound {
                    number: n,
                    at: r.first,
                    virtual_server: 0,
                    member: 1,
                    member_addr: [192, 0, 2, 2],
                    key: r.key,
                    decision: decision(n),
                });
            }
        };
        if ended_together {
            (1..=count).for_each(|n| bind(&mut report, n));
        }
        for n in 1..=count {
            let r = record(n);
            let d = decision(n);
            if !ended_together {
                bind(&mut report, n);
            }
            report.event(&Event::Ended(r));
            let bound = bound(n);
            let mut line = Vec::new();
            session_line(
                &mut line,
                &r,
                "\"web\"",
                bound.then_some(DecisionView::from(&d)),
            );
            expected.push_str(if n == 1 { "\n    " } else { ",\n    " });
            expected.push_str(std::str::from_utf8(&line).expect("utf-8"));
        }
        expected.push_str("\n  ],\n");
        report
            .finish(&Summary::default(), &ReplayTotals::default())
            .expect("finish");
        let text = std::fs::read_to_string(&path).expect("report");
        let _ = std::fs::remove_file(&path);
        let (_, sessions) = text.split_once("\"sessions\": [").expect("sessions");
        assert!(sessions.starts_with(&expected));
        let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["sessions"].as_array().map(Vec::len), Some(count as usize));
    }

    #[test]
    fn dropped_report_leaves_nothing() {
        let (path, mut report) = report("dropped");
        let partial = PathBuf::from(format!("{}.partial", path.display()));
        for n in 1..=(2 * BATCH) as u64 {
            report.event(&Event::Ended(record(n)));
        }
        assert!(partial.exists());
        drop(report);
        assert!(!partial.exists() && !path.exists());
    }
}
