//! Capture writing: mirrors the reader's format into `PATH.partial`, which [`CaptureWriter::finish`]
//! renames to `PATH`.
//!
//! Records are framed by hand straight into an [`OutputFile`] (pcap-file's writers validate and
//! re-encode every field, several small writes per packet), which writes them around the page
//! cache from its own thread: a rewritten capture is as big as its input and not read back. pcap files get the input's
//! global header back verbatim; pcapng files get the input's section and interface blocks
//! verbatim (options included, so `if_tsresol` and `if_tsoffset` survive), the decryption
//! secrets and copyable custom blocks where they stood, and one Enhanced Packet Block per
//! packet, with its timestamp in its interface's resolution, its flags and its options (a
//! Simple Packet Block stays one: it has no timestamp to write).
use super::ng::{EPB_FLAGS, SHB, put_option};
use super::*;
use crate::output_file::{OutputError, OutputFile};
use std::io::Write;
use std::path::Path;

const IDB: u32 = 1;
const SPB: u32 = 3;
const EPB: u32 = 6;
/// `epb_hash` option code.
const EPB_HASH: u16 = 3;
/// The `epb_flags` bits a packet the replay made keeps: the direction (0-1) and the FCS
/// length (5-8).
const EPB_FLAGS_KEPT: u32 = 0x1e3;

/// Writes a capture in the reader's format.
pub struct CaptureWriter {
    /// The file being written (named in errors).
    partial: PathBuf,
    /// `None` only while finishing. Dropping it unfinished removes the partial file.
    out: Option<OutputFile>,
    mode: Mode,
    /// Bytes written so far.
    position: u64,
    /// How many of the current batch's format updates are written.
    next_update: usize,
    /// A packet's options as written (reused).
    options: Vec<u8>,
}

/// The output format and, for pcapng, what has been written of it.
enum Mode {
    Pcap {
        big_endian: bool,
        nanos: bool,
        /// The global header's snaplen (0: none said).
        snaplen: u32,
    },
    PcapNg(NgOut),
}

/// pcapng output state.
struct NgOut {
    /// Byte order of the section being written; `None` before the first section header.
    section: Option<bool>,
    /// Byte order for a section header made up here (when the input gave none).
    default_big_endian: bool,
    /// Interface number of the current section's first interface.
    base: u32,
    /// Timestamp encodings of the current section's interfaces, by EPB interface id.
    ifaces: Vec<TsParams>,
    /// Their snaplens (0: none).
    snaplens: Vec<u32>,
    /// The byte order of the section of every interface so far, by interface number.
    byte_orders: Vec<bool>,
}

impl CaptureWriter {
    /// Creates `PATH.partial` (and writes the pcap global header).
    pub fn create(path: &Path, format: &CaptureFormat) -> Result<Self, CaptureError> {
        let out = OutputFile::create(path).map_err(output_error)?;
        let mode = match format {
            CaptureFormat::Pcap {
                header,
                nanos,
                big_endian,
                ..
            } => Mode::Pcap {
                big_endian: *big_endian,
                nanos: *nanos,
                snaplen: read32(&header[16..20], *big_endian),
            },
            CaptureFormat::PcapNg { big_endian } => Mode::PcapNg(NgOut {
                section: None,
                default_big_endian: *big_endian,
                base: 0,
                ifaces: Vec::new(),
                snaplens: Vec::new(),
                byte_orders: Vec::new(),
            }),
        };
        let mut writer = CaptureWriter {
            partial: out.partial().into(),
            out: Some(out),
            mode,
            position: 0,
            next_update: 0,
            options: Vec::new(),
        };
        if let CaptureFormat::Pcap { header, .. } = format {
            writer.put(None, header)?;
        }
        Ok(writer)
    }

