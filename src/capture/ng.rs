//! pcapng blocks (draft-ietf-opsawg-pcapng §3-§4): framed here, block by block, and decoded
//! here without allocating per packet. Section headers and interface descriptions are read for
//! what the replay needs (byte order; link type, snaplen, `if_tsresol`, `if_tsoffset`) and
//! otherwise kept as bytes, so an option's contents (say a description that is not UTF-8)
//! never stop a capture from being replayed.

use super::pcap::BATCH_BYTES;
use super::{
    Batch, CaptureDirection, CaptureError, FormatUpdate, LinkType, OptionRange, PacketMeta, Stop,
    TsParams,
};
use crate::time::Timestamp;
use std::fs::File;
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;

/// Section Header Block type (also the pcapng magic).
pub(super) const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
/// `epb_flags` and `epb_dropcount` option codes.
pub(super) const EPB_FLAGS: u16 = 2;
const EPB_DROPCOUNT: u16 = 4;
/// Decryption Secrets Block.
const DSB: u32 = 0x0a;
/// Custom block that may be copied to another file.
const CB_COPY: u32 = 0x0bad;
/// A block longer than this is corrupt (what pcap-file's reader, used before, could hold).
const READ_BUFFER: u64 = 8_000_000;
/// A first Section Header Block longer than this is corrupt.
const MAX_SHB: u32 = 1 << 20;
/// Bytes read from the file at a time.
const READ_CHUNK: usize = 1 << 20;

/// One interface of the current section.
#[derive(Clone, Copy, Debug)]
struct Iface {
    /// Interface number in the file.
    id: u32,
    linktype: LinkType,
    ts: TsParams,
    snaplen: u32,
    /// `if_fcslen`, in bytes (0: none or unknown).
    fcs_len: u8,
}

/// Reads the packets of a pcapng file.
pub(super) struct NgSource {
    input: BufReader<File>,
    file_len: u64,
    /// File offset of the next block.
    offset: u64,
    /// Byte order of the current section.
    big_endian: bool,
    /// Interfaces of the current section, by EPB interface id.
    section: Vec<Iface>,
    /// Link types of every interface so far, by interface number.
    linktypes: Vec<LinkType>,
    /// Format updates not yet handed out (a section header met after a batch's packets).
    pending: Vec<FormatUpdate>,
    /// Timestamp of the last packet block that has one, given to the Simple Packet Blocks
    /// after it (which have none).
    last_ts: Option<Timestamp>,
    /// For Simple Packet Blocks before any timestamp: the first timestamp after them in the
    /// file, once looked for (`Some(None)`: the file has none).
    lead_ts: Option<Option<Timestamp>>,
    /// The body of the block being read (reused).
    body: Vec<u8>,
}

/// A block read: its type; its body is in [`NgSource::body`].
enum Next {
    Block(u32),
    Stop(Stop),
}

