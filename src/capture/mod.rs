//! Capture I/O: the only module that knows the capture file formats.
//!
//! Reads pcap (µs and ns, both byte orders) and pcapng (several interfaces, per-interface
//! `if_tsresol`), in batches of owned packet bytes so the engine can rewrite them in place and a
//! reader thread can run ahead of it. Writes the same format, link type and timestamp precision
//! back, to `PATH.partial`, renamed over `PATH` only by [`CaptureWriter::finish`].
//!
//! Layout: `reader.rs` sniffs the format and drives one of two sources, `pcap.rs` (a
//! hand-written record loop: it validates each record header before waiting for its data, so a
//! bogus length is an error and a short file a warning) and `ng.rs` (pcapng blocks framed and
//! decoded by hand too: section and interface blocks are read for what the replay needs and
//! otherwise copied as bytes, so no option's contents can stop a replay); `ts.rs`
//! converts pcapng timestamp units; `writer.rs` frames records by hand.

mod ng;
mod pcap;
mod reader;
#[cfg(test)]
mod tests;
mod ts;
mod writer;

pub use reader::CaptureReader;
pub use writer::CaptureWriter;

/// Whether the file at `path` starts as a pcapng does (its section header block's type,
/// the same in either byte order), for naming what is written in its format before it is
/// opened; false when it cannot be read (opening it reports why).
pub fn starts_as_pcapng(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    // Only a regular file is opened (a FIFO would wait for a writer); anything else is
    // refused when the capture is opened.
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok_and(|()| u32::from_le_bytes(magic) == ng::SHB)
}

use crate::time::Timestamp;
use std::fmt;
use std::path::PathBuf;
use ts::TsParams;

/// A link-layer header type (the pcap `LINKTYPE_*` number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback (4-byte host-order address family).
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II, with optional 802.1Q / QinQ tags.
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP (the value 101 used in pcap files).
    pub const RAW: LinkType = LinkType(101);
    /// Linux cooked capture v1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// OpenBSD loopback (4-byte network-order address family).
    pub const LOOP: LinkType = LinkType(108);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// Which way a packet crossed the capturing interface, when the capture says so
/// (pcapng EPB flags, SLL / SLL2 packet type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CaptureDirection {
    /// Not recorded.
    #[default]
    Unknown,
    /// Arrived at the capturing host.
    Inbound,
    /// Sent by the capturing host (a forwarded packet as it left, under `tcpdump -i any`).
    Outbound,
}

/// One packet of a [`Batch`]: where its bytes are and what the capture said about it.
#[derive(Clone, Copy, Debug)]
pub struct PacketMeta {
    /// 1-based record number in the file, as Wireshark numbers packets.
    pub index: u64,
    /// Capture timestamp.
    pub ts: Timestamp,
    /// Interface number: 0 for pcap; for pcapng the position of the packet's Interface
    /// Description Block in the file (equal to the EPB interface id when the file has a single
    /// section, which is the usual case).
    pub interface: u32,
    /// Link type of this packet (per interface in pcapng).
    pub linktype: LinkType,
    /// Length of the packet on the wire (may exceed the captured length).
    pub orig_len: u32,
    /// Direction from pcapng EPB flags; `Unknown` for pcap (SLL types are read by [`crate::link`]).
    pub direction: CaptureDirection,
    /// Offset of the captured bytes in [`Batch::data`].
    pub offset: u32,
    /// Captured length.
    pub len: u32,
    /// The raw pcapng `epb_flags` word, when the packet block carried one. The writer writes it
    /// back, with bits 0-1 taken from [`PacketMeta::direction`] when that is known.
    pub epb_flags: Option<u32>,
    /// Its bytes were rewritten (set by whoever rewrote them): options that describe the bytes
    /// as captured (`epb_hash`) are not written with them.
    pub rewritten: bool,
    /// The packet block's other options, as they lie in [`Batch::options`] (pcapng only).
    pub(crate) options: OptionRange,
    /// A pcapng Simple Packet Block, which has no timestamp (pcapng §4.4): `ts` is that of the
    /// last packet before it that has one or, before any, of the first after it (0 when the
    /// file has none). It is written back as one, without a timestamp.
    pub simple: bool,
    /// Bytes of frame check sequence the frame ends with on the wire, 0 when none or unknown
    /// (pcap: the LinkType field's FCS bits, draft-ietf-opsawg-pcap §4; pcapng: `epb_flags`
    /// bits 5-8, else the interface's `if_fcslen`). The captured bytes hold it when the frame
    /// was captured whole (`len == orig_len`).
    pub fcs_len: u8,
}

