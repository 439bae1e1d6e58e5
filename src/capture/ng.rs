//! pcapng blocks: framing and section/interface state from pcap-file's `PcapNgReader`
//! (`next_raw_block`, which never decodes packet blocks), packet blocks decoded here without
//! allocating.

use super::pcap::BATCH_BYTES;
use super::{
    Batch, CaptureDirection, CaptureError, FormatUpdate, LinkType, PacketMeta, Stop, TsParams,
    error_chain,
};
use crate::time::Timestamp;
use pcap_file::Endianness;
use pcap_file::pcapng::{PcapNgReadError, PcapNgReader};
use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;

/// Section Header Block type (also the pcapng magic).
pub(super) const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
/// pcap-file's read buffer: a block must fit in it.
const READ_BUFFER: u64 = 8_000_000;
/// A first Section Header Block longer than this is corrupt.
const MAX_SHB: u32 = 1 << 20;

/// One interface of the current section.
#[derive(Clone, Copy, Debug)]
struct Iface {
    /// Interface number in the file.
    id: u32,
    linktype: LinkType,
    ts: TsParams,
    snaplen: u32,
}

/// Reads the packets of a pcapng file.
pub(super) struct NgSource {
    reader: PcapNgReader<File>,
    file_len: u64,
    /// Byte order of the current section.
    big_endian: bool,
    /// Interfaces of the current section, by EPB interface id.
    section: Vec<Iface>,
    /// Link types of every interface so far, by interface number.
    linktypes: Vec<LinkType>,
    /// Format updates not yet handed out (the first section header).
    pending: Vec<FormatUpdate>,
    /// Timestamp of the last packet, given to Simple Packet Blocks (which have none).
    last_ts: Timestamp,
}

impl NgSource {
    /// Reads the first Section Header Block of `file` (positioned anywhere) and sets up the
    /// block reader. Returns the source and whether the first section is big-endian.
    pub fn open(
        path: &Path,
        mut file: File,
        file_len: u64,
    ) -> Result<(NgSource, bool), CaptureError> {
        let err = |cause: String| CaptureError::at_offset(path, 0, cause);
        file.seek(SeekFrom::Start(0))
            .map_err(|e| err(format!("read error: {e}")))?;
        let mut head = [0u8; 12];
        let got = read_up_to(&mut file, &mut head).map_err(|e| err(format!("read error: {e}")))?;
        if got < 12 {
            return Err(err(format!(
                "truncated pcapng section header ({got} bytes)"
            )));
        }
        let big_endian = match [head[8], head[9], head[10], head[11]] {
            [0x1a, 0x2b, 0x3c, 0x4d] => true,
            [0x4d, 0x3c, 0x2b, 0x1a] => false,
            bom => {
                return Err(err(format!(
                    "bad pcapng byte-order magic {:02x}{:02x}{:02x}{:02x}",
                    bom[0], bom[1], bom[2], bom[3]
                )));
            }
        };
        let len = read_u32(&head[4..8], big_endian);
        if !len.is_multiple_of(4) || !(28..=MAX_SHB).contains(&len) {
            return Err(err(format!("bad pcapng section header length {len}")));
        }
        if u64::from(len) > file_len {
            return Err(err(format!(
                "file ends inside the pcapng section header ({file_len} of {len} bytes)"
            )));
        }
        let mut block = vec![0u8; len as usize];
        file.seek(SeekFrom::Start(0))
            .map_err(|e| err(format!("read error: {e}")))?;
        file.read_exact(&mut block)
            .map_err(|e| err(format!("read error: {e}")))?;
        let body = block[8..block.len() - 4].to_vec();
        file.seek(SeekFrom::Start(0))
            .map_err(|e| err(format!("read error: {e}")))?;
        let reader = PcapNgReader::new(file)
            .map_err(|e| err(format!("bad pcapng section header: {}", error_chain(&e))))?;
        let source = NgSource {
            reader,
            file_len,
            big_endian,
            section: Vec::new(),
            linktypes: Vec::new(),
            pending: vec![FormatUpdate::PcapNgSection { big_endian, body }],
            last_ts: Timestamp::default(),
        };
        Ok((source, big_endian))
    }