impl NgSource {
    /// Checks the first Section Header Block of `file` (positioned anywhere) and sets up the
    /// block reader at the start of the file. Returns the source and whether the first section
    /// is big-endian.
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
        file.seek(SeekFrom::Start(0))
            .map_err(|e| err(format!("read error: {e}")))?;
        let source = NgSource {
            input: BufReader::with_capacity(READ_CHUNK, file),
            file_len,
            offset: 0,
            big_endian,
            section: Vec::new(),
            linktypes: Vec::new(),
            pending: Vec::new(),
            last_ts: None,
            lead_ts: None,
            body: Vec::new(),
        };
        Ok((source, big_endian))
    }

    /// Link types of the interfaces described so far, by interface number.
    pub fn linktypes(&self) -> &[LinkType] {
        &self.linktypes
    }

    /// Reads the block at [`NgSource::offset`] into [`NgSource::body`] (a section header sets
    /// the byte order it is read in) and moves past it. `index` is the number of the next
    /// packet, for messages.
    fn next_block(&mut self, path: &Path, index: u64) -> Next {
        let offset = self.offset;
        let remaining = self.file_len.saturating_sub(offset);
        let last = index - 1;
        let failed =
            |cause: String| Next::Stop(Stop::Failed(CaptureError::at_offset(path, offset, cause)));
        let mut head = [0u8; 12];
        let got = match read_up_to(&mut self.input, &mut head[..8]) {
            Ok(n) => n,
            Err(e) => return failed(format!("read error: {e}")),
        };
        if got == 0 {
            return Next::Stop(Stop::End);
        }
        if got < 8 {
            return Next::Stop(Stop::Truncated(format!(
                "file ends inside a block header at byte offset {offset} ({remaining} bytes); the last whole record is {last}"
            )));
        }
        let mut type_ = read_u32(&head[0..4], self.big_endian);
        let mut head_len = 8;
        if type_ == SHB {
            // A section header says its byte order after its length.
            let got = match read_up_to(&mut self.input, &mut head[8..12]) {
                Ok(n) => n,
                Err(e) => return failed(format!("read error: {e}")),
            };
            if got < 4 {
                return Next::Stop(Stop::Truncated(format!(
                    "file ends inside a block of type {SHB:#x} at byte offset {offset} ({remaining} bytes); the last whole \
                     record is {last}"
                )));
            }
            self.big_endian = match [head[8], head[9], head[10], head[11]] {
                [0x1a, 0x2b, 0x3c, 0x4d] => true,
                [0x4d, 0x3c, 0x2b, 0x1a] => false,
                bom => {
                    return failed(format!(
                        "bad pcapng block: section header with byte-order magic {:02x}{:02x}{:02x}{:02x}",
                        bom[0], bom[1], bom[2], bom[3]
                    ));
                }
            };
            type_ = SHB;
            head_len = 12;
        }
        let len = read_u32(&head[4..8], self.big_endian);
        if u64::from(len) > READ_BUFFER {
            return failed(format!(
                "corrupt block header: block type {type_:#x} has length {len} (limit {READ_BUFFER})"
            ));
        }
        let least = if type_ == SHB { 28 } else { 12 };
        if len < least || !len.is_multiple_of(4) {
            return failed(format!(
                "bad pcapng block: block type {type_:#x} has length {len}; a block's length is a multiple of 4 and at least {least}"
            ));
        }
        // The body and the trailing length, less what the header read took of the body.
        let rest = len as usize - head_len;
        self.body.clear();
        self.body.extend_from_slice(&head[8..head_len]);
        self.body.resize(len as usize - 8, 0);
        let got = match read_up_to(&mut self.input, &mut self.body[head_len - 8..]) {
            Ok(n) => n,
            Err(e) => return failed(format!("read error: {e}")),
        };
        if got < rest {
            let what = match type_ {
                EPB | PB | SPB => format!("record {index}"),
                t => format!("a block of type {t:#x}"),
            };
            return Next::Stop(Stop::Truncated(format!(
                "file ends inside {what} at byte offset {offset} ({remaining} of {len} bytes); the last whole record is {last}"
            )));
        }
        let body_len = len as usize - 12;
        let trailer = read_u32(&self.body[body_len..], self.big_endian);
        if trailer != len {
            return failed(format!(
                "bad pcapng block: block type {type_:#x} has length {len} but its trailing length is {trailer}"
            ));
        }
        self.body.truncate(body_len);
        self.offset += u64::from(len);
        Next::Block(type_)
    }

    /// The timestamp of the first packet block after the current block that has one (an
    /// enhanced or obsolete packet block), read from a second handle on the file; `None` when
    /// there is none or the file goes bad first (the main reader will say so when it gets
    /// there). Simple Packet Blocks that come before any timestamp take it.
    fn timestamp_ahead(&self, path: &Path) -> Option<Timestamp> {
        let mut file = File::open(path).ok()?;
        file.seek(SeekFrom::Start(self.offset)).ok()?;
        let mut scan = NgSource {
            input: BufReader::with_capacity(READ_CHUNK, file),
            file_len: self.file_len,
            offset: self.offset,
            big_endian: self.big_endian,
            section: self.section.clone(),
            linktypes: Vec::new(),
            pending: Vec::new(),
            last_ts: None,
            lead_ts: Some(None),
            body: Vec::new(),
        };
        loop {
            let Next::Block(type_) = scan.next_block(path, 1) else {
                return None;
            };
            let (body, be) = (&scan.body[..], scan.big_endian);
            match type_ {
                SHB => scan.section.clear(),
                IDB => scan.section.push(interface(body, be, 0).ok()?),
                EPB | PB => {
                    let pkt = packet(body, be, type_ == PB).ok()?;
                    let iface = scan.section.get(pkt.iface as usize)?;
                    return iface.ts.decode(pkt.ts_units?);
                }
                _ => {}
            }
        }
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
            let offset = self.offset;
            let type_ = match self.next_block(path, *next_index) {
                Next::Block(t) => t,
                Next::Stop(stop) => return stop,
            };
            let be = self.big_endian;
            let body = &self.body[..];
            // Section and interface blocks are copied to the output as they are: their options
            // must be whole (Wireshark refuses a file whose options are not).
            let options_at = match type_ {
                SHB => Some(("section header block", 16)),
                IDB => Some(("interface description block", 8)),
                _ => None,
            };
            if let Some((name, at)) = options_at
                && let Err(cause) = check_options(body, at, be)
            {
                let msg = format!("{name}: {cause}");
                return Stop::Failed(CaptureError::at_offset(path, offset, msg));
            }
            // pcapng §4.1: a reader must not read a section of a major version it does not know.
            if type_ == SHB
                && let Some(v) = body.get(4..6).map(|b| read_u16(b, be))
                && v != 1
            {
                let msg = format!(
                    "section header block: pcapng major version {v}; only version 1 is read"
                );
                return Stop::Failed(CaptureError::at_offset(path, offset, msg));
            }
            match type_ {
                SHB => {
                    self.section.clear();
                    let update = FormatUpdate::Section {
                        big_endian: be,
                        body: body.to_vec(),
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
                    let Ok(id) = u32::try_from(self.linktypes.len()) else {
                        return Stop::Failed(CaptureError::at_offset(
                            path,
                            offset,
                            "too many interfaces",
                        ));
                    };
                    let iface = match interface(body, be, id) {
                        Ok(i) => i,
                        Err(cause) => {
                            let msg =
                                format!("interface description block (interface {id}): {cause}");
                            return Stop::Failed(CaptureError::at_offset(path, offset, msg));
                        }
                    };
                    self.section.push(iface);
                    self.linktypes.push(iface.linktype);
                    batch.format_updates.push(FormatUpdate::Interface {
                        at: batch.packets.len() as u32,
                        id,
                        linktype: iface.linktype,
                        ts: iface.ts,
                        body: body.to_vec(),
                    });
                }
                EPB | PB | SPB => {
                    let index = *next_index;
                    let fail = |cause: String| {
                        Stop::Failed(CaptureError::at_record(path, index, offset, cause))
                    };
                    let pkt = match type_ {
                        SPB => {
                            let Some(iface) = self.section.first() else {
                                return fail(
                                    "simple packet block before any interface description".into(),
                                );
                            };
                            simple_packet(body, be, iface.snaplen)
                        }
                        t => packet(body, be, t == PB),
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
                        None => match (self.last_ts, self.lead_ts) {
                            (Some(ts), _) => ts,
                            (None, Some(lead)) => lead.unwrap_or_default(),
                            (None, None) => {
                                let lead = self.timestamp_ahead(path);
                                self.lead_ts = Some(lead);
                                lead.unwrap_or_default()
                            }
                        },
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
                    let Ok(options) = keep_options(&mut batch.options, &pkt, be) else {
                        return fail("batch too large".into());
                    };
                    if pkt.ts_units.is_some() {
                        self.last_ts = Some(ts);
                    }
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
                        rewritten: false,
                        options,
                        simple: pkt.ts_units.is_none(),
                        fcs_len: match pkt.flags.map_or(0, |f| (f >> 5) & 0xf) {
                            0 => iface.fcs_len,
                            n => n as u8,
                        },
                    });
                    *next_index += 1;
                }
                // Secrets to decrypt the packets after it, custom blocks that may be copied
                // (pcapng §4.6, §4.7): written where they stood among the packets.
                DSB | CB_COPY => batch.format_updates.push(FormatUpdate::Block {
                    at: batch.packets.len() as u32,
                    type_,
                    body: body.to_vec(),
                }),
                // Name resolution (the replay rewrites addresses), interface statistics (they
                // count packets the replay may drop or add), custom blocks that must not be
                // copied (§4.7), journal entries and unknown blocks: not written.
                _ => {}
            }
        }
        Stop::Full
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
    /// The block's options (after the packet data).
    options: &'a [u8],
    /// An obsolete Packet Block's drop count, when known.
    drops: Option<u16>,
}