/// Where a packet's pcapng options lie in [`Batch::options`]: whole options (header and padded
/// value), in the byte order of the packet's section, without `epb_flags` (kept in
/// [`PacketMeta::epb_flags`]) or the end of options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OptionRange {
    pub at: u32,
    pub len: u32,
}

impl Default for PacketMeta {
    /// An empty Ethernet packet at time 0 (for callers that synthesise packets).
    fn default() -> Self {
        PacketMeta {
            index: 0,
            ts: Timestamp::default(),
            interface: 0,
            linktype: LinkType::ETHERNET,
            orig_len: 0,
            direction: CaptureDirection::Unknown,
            offset: 0,
            len: 0,
            epb_flags: None,
            rewritten: false,
            options: OptionRange::default(),
            simple: false,
            fcs_len: 0,
        }
    }
}

/// A batch of packets read in one go: owned bytes, reused between batches (no per-packet
/// allocation). The engine rewrites `data` in place; the writer writes it back out.
#[derive(Default, Debug)]
pub struct Batch {
    /// Packet bytes, back to back.
    pub data: Vec<u8>,
    /// One entry per packet, in file order.
    pub packets: Vec<PacketMeta>,
    /// Opaque state the writer needs that first appeared in this batch (pcapng section headers,
    /// interface descriptions and the other blocks it copies, in order). Reader-owned; callers
    /// pass it through untouched.
    pub(crate) format_updates: Vec<FormatUpdate>,
    /// The packets' pcapng options, back to back (see [`PacketMeta::options`]).
    pub(crate) options: Vec<u8>,
    /// For classic pcap: where the packets' records lie in `data`, as in the file.
    pub(crate) records: Option<Records>,
}

/// The records of a classic pcap batch, read straight into [`Batch::data`]: from `start` to
/// the end of `data`, back to back, each a 16-byte record header and the packet's bytes
/// ([`PacketMeta::offset`] points past the header). `start` is placed so that, once the
/// output has caught up (see `CaptureReader::set_lag`), the records sit at the same offset
/// within a 4096-byte block as their copy in the output file, which lets the writer hand the
/// batch's own memory to a direct write ([`CaptureWriter::write_all`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Records {
    /// Where the first record starts in [`Batch::data`].
    pub start: usize,
    /// File offset of the first record.
    pub file_offset: u64,
    /// Every record header says what the writer would write back: no fractional-seconds
    /// field out of range (those are normalised).
    pub verbatim: bool,
}

impl Batch {
    /// Empties the batch, keeping its capacity.
    pub fn clear(&mut self) {
        self.data.clear();
        self.packets.clear();
        self.format_updates.clear();
        self.options.clear();
        self.records = None;
    }
    /// The bytes of packet `i`, mutable.
    pub fn bytes_mut(&mut self, i: usize) -> (&PacketMeta, &mut [u8]) {
        let m = &self.packets[i];
        let (o, l) = (m.offset as usize, m.len as usize);
        (m, &mut self.data[o..o + l])
    }
    /// For a classic pcap batch, the input file offset just past its last record (see
    /// `CaptureReader::set_lag`).
    pub fn end_offset(&self) -> Option<u64> {
        let r = self.records?;
        Some(r.file_offset + (self.data.len() - r.start) as u64)
    }
    /// The bytes of packet `i`.
    pub fn bytes(&self, i: usize) -> &[u8] {
        let m = &self.packets[i];
        &self.data[m.offset as usize..(m.offset + m.len) as usize]
    }
    /// Interfaces first described in this batch, as (interface number, link type), in file
    /// order. For pcapng each one should pass [`crate::link::check_supported`] before its
    /// packets are used; pcap files describe their single interface in
    /// [`CaptureFormat::Pcap`] instead.
    pub fn new_interfaces(&self) -> impl Iterator<Item = (u32, LinkType)> + '_ {
        self.format_updates.iter().filter_map(|u| match u {
            FormatUpdate::Interface { id, linktype, .. } => Some((*id, *linktype)),
            FormatUpdate::Section { .. } | FormatUpdate::Block { .. } => None,
        })
    }
}