    /// Link types of the interfaces described so far, by interface number.
    pub fn linktypes(&self) -> &[LinkType] {
        &self.linktypes
    }

    /// Appends packets to `batch` until it holds `max` of them, the file ends or a block is bad.
    pub fn fill(
        &mut self,
        path: &Path,
        batch: &mut Batch,
        max: usize,
        next_index: &mut u64,
    ) -> Stop {
        batch.format_updates.append(&mut self.pending);
        while batch.packets.len() < max && batch.data.len() < BATCH_BYTES {
            let offset = self.reader.bytes_parsed();
            let (raw, state) = match self.reader.next_raw_block() {
                None => return Stop::End,
                Some(Ok(block)) => block,
                Some(Err(e)) => return self.read_failure(path, offset, *next_index, e),
            };
            let be = state.endianness() == Endianness::Big;
            // Section and interface blocks are copied to the output as they are: their options
            // must be whole (pcap-file decodes them leniently; Wireshark refuses such a file).
            let options_at = match raw.type_ {
                SHB => Some(("section header block", 16)),
                IDB => Some(("interface description block", 8)),
                _ => None,
            };
            if let Some((name, at)) = options_at
                && let Err(cause) = check_options(&raw.body, at, be)
            {
                let msg = format!("{name}: {cause}");
                return Stop::Failed(CaptureError::at_offset(path, offset, msg));
            }
            match raw.type_ {
                SHB => {
                    self.big_endian = be;
                    self.section.clear();
                    let update = FormatUpdate::PcapNgSection {
                        big_endian: be,
                        body: raw.body.to_vec(),
                    };
                    if batch.packets.is_empty() {
                        batch.format_updates.push(update);
                    } else {
                        // A batch never spans sections, so the writer can apply all of a
                        // batch's updates before its packets.
                        self.pending.push(update);
                        return Stop::Full;
                    }
                }
                IDB => {
                    let Some(idb) = state.interfaces().last() else {
                        return Stop::Failed(CaptureError::at_offset(
                            path,
                            offset,
                            "interface description not decoded",
                        ));
                    };
                    let Ok(id) = u32::try_from(self.linktypes.len()) else {
                        return Stop::Failed(CaptureError::at_offset(
                            path,
                            offset,
                            "too many interfaces",
                        ));
                    };
                    let iface = Iface {
                        id,
                        linktype: LinkType(u32::from(idb.linktype)),
                        ts: TsParams::new(idb.ts_resolution().to_u8(), idb.ts_offset()),
                        snaplen: idb.snaplen,
                    };
                    self.section.push(iface);
                    self.linktypes.push(iface.linktype);
                    batch.format_updates.push(FormatUpdate::PcapNgInterface {
                        id,
                        linktype: iface.linktype,
                        ts: iface.ts,
                        body: raw.body.to_vec(),
                    });
                }
                EPB | PB | SPB => {
                    let index = *next_index;
                    let fail = |cause: String| {
                        Stop::Failed(CaptureError::at_record(path, index, offset, cause))
                    };
                    let pkt = match raw.type_ {
                        SPB => {
                            let Some(iface) = self.section.first() else {
                                return fail(
                                    "simple packet block before any interface description".into(),
                                );
                            };
                            simple_packet(&raw.body, be, iface.snaplen)
                        }
                        t => packet(&raw.body, be, t == PB),
                    };
                    let pkt = match pkt {
                        Ok(p) => p,
                        Err(cause) => return fail(cause),
                    };
                    let Some(iface) = self.section.get(pkt.iface as usize) else {
                        return fail(format!(
                            "packet block refers to interface {} but its section describes {}",
                            pkt.iface,
                            self.section.len()
                        ));
                    };
                    let ts = match pkt.ts_units {
                        None => self.last_ts,
                        Some(units) => match iface.ts.decode(units) {
                            Some(ts) => ts,
                            None => {
                                return fail(format!(
                                    "timestamp {units} (resolution {}{}, offset {} s) is outside 1970-2554",
                                    if iface.ts.binary { "2^-" } else { "10^-" },
                                    iface.ts.exp,
                                    iface.ts.offset_secs
                                ));
                            }
                        },
                    };
                    let Ok(data_offset) = u32::try_from(batch.data.len()) else {
                        return fail("batch too large".into());
                    };
                    self.last_ts = ts;
                    batch.data.extend_from_slice(pkt.data);
                    batch.packets.push(PacketMeta {
                        index,
                        ts,
                        interface: iface.id,
                        linktype: iface.linktype,
                        orig_len: pkt.orig_len,
                        direction: pkt.flags.map_or(CaptureDirection::Unknown, direction_of),
                        offset: data_offset,
                        len: pkt.data.len() as u32,
                        epb_flags: pkt.flags,
                    });
                    *next_index += 1;
                }
                _ => {} // name resolution, statistics, custom, journal, unknown: not needed
            }
        }
        Stop::Full
    }