/// Decodes an Enhanced Packet Block body, or an obsolete Packet Block body (`obsolete`, pcapng
/// appendix: the same layout with a 16-bit interface id and a 16-bit drop count).
fn packet(body: &[u8], be: bool, obsolete: bool) -> Result<Packet<'_>, String> {
    let name = if obsolete {
        "packet block"
    } else {
        "enhanced packet block"
    };
    if body.len() < 20 {
        return Err(format!("{name} too short ({} bytes)", body.len() + 12));
    }
    let (iface, drops) = if obsolete {
        let drops = read_u16(&body[2..4], be);
        (
            u32::from(read_u16(&body[0..2], be)),
            (drops != 0xffff).then_some(drops),
        )
    } else {
        (read_u32(&body[0..4], be), None)
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
        options,
        drops,
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
        options: &[],
        drops: None,
    })
}

/// Appends to `out` the options of `pkt` the writer copies (pcapng §4.3: `opt_comment`,
/// `epb_hash`, `epb_dropcount`, `epb_packetid`, `epb_queue`, `epb_verdict`, custom options
/// that may be copied, and any other), whole and in the section's byte order, and returns
/// where they lie. Left out: `epb_flags` (kept apart, [`PacketMeta::epb_flags`]), the end of
/// options, and custom options that must not be copied (codes 19372 and 19373, §3.5.1). An
/// obsolete Packet Block's drop count becomes `epb_dropcount`. `Err` when `out` would pass
/// 4 GiB.
fn keep_options(out: &mut Vec<u8>, pkt: &Packet<'_>, be: bool) -> Result<OptionRange, ()> {
    let at = out.len();
    for (code, value) in options(pkt.options, be) {
        if matches!(code, EPB_FLAGS | 19372 | 19373) {
            continue;
        }
        put_option(out, code, value, be);
    }
    if let Some(drops) = pkt.drops {
        let v = u64::from(drops);
        put_option(
            out,
            EPB_DROPCOUNT,
            &if be { v.to_be_bytes() } else { v.to_le_bytes() },
            be,
        );
    }
    let range = OptionRange {
        at: u32::try_from(at).map_err(|_| ())?,
        len: u32::try_from(out.len() - at).map_err(|_| ())?,
    };
    Ok(range)
}