/// Format details the writer mirrors (see `writer.rs`), in the order they appeared in the file.
///
/// A batch never spans a pcapng section boundary: a section header is always the first thing
/// in its batch's updates and precedes the batch's packets. The other blocks say where they
/// stood among the batch's packets (`at`: how many came before them), and the writer writes
/// them there.
#[derive(Clone, Debug)]
pub(crate) enum FormatUpdate {
    /// A pcapng Section Header Block: its byte order and raw body (options included).
    Section {
        /// Big-endian section.
        big_endian: bool,
        /// The block body, in the section's byte order.
        body: Vec<u8>,
    },
    /// A pcapng Interface Description Block of the current section.
    Interface {
        /// Packets of the batch before it.
        at: u32,
        /// Interface number in the file ([`PacketMeta::interface`]).
        id: u32,
        /// Its link type.
        linktype: LinkType,
        /// How its packets' timestamps are encoded (`if_tsresol`, `if_tsoffset`).
        ts: TsParams,
        /// The block body, in the section's byte order (options included).
        body: Vec<u8>,
    },
    /// A block copied as it is: a Decryption Secrets Block (its packets need it) or a custom
    /// block that may be copied (pcapng §4.6, §4.7).
    Block {
        /// Packets of the batch before it.
        at: u32,
        /// Block type.
        type_: u32,
        /// The block body, in the section's byte order.
        body: Vec<u8>,
    },
}

impl FormatUpdate {
    /// How many of the batch's packets came before it.
    pub(crate) fn at(&self) -> u32 {
        match self {
            FormatUpdate::Section { .. } => 0,
            FormatUpdate::Interface { at, .. } | FormatUpdate::Block { at, .. } => *at,
        }
    }
}

/// Why a source stopped filling a batch.
enum Stop {
    /// The batch is full; more may follow.
    Full,
    /// The file ended cleanly.
    End,
    /// The file ends inside a record: the warning to record.
    Truncated(String),
    /// A record or block is corrupt (or the file unreadable).
    Failed(CaptureError),
}

/// What kind of file a capture is, so the writer can mirror it.
#[derive(Clone, Debug)]
pub enum CaptureFormat {
    /// Classic pcap: the global header as read (byte order, precision, link type, snaplen).
    Pcap {
        /// The 24-byte global header, written back verbatim.
        header: [u8; 24],
        /// Nanosecond timestamps (magic a1b23c4d).
        nanos: bool,
        /// Big-endian file.
        big_endian: bool,
        /// Link type.
        linktype: LinkType,
        /// Bytes of FCS at the end of every frame, as the header's LinkType field says (0:
        /// none or unknown; [`PacketMeta::fcs_len`]).
        fcs_len: u8,
    },
    /// pcapng: the section header's byte order; interfaces travel in batches.
    PcapNg {
        /// Big-endian section.
        big_endian: bool,
    },
}

/// A capture that cannot be read or written. Displays as one line naming the file, where in it
/// the problem is (packet index or byte offset) and the cause.
#[derive(Debug, thiserror::Error)]
pub struct CaptureError {
    /// The file.
    pub path: PathBuf,
    /// Where: packet index and/or byte offset, when known.
    pub at: Option<Location>,
    /// The cause, one line.
    pub cause: String,
}

/// Where in a file an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// 1-based packet (record) number, when the error concerns one.
    pub packet: Option<u64>,
    /// Byte offset in the file.
    pub offset: Option<u64>,
}

impl CaptureError {
    /// An error at `at` in `path`; `cause` is flattened to one line.
    pub(crate) fn new(
        path: &std::path::Path,
        at: Option<Location>,
        cause: impl Into<String>,
    ) -> Self {
        CaptureError {
            path: path.into(),
            at,
            cause: one_line(&cause.into()),
        }
    }
    /// An error concerning record `packet` that starts at byte `offset`.
    pub(crate) fn at_record(
        path: &std::path::Path,
        packet: u64,
        offset: u64,
        cause: impl Into<String>,
    ) -> Self {
        Self::new(
            path,
            Some(Location {
                packet: Some(packet),
                offset: Some(offset),
            }),
            cause,
        )
    }
    /// An error at byte `offset`, not tied to a packet.
    pub(crate) fn at_offset(path: &std::path::Path, offset: u64, cause: impl Into<String>) -> Self {
        Self::new(
            path,
            Some(Location {
                packet: None,
                offset: Some(offset),
            }),
            cause,
        )
    }
}

/// Replaces line breaks and other control characters so a message stays on one line.
fn one_line(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", one_line(&self.path.display().to_string()))?;
        if let Some(at) = self.at {
            if let Some(p) = at.packet {
                write!(f, ": packet {p}")?;
            }
            match (at.packet, at.offset) {
                (Some(_), Some(o)) => write!(f, " (byte offset {o})")?,
                (None, Some(o)) => write!(f, ": byte offset {o}")?,
                _ => {}
            }
        }
        write!(f, ": {}", one_line(&self.cause))
    }
}