    /// Turns a block-reader error at `offset` into an error, or into a warning when the file
    /// simply ends inside the block.
    fn read_failure(&self, path: &Path, offset: u64, index: u64, e: PcapNgReadError) -> Stop {
        let eof = matches!(&e, PcapNgReadError::Io(io) if io.kind() == ErrorKind::UnexpectedEof);
        if !eof {
            return Stop::Failed(CaptureError::at_offset(
                path,
                offset,
                format!("bad pcapng block: {}", error_chain(&e)),
            ));
        }
        let remaining = self.file_len.saturating_sub(offset);
        let mut head = [0u8; 12];
        let got = File::open(path)
            .and_then(|mut f| {
                f.seek(SeekFrom::Start(offset))?;
                read_up_to(&mut f, &mut head)
            })
            .unwrap_or(0);
        if got < 8 {
            return Stop::Truncated(format!(
                "file ends inside a block header at byte offset {offset} ({remaining} bytes); the last whole record \
                 is {}",
                index - 1
            ));
        }
        let type_ = read_u32(&head[0..4], self.big_endian);
        let be = if type_ == SHB && got == 12 {
            head[8] == 0x1a
        } else {
            self.big_endian
        };
        let len = u64::from(read_u32(&head[4..8], be));
        if len > READ_BUFFER {
            return Stop::Failed(CaptureError::at_offset(
                path,
                offset,
                format!(
                    "corrupt block header: block type {type_:#x} has length {len} (limit {READ_BUFFER})"
                ),
            ));
        }
        let what = match type_ {
            EPB | PB | SPB => format!("record {index}"),
            t => format!("a block of type {t:#x}"),
        };
        Stop::Truncated(format!(
            "file ends inside {what} at byte offset {offset} ({remaining} of {len} bytes); the last whole record is {}",
            index - 1
        ))
    }
}

/// A packet block's fields.
struct Packet<'a> {
    iface: u32,
    /// `None` for Simple Packet Blocks.
    ts_units: Option<u64>,
    orig_len: u32,
    data: &'a [u8],
    flags: Option<u32>,
}