/// Appends one option (header, value, padding) in the given byte order.
pub(super) fn put_option(out: &mut Vec<u8>, code: u16, value: &[u8], be: bool) {
    let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    out.extend_from_slice(&w16(code));
    out.extend_from_slice(&w16(value.len() as u16));
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// Decodes an Interface Description Block body (interface number `id`): link type, snaplen,
/// the options that say how its packets' timestamps are encoded (`if_tsresol`,
/// `if_tsoffset`; pcapng §4.2) and `if_fcslen` (in bits, as §4.2 says and Wireshark reads
/// it). Other options are not decoded (they are copied as bytes).
///
/// A resolution finer than 1 ns (2^-30 s and finer, 10^-10 s and finer) is refused: the replay
/// keeps nanoseconds, so such timestamps could not be written back as they were.
fn interface(body: &[u8], be: bool, id: u32) -> Result<Iface, String> {
    if body.len() < 8 {
        return Err(format!("too short ({} bytes)", body.len() + 12));
    }
    let linktype = LinkType(u32::from(read_u16(&body[0..2], be)));
    let snaplen = read_u32(&body[4..8], be);
    let (mut tsresol, mut tsoffset, mut fcs_bits) = (None, None, None);
    for (code, value) in options(&body[8..], be) {
        let (name, size) = match code {
            9 => ("if_tsresol", 1),
            13 => ("if_fcslen", 1),
            14 => ("if_tsoffset", 8),
            _ => continue,
        };
        if value.len() != size {
            return Err(format!(
                "option {name} has length {} (not {size})",
                value.len()
            ));
        }
        match code {
            9 => tsresol = tsresol.or(Some(value[0])),
            13 => fcs_bits = fcs_bits.or(Some(value[0])),
            _ => {
                let v: [u8; 8] = value.try_into().unwrap_or_default();
                let v = if be {
                    i64::from_be_bytes(v)
                } else {
                    i64::from_le_bytes(v)
                };
                tsoffset = tsoffset.or(Some(v));
            }
        }
    }
    // pcapng §4.2: microseconds when absent.
    let tsresol = tsresol.unwrap_or(6);
    let ts = TsParams::new(tsresol, tsoffset.unwrap_or(0));
    let finest = if ts.binary { 29 } else { 9 };
    if ts.exp > finest {
        return Err(format!(
            "timestamp resolution {}{} s (if_tsresol {tsresol:#04x}) is finer than the 1 ns lsnat keeps",
            if ts.binary { "2^-" } else { "10^-" },
            ts.exp
        ));
    }
    Ok(Iface {
        id,
        linktype,
        ts,
        snaplen,
        fcs_len: fcs_bits.unwrap_or(0) / 8,
    })
}

/// The options of a block, from the start of `opts`: (code, value) pairs up to the end or an
/// end-of-options; an option that runs past the end ends the list.
pub(super) fn options(mut opts: &[u8], be: bool) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let head = opts.get(..4)?;
        let code = read_u16(&head[0..2], be);
        let len = usize::from(read_u16(&head[2..4], be));
        if code == 0 {
            return None;
        }
        let value = opts.get(4..4 + len)?;
        opts = opts.get(4 + len.next_multiple_of(4)..).unwrap_or_default();
        Some((code, value))
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
fn find_flags(opts: &[u8], be: bool) -> Option<u32> {
    options(opts, be)
        .find(|(code, value)| *code == EPB_FLAGS && value.len() == 4)
        .map(|(_, value)| read_u32(value, be))
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