    /// Writes packet `i` of `batch` (its current, possibly rewritten, bytes) with its options,
    /// after the blocks that stood before it ([`CaptureWriter::blocks_before`]). A packet marked
    /// [`PacketMeta::rewritten`] loses its `epb_hash`, which no longer matches its bytes.
    pub fn write(&mut self, batch: &Batch, i: usize) -> Result<(), CaptureError> {
        let data = self.packet_bytes(batch, i)?;
        self.write_packet(batch, i, data, batch.packets[i].rewritten)
    }

    /// Writes packet `i` of `batch` with `data`, its bytes as captured (kept aside before they
    /// were rewritten), its metadata and all its options.
    pub fn write_as_captured(
        &mut self,
        batch: &Batch,
        i: usize,
        data: &[u8],
    ) -> Result<(), CaptureError> {
        self.packet_bytes(batch, i)?;
        self.write_packet(batch, i, data, false)
    }

    /// Writes packet `i` of `batch` as `data`, its frame rewritten to another length (the FTP
    /// gateway's text of another length): its metadata with its original length changed by as
    /// much, its options but its `epb_hash`.
    pub fn write_resized(
        &mut self,
        batch: &Batch,
        i: usize,
        data: &[u8],
    ) -> Result<(), CaptureError> {
        self.packet_bytes(batch, i)?;
        self.write_packet(batch, i, data, true)
    }