/// Decodes an Enhanced Packet Block body, or an obsolete Packet Block body (`obsolete`).
fn packet(body: &[u8], be: bool, obsolete: bool) -> Result<Packet<'_>, String> {
    let name = if obsolete {
        "packet block"
    } else {
        "enhanced packet block"
    };
    if body.len() < 20 {
        return Err(format!("{name} too short ({} bytes)", body.len() + 12));
    }
    let iface = if obsolete {
        u32::from(read_u16(&body[0..2], be))
    } else {
        read_u32(&body[0..4], be)
    };
    let ts_units =
        (u64::from(read_u32(&body[4..8], be)) << 32) | u64::from(read_u32(&body[8..12], be));
    let caplen = read_u32(&body[12..16], be) as usize;
    let orig_len = read_u32(&body[16..20], be);
    let Some(data) = body.get(20..20 + caplen) else {
        return Err(format!(
            "{name}: captured length {caplen} exceeds the block ({} bytes of data)",
            body.len() - 20
        ));
    };
    let options = body
        .get(20 + caplen.next_multiple_of(4)..)
        .unwrap_or_default();
    Ok(Packet {
        iface,
        ts_units: Some(ts_units),
        orig_len,
        data,
        flags: find_flags(options, be),
    })
}

/// Decodes a Simple Packet Block body: interface 0, captured length limited by the snaplen.
fn simple_packet(body: &[u8], be: bool, snaplen: u32) -> Result<Packet<'_>, String> {
    if body.len() < 4 {
        return Err(format!(
            "simple packet block too short ({} bytes)",
            body.len() + 12
        ));
    }
    let orig_len = read_u32(&body[0..4], be);
    let mut caplen = (orig_len as usize).min(body.len() - 4);
    if snaplen != 0 {
        caplen = caplen.min(snaplen as usize);
    }
    Ok(Packet {
        iface: 0,
        ts_units: None,
        orig_len,
        data: &body[4..4 + caplen],
        flags: None,
    })
}

/// Checks that the options of a block body, from byte `at` on, are whole: each a 4-byte header
/// and a value padded to 4 bytes inside the body, up to the end of the body or an end-of-options
/// (code 0, length 0). Block bodies are whole multiples of 4 bytes long, as pcap-file checks.
fn check_options(body: &[u8], at: usize, be: bool) -> Result<(), String> {
    let mut pos = at;
    while pos < body.len() {
        let Some(head) = body.get(pos..pos + 4) else {
            return Err(format!(
                "{} stray bytes after its options (byte {pos} of the block body)",
                body.len() - pos
            ));
        };
        let code = read_u16(&head[0..2], be);
        let len = usize::from(read_u16(&head[2..4], be));
        if code == 0 {
            return match len {
                0 => Ok(()),
                _ => Err(format!(
                    "end of options with length {len} (not 0) at byte {pos} of the block body"
                )),
            };
        }
        let end = pos + 4 + len.next_multiple_of(4);
        if end > body.len() {
            return Err(format!(
                "option {code} of length {len} at byte {pos} of the block body runs past its end ({} bytes)",
                body.len()
            ));
        }
        pos = end;
    }
    Ok(())
}

/// The `epb_flags` (code 2) option, if present and well formed.
fn find_flags(mut opts: &[u8], be: bool) -> Option<u32> {
    while opts.len() >= 4 {
        let code = read_u16(&opts[0..2], be);
        let len = usize::from(read_u16(&opts[2..4], be));
        if code == 0 || opts.len() < 4 + len {
            break;
        }
        if code == 2 && len == 4 {
            return Some(read_u32(&opts[4..8], be));
        }
        opts = opts.get(4 + len.next_multiple_of(4)..).unwrap_or_default();
    }
    None
}

/// Direction from `epb_flags` bits 0-1.
pub(super) fn direction_of(flags: u32) -> CaptureDirection {
    match flags & 3 {
        1 => CaptureDirection::Inbound,
        2 => CaptureDirection::Outbound,
        _ => CaptureDirection::Unknown,
    }
}

fn read_u16(b: &[u8], be: bool) -> u16 {
    let w = [b[0], b[1]];
    if be {
        u16::from_be_bytes(w)
    } else {
        u16::from_le_bytes(w)
    }
}

fn read_u32(b: &[u8], be: bool) -> u32 {
    let w = [b[0], b[1], b[2], b[3]];
    if be {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub(super) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
