//! Capture I/O: the only module that touches `pcap-file`.
//!
//! Reads pcap (µs and ns, both byte orders) and pcapng (several interfaces, per-interface
//! `if_tsresol`), in batches of owned packet bytes so the engine can rewrite them in place and a
//! reader thread can run ahead of it. Writes the same format, link type and timestamp precision
//! back, to `PATH.partial`, renamed over `PATH` only by [`CaptureWriter::finish`].

mod reader;
mod writer;

pub use reader::CaptureReader;
pub use writer::CaptureWriter;

use crate::time::Timestamp;
use std::fmt;
use std::path::PathBuf;

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
    /// pcapng interface id (0 for pcap).
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
}

/// A batch of packets read in one go: owned bytes, reused between batches (no per-packet
/// allocation). The engine rewrites `data` in place; the writer writes it back out.
#[derive(Default, Debug)]
pub struct Batch {
    /// Packet bytes, back to back.
    pub data: Vec<u8>,
    /// One entry per packet, in file order.
    pub packets: Vec<PacketMeta>,
    /// Opaque state the writer needs that first appeared in this batch (pcapng interface
    /// descriptions, in order). Reader-owned; callers pass it through untouched.
    pub(crate) format_updates: Vec<FormatUpdate>,
}

impl Batch {
    /// Empties the batch, keeping its capacity.
    pub fn clear(&mut self) {
        self.data.clear();
        self.packets.clear();
        self.format_updates.clear();
    }
    /// The bytes of packet `i`, mutable.
    pub fn bytes_mut(&mut self, i: usize) -> (&PacketMeta, &mut [u8]) {
        let m = &self.packets[i];
        let (o, l) = (m.offset as usize, m.len as usize);
        (m, &mut self.data[o..o + l])
    }
    /// The bytes of packet `i`.
    pub fn bytes(&self, i: usize) -> &[u8] {
        let m = &self.packets[i];
        &self.data[m.offset as usize..(m.offset + m.len) as usize]
    }
}

/// Format details the writer mirrors (see `writer.rs`).
#[derive(Clone, Debug)]
pub(crate) enum FormatUpdate {
    /// A pcapng Interface Description Block, as raw block body bytes plus its byte order.
    PcapNgInterface(Vec<u8>),
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

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(at) = self.at {
            if let Some(p) = at.packet {
                write!(f, ": packet {p}")?;
            }
            if let Some(o) = at.offset {
                write!(f, " (byte offset {o})")?;
            }
        }
        write!(f, ": {}", self.cause)
    }
}