    /// Packet `i`'s bytes in `batch`, or an error naming what is wrong.
    fn packet_bytes<'b>(&self, batch: &'b Batch, i: usize) -> Result<&'b [u8], CaptureError> {
        let Some(m) = batch.packets.get(i) else {
            return Err(self.error(
                None,
                format!("no packet {i} in a batch of {}", batch.packets.len()),
            ));
        };
        let (start, len) = (m.offset as usize, m.len as usize);
        batch
            .data
            .get(start..start + len)
            .ok_or_else(|| self.error(Some(m.index), "packet bytes lie outside the batch".into()))
    }

    /// Writes packet `i` of `batch` with `data` and the options it came with (without
    /// `epb_hash` when `drop_hash`), after the blocks that stood before it.
    fn write_packet(
        &mut self,
        batch: &Batch,
        i: usize,
        data: &[u8],
        drop_hash: bool,
    ) -> Result<(), CaptureError> {
        self.blocks_before(batch, i)?;
        let m = &batch.packets[i];
        let mut options = std::mem::take(&mut self.options);
        options.clear();
        if let Mode::PcapNg(ng) = &self.mode {
            let be = ng.section == Some(true);
            let r = m.options;
            let all = batch
                .options
                .get(r.at as usize..(r.at + r.len) as usize)
                .unwrap_or_default();
            if drop_hash {
                for (code, value) in super::ng::options(all, be) {
                    if code != EPB_HASH {
                        put_option(&mut options, code, value, be);
                    }
                }
            } else {
                options.extend_from_slice(all);
            }
        }
        // A frame of another length than captured (`write_resized`): its original length
        // changes by as much.
        let resized;
        let m = match data.len() as i64 - i64::from(m.len) {
            0 => m,
            d => {
                resized = PacketMeta {
                    len: data.len() as u32,
                    orig_len: (i64::from(m.orig_len) + d).max(0) as u32,
                    ..*m
                };
                &resized
            }
        };
        let res = self.write_meta(m, data, &options);
        self.options = options;
        res
    }

    /// Writes `data` as a packet the replay made (a held fragment released, an ICMP time
    /// exceeded) with `m`'s timestamp, interface and original length, as an enhanced packet
    /// block (pcapng): no options from the capture, and of `epb_flags` only the direction
    /// ([`PacketMeta::direction`]) and the FCS length (bits 5-8, which describe the frame).
    /// Like every record of the file, it is cut to the snaplen of the file (pcap) or of its
    /// interface (pcapng), its original length kept.
    pub fn write_bytes(&mut self, m: &PacketMeta, data: &[u8]) -> Result<(), CaptureError> {
        let m = PacketMeta {
            epb_flags: m.epb_flags.map(|f| f & EPB_FLAGS_KEPT),
            simple: false,
            ..*m
        };
        self.write_cut(&m, data, &[])
    }

    /// Writes `data`, a packet as it was captured on interface `captured_on` (a fragment held
    /// for its first, read in an earlier batch), as it came: `m`'s metadata and flags, a
    /// simple packet block staying one, and its `options` (whole, in the byte order of the
    /// section it was captured in: rewritten in the current section's when that differs).
    pub fn write_as_sent(
        &mut self,
        m: &PacketMeta,
        captured_on: u32,
        data: &[u8],
        options: &[u8],
    ) -> Result<(), CaptureError> {
        let mut opts = std::mem::take(&mut self.options);
        opts.clear();
        match &self.mode {
            Mode::PcapNg(ng) => {
                let be = ng.section == Some(true);
                match ng.byte_orders.get(captured_on as usize) {
                    Some(&was) if was != be => {
                        for (code, value) in super::ng::options(options, was) {
                            put_option(&mut opts, code, value, be);
                        }
                    }
                    _ => opts.extend_from_slice(options),
                }
            }
            Mode::Pcap { .. } => {}
        }
        let res = self.write_cut(m, data, &opts);
        self.options = opts;
        res
    }

    /// Writes `data` with `m` and `options`, cut to the snaplen of the file or interface.
    fn write_cut(
        &mut self,
        m: &PacketMeta,
        data: &[u8],
        options: &[u8],
    ) -> Result<(), CaptureError> {
        let snaplen = match &self.mode {
            Mode::Pcap { snaplen, .. } => *snaplen,
            Mode::PcapNg(ng) => m
                .interface
                .checked_sub(ng.base)
                .and_then(|l| ng.snaplens.get(l as usize).copied())
                .unwrap_or(0),
        };
        let data = match snaplen {
            0 => data,
            n => &data[..data.len().min(n as usize)],
        };
        self.write_meta(m, data, options)
    }

    /// Writes `data` as a packet with `m`'s timestamp, interface, original length and flags,
    /// and these options (whole, in the section's byte order).
    fn write_meta(
        &mut self,
        m: &PacketMeta,
        data: &[u8],
        options: &[u8],
    ) -> Result<(), CaptureError> {
        if matches!(&self.mode, Mode::PcapNg(ng) if ng.section.is_none()) {
            self.default_section()?;
        }
        match &self.mode {
            Mode::Pcap {
                big_endian, nanos, ..
            } => {
                let (be, nanos) = (*big_endian, *nanos);
                self.write_pcap(m, data, be, nanos)
            }
            Mode::PcapNg(ng) => {
                let be = ng.section == Some(true);
                let local = m
                    .interface
                    .checked_sub(ng.base)
                    .filter(|l| (*l as usize) < ng.ifaces.len());
                let Some(local) = local else {
                    let cause = format!(
                        "interface {} has no interface description in the output",
                        m.interface
                    );
                    return Err(self.error(Some(m.index), cause));
                };
                if m.simple && local == 0 {
                    return self.write_spb(m, data, be);
                }
                let ts = ng.ifaces[local as usize];
                self.write_epb(m, data, be, local, ts, options)
            }
        }
    }

    /// Writes a pcap record.
    fn write_pcap(
        &mut self,
        m: &PacketMeta,
        data: &[u8],
        be: bool,
        nanos: bool,
    ) -> Result<(), CaptureError> {
        let ns = m.ts.nanos();
        let Ok(secs) = u32::try_from(ns / 1_000_000_000) else {
            return Err(self.error(
                Some(m.index),
                format!("timestamp {} is after 2106, beyond pcap", m.ts),
            ));
        };
        let sub = (ns % 1_000_000_000) as u32;
        let mut hdr = [0u8; 16];
        put32(&mut hdr[0..], secs, be);
        put32(&mut hdr[4..], if nanos { sub } else { sub / 1_000 }, be);
        put32(&mut hdr[8..], data.len() as u32, be);
        put32(&mut hdr[12..], m.orig_len, be);
        self.put(Some(m.index), &hdr)?;
        self.put(Some(m.index), data)
    }

    /// Writes every packet of `batch`, as [`CaptureWriter::write`] would one by one, and
    /// returns how many. A classic pcap batch whose records need no change of header
    /// (`Records::verbatim`) is written as it lies in the batch: straight from the batch's
    /// memory when it sits where the output file needs it ([`OutputFile::write_in_place`];
    /// the bytes of `batch.data` before the first record may be overwritten), else with one
    /// copy of all its records.
    pub fn write_all(&mut self, batch: &mut Batch) -> Result<usize, CaptureError> {
        let records = batch.records.filter(|r| r.verbatim);
        let (Some(r), Mode::Pcap { .. }, Some(out)) = (records, &self.mode, self.out.as_mut())
        else {
            for i in 0..batch.packets.len() {
                self.write(batch, i)?;
            }
            self.end_batch(batch)?;
            return Ok(batch.packets.len());
        };
        let len = (batch.data.len() - r.start) as u64;
        let pad = batch.data.as_ptr().addr().wrapping_neg() % super::pcap::RECORD_ALIGN;
        let written = match batch.data.get_mut(pad..).filter(|_| r.start >= pad) {
            Some(region) => out.write_in_place(region, r.start - pad),
            None => Ok(false),
        };
        let first = batch.packets.first().map(|m| m.index);
        let res = match written {
            Ok(true) => Ok(()),
            Ok(false) => out.write_all(&batch.data[r.start..]),
            Err(e) => Err(e),
        };
        res.map_err(|e| self.error(first, format!("write error: {e}")))?;
        self.position += len;
        Ok(batch.packets.len())
    }

    /// Whether a packet on `interface` can be written here now: always in a pcap; in a pcapng,
    /// when the interface is one of the current section's (a packet held from an earlier
    /// section is not).
    pub fn describes(&self, interface: u32) -> bool {
        match &self.mode {
            Mode::Pcap { .. } => true,
            Mode::PcapNg(ng) => interface
                .checked_sub(ng.base)
                .is_some_and(|l| (l as usize) < ng.ifaces.len()),
        }
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Writes a Simple Packet Block (pcapng §4.4: the section's first interface, no timestamp,
    /// no options; its captured length is the smaller of the original length and the snaplen,
    /// which the reader found to be `data`'s length).
    fn write_spb(&mut self, m: &PacketMeta, data: &[u8], be: bool) -> Result<(), CaptureError> {
        let len = data.len();
        let pad = len.next_multiple_of(4) - len;
        let Ok(total) = u32::try_from(16 + len + pad) else {
            return Err(self.error(
                Some(m.index),
                format!("packet of {len} bytes too large for pcapng"),
            ));
        };
        let mut hdr = [0u8; 12];
        for (k, v) in [SPB, total, m.orig_len].into_iter().enumerate() {
            put32(&mut hdr[4 * k..], v, be);
        }
        let mut tail = [0u8; 3 + 4];
        put32(&mut tail[pad..], total, be);
        self.put(Some(m.index), &hdr)?;
        self.put(Some(m.index), data)?;
        self.put(Some(m.index), &tail[..pad + 4])
    }

    /// Writes an Enhanced Packet Block for interface `local` of the current section, with its
    /// flags and `options` (whole, in the section's byte order).
    fn write_epb(
        &mut self,
        m: &PacketMeta,
        data: &[u8],
        be: bool,
        local: u32,
        ts: TsParams,
        options: &[u8],
    ) -> Result<(), CaptureError> {
        let Some(units) = ts.encode(m.ts) else {
            let cause = format!(
                "timestamp {} cannot be expressed in its interface's resolution",
                m.ts
            );
            return Err(self.error(Some(m.index), cause));
        };
        let flags = match m.direction {
            CaptureDirection::Inbound => Some((m.epb_flags.unwrap_or(0) & !3) | 1),
            CaptureDirection::Outbound => Some((m.epb_flags.unwrap_or(0) & !3) | 2),
            CaptureDirection::Unknown => m.epb_flags,
        };
        let len = data.len();
        let pad = len.next_multiple_of(4) - len;
        let flags_len = if flags.is_some() { 8 } else { 0 };
        // The options, then the end of options (4 zero bytes) if there are any.
        let opts_len = match flags_len + options.len() {
            0 => 0,
            n => n + 4,
        };
        let Ok(total) = u32::try_from(32 + len + pad + opts_len) else {
            return Err(self.error(
                Some(m.index),
                format!("packet of {len} bytes too large for pcapng"),
            ));
        };
        let mut hdr = [0u8; 28];
        let fields = [
            EPB,
            total,
            local,
            (units >> 32) as u32,
            units as u32,
            len as u32,
            m.orig_len,
        ];
        for (k, v) in fields.into_iter().enumerate() {
            put32(&mut hdr[4 * k..], v, be);
        }
        // Padding and the flags option.
        let mut mid = [0u8; 3 + 8];
        let mut n = pad;
        if let Some(f) = flags {
            put16(&mut mid[n..], EPB_FLAGS, be);
            put16(&mut mid[n + 2..], 4, be);
            put32(&mut mid[n + 4..], f, be);
            n += 8;
        }
        // End of options (all zeros) and the trailing length.
        let mut tail = [0u8; 8];
        let k = if opts_len > 0 { 4 } else { 0 };
        put32(&mut tail[k..], total, be);
        self.put(Some(m.index), &hdr)?;
        self.put(Some(m.index), data)?;
        self.put(Some(m.index), &mid[..n])?;
        if !options.is_empty() {
            self.put(Some(m.index), options)?;
        }
        self.put(Some(m.index), &tail[..k + 4])
    }

    /// Starts writing `batch`: writes the format updates that stood before its first packet
    /// (pcapng section headers, interface descriptions, copied blocks). Call it once per batch
    /// before writing any of it, and [`CaptureWriter::end_batch`] after.
    pub fn begin_batch(&mut self, batch: &Batch) -> Result<(), CaptureError> {
        self.next_update = 0;
        self.blocks_before(batch, 0)
    }

    /// Writes the format updates of `batch` that stood before its packet `i` and are not
    /// written yet. Writing a packet does this itself; call it for a packet that is not
    /// written, so that what is written after it still comes after them.
    pub fn blocks_before(&mut self, batch: &Batch, i: usize) -> Result<(), CaptureError> {
        if matches!(self.mode, Mode::Pcap { .. }) {
            return Ok(());
        }
        while let Some(update) = batch.format_updates.get(self.next_update) {
            if update.at() as usize > i {
                break;
            }
            self.next_update += 1;
            if !matches!(update, FormatUpdate::Section { .. })
                && matches!(&self.mode, Mode::PcapNg(ng) if ng.section.is_none())
            {
                self.default_section()?;
            }
            let be = matches!(&self.mode, Mode::PcapNg(ng) if ng.section == Some(true));
            match update {
                FormatUpdate::Section { big_endian, body } => self.section(*big_endian, body)?,
                FormatUpdate::Interface { id, ts, body, .. } => {
                    let Mode::PcapNg(ng) = &mut self.mode else {
                        return Ok(());
                    };
                    if ng.ifaces.is_empty() {
                        ng.base = *id;
                    }
                    if ng.base.checked_add(ng.ifaces.len() as u32) != Some(*id) {
                        let cause = format!("interface {id} is out of order");
                        return Err(self.error(None, cause));
                    }
                    ng.ifaces.push(*ts);
                    if ng.byte_orders.len() <= *id as usize {
                        ng.byte_orders.resize(*id as usize + 1, be);
                    }
                    ng.byte_orders[*id as usize] = be;
                    ng.snaplens
                        .push(body.get(4..8).map_or(0, |b| read32(b, be)));
                    self.block(IDB, body, be)?;
                }
                FormatUpdate::Block { type_, body, .. } => self.block(*type_, body, be)?,
            }
        }
        Ok(())
    }

    /// Writes the format updates of `batch` that came after its last packet.
    pub fn end_batch(&mut self, batch: &Batch) -> Result<(), CaptureError> {
        self.blocks_before(batch, usize::MAX)
    }

    /// Flushes and renames `PATH.partial` to `PATH`.
    pub fn finish(mut self) -> Result<(), CaptureError> {
        if matches!(&self.mode, Mode::PcapNg(ng) if ng.section.is_none()) {
            self.default_section()?;
        }
        let Some(out) = self.out.take() else {
            return Err(self.error(None, "already finished".into()));
        };
        out.finish().map_err(output_error)
    }

    /// Starts a pcapng section with this header block body (its section length is reset to
    /// "unknown", since the packets may change size).
    fn section(&mut self, big_endian: bool, body: &[u8]) -> Result<(), CaptureError> {
        if body.len() < 16 || !body.len().is_multiple_of(4) {
            return Err(self.error(
                None,
                format!("bad section header body ({} bytes)", body.len()),
            ));
        }
        let mut body = body.to_vec();
        body[8..16].fill(0xff);
        if let Mode::PcapNg(ng) = &mut self.mode {
            ng.section = Some(big_endian);
            ng.ifaces.clear();
            ng.snaplens.clear();
        }
        self.block(SHB, &body, big_endian)
    }

    /// Writes a section header of our own: version 1.0, no options.
    fn default_section(&mut self) -> Result<(), CaptureError> {
        let be = match &self.mode {
            Mode::PcapNg(ng) => ng.default_big_endian,
            Mode::Pcap { .. } => return Ok(()),
        };
        let mut body = [0xffu8; 16];
        put32(&mut body[0..], 0x1a2b_3c4d, be);
        put16(&mut body[4..], 1, be);
        put16(&mut body[6..], 0, be);
        self.section(be, &body)
    }

    /// Writes a pcapng block of `type_` around `body` (a multiple of 4 bytes long).
    fn block(&mut self, type_: u32, body: &[u8], be: bool) -> Result<(), CaptureError> {
        let Ok(total) = u32::try_from(body.len() + 12) else {
            return Err(self.error(None, "block too large".into()));
        };
        let mut hdr = [0u8; 8];
        put32(&mut hdr[0..], type_, be);
        put32(&mut hdr[4..], total, be);
        self.put(None, &hdr)?;
        self.put(None, body)?;
        self.put(None, &hdr[4..8])
    }

    /// Appends `bytes` to the output.
    fn put(&mut self, packet: Option<u64>, bytes: &[u8]) -> Result<(), CaptureError> {
        let res = match self.out.as_mut() {
            Some(out) => out.write_all(bytes),
            None => return Err(self.error(packet, "already finished".into())),
        };
        self.position += bytes.len() as u64;
        res.map_err(|e| self.error(packet, format!("write error: {e}")))
    }

    fn error(&self, packet: Option<u64>, cause: String) -> CaptureError {
        let at = packet.map(|p| Location {
            packet: Some(p),
            offset: None,
        });
        CaptureError::new(&self.partial, at, cause)
    }
}

/// An output file's error as a capture error (the same one line: file, what failed, why).
fn output_error(e: OutputError) -> CaptureError {
    CaptureError::new(&e.path, None, e.cause())
}

fn put32(buf: &mut [u8], v: u32, be: bool) {
    buf[..4].copy_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn read32(b: &[u8], be: bool) -> u32 {
    let w = [b[0], b[1], b[2], b[3]];
    if be {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

fn put16(buf: &mut [u8], v: u16, be: bool) {
    buf[..2].copy_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}
