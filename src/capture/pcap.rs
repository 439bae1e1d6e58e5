//! Classic pcap records: a hand-written loop over a large read buffer.
//!
//! pcap-file's `PcapReader::next_raw_packet` cannot tell a bogus record length from a file that
//! ends early (both surface as `UnexpectedEof` from its 8 MB buffer) and costs a second copy, so
//! records are framed here: the 16-byte header is validated before its data is waited for.

use super::{
    Batch, CaptureDirection, CaptureError, LinkType, OptionRange, PacketMeta, Records, Stop,
};
use crate::time::Timestamp;
use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;

/// Records up to this size are always accepted, whatever the snaplen says (libpcap's
/// `MAXIMUM_SNAPLEN`).
const MIN_CAPLEN_LIMIT: u32 = 262_144;
/// Records above this size are corrupt even under a larger snaplen.
const MAX_CAPLEN_LIMIT: u32 = 16 << 20;
/// A batch stops growing once it holds this many bytes.
pub(super) const BATCH_BYTES: usize = 64 << 20;

/// The global header of a pcap file, decoded.
#[derive(Clone, Copy, Debug)]
pub(super) struct PcapHeader {
    pub big_endian: bool,
    pub nanos: bool,
    pub snaplen: u32,
    pub linktype: LinkType,
    /// Bytes of FCS at the end of every frame, when the header says (0: none or unknown).
    pub fcs_len: u8,
}

/// Why a global header is refused.
#[derive(Debug)]
pub(super) enum HeaderError {
    /// No pcap magic number at all.
    NotPcap,
    /// A pcap header this reader cannot read.
    Unsupported(String),
}

impl PcapHeader {
    /// Byte order and precision from the magic number (first 4 bytes), if it is a pcap one.
    pub fn magic(h: &[u8]) -> Option<(bool, bool)> {
        match h.get(..4)? {
            [0xa1, 0xb2, 0xc3, 0xd4] => Some((true, false)),
            [0xa1, 0xb2, 0x3c, 0x4d] => Some((true, true)),
            [0xd4, 0xc3, 0xb2, 0xa1] => Some((false, false)),
            [0x4d, 0x3c, 0xb2, 0xa1] => Some((false, true)),
            _ => None,
        }
    }

    /// Decodes the 24-byte global header, or says why it is not one this reader accepts.
    pub fn parse(h: &[u8; 24]) -> Result<PcapHeader, HeaderError> {
        let Some((big_endian, nanos)) = Self::magic(h) else {
            return Err(match h[..4] {
                [0xa1, 0xb2, 0xcd, 0x34] | [0x34, 0xcd, 0xb2, 0xa1] => HeaderError::Unsupported(
                    "unsupported pcap variant: Kuznetzov's modified pcap (magic a1b2cd34)".into(),
                ),
                _ => HeaderError::NotPcap,
            });
        };
        let u16_at = |i: usize| {
            let b = [h[i], h[i + 1]];
            if big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        let u32_at = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let version = (u16_at(4), u16_at(6));
        if version.0 != 2 {
            return Err(HeaderError::Unsupported(format!(
                "unsupported pcap version {}.{} in the global header (only 2.x is readable)",
                version.0, version.1
            )));
        }
        // The upper bits of the link-type field say whether the frames end with an FCS and how
        // long it is (draft-ietf-opsawg-pcap §4: bit 26 set, then bits 28-31 count 16-bit
        // words; libpcap's LT_LINKTYPE, LT_FCS_LENGTH_PRESENT, LT_FCS_LENGTH).
        let field = u32_at(20);
        let linktype = LinkType(field & 0x03ff_ffff);
        let fcs_len = if field & 0x0400_0000 != 0 {
            ((field >> 28) * 2) as u8
        } else {
            0
        };
        Ok(PcapHeader {
            big_endian,
            nanos,
            snaplen: u32_at(16),
            linktype,
            fcs_len,
        })
    }
}

/// Reads the records of a pcap file whose global header has been read.
///
/// Records are read straight into the batch (no intermediate buffer): `read(2)` fills
/// [`Batch::data`], the whole records in it become the batch's packets where they lie (header
/// and all, see [`Batch::records`]), and the partial record at the end is carried over to the
/// start of the next batch.
pub(super) struct PcapSource {
    file: File,
    header: PcapHeader,
    /// Records with a larger captured length are corrupt.
    caplen_limit: u32,
    /// Bytes read but not yet part of a batch: the start of the next record.
    carry: Vec<u8>,
    /// File offset of `carry[0]`.
    carry_offset: u64,
    /// Mean record size (header included) of recent batches, to size reads so that a batch
    /// ends near its packet limit (see [`PcapSource::fill`]).
    mean_record: usize,
    eof: bool,
    /// Where the next batch's first record should sit relative to a 4096-byte boundary: its
    /// file offset less this lag (see [`PcapSource::set_lag`]).
    lag: u64,
    /// Warnings not yet handed to the reader.
    pub warnings: Vec<String>,
    /// Whether an out-of-range fractional-seconds field has been reported.
    frac_reported: bool,
}

/// Bytes a batch reads at most (more only for a record that is larger).
pub(super) const READ_BYTES: usize = 2 << 20;
/// Bytes per read(2): a batch is read in pieces, each framed and handed to the caller's
/// hook while it is still in the core's cache (the hook reads every byte to check sums).
const READ_CHUNK: usize = 128 << 10;
/// Alignment the batch's records are placed for (see [`Batch::records`]).
pub(crate) const RECORD_ALIGN: usize = 4096;

impl PcapSource {
    /// `file` is positioned just after the 24-byte global header.
    pub fn new(file: File, header: PcapHeader) -> Self {
        PcapSource {
            file,
            header,
            caplen_limit: header.snaplen.clamp(MIN_CAPLEN_LIMIT, MAX_CAPLEN_LIMIT),
            carry: Vec::new(),
            carry_offset: 24,
            mean_record: 1500,
            eof: false,
            lag: 0,
            warnings: Vec::new(),
            frac_reported: false,
        }
    }

    /// Places later batches' records for an output that lags the input by `lag` bytes (the
    /// bytes of dropped records so far): the first record of a batch sits `(offset − lag) mod
    /// 4096` bytes past a 4096-byte boundary, where its copy in the output file will sit.
    pub fn set_lag(&mut self, lag: u64) {
        self.lag = lag;
    }

    /// Reads from the file into `data`'s spare capacity until it holds `limit` bytes (or is
    /// full) or the file ends.
    fn read_into(&mut self, data: &mut Vec<u8>, limit: usize) -> std::io::Result<()> {
        while data.len() < limit.min(data.capacity()) && !self.eof {
            let room = limit.min(data.capacity()) - data.len();
            let spare = &mut data.spare_capacity_mut()[..room];
            // SAFETY: read(2) writes at most `spare.len()` bytes into the spare capacity, which
            // is valid for writes; exactly the `n` bytes it reports are then marked as filled.
            let n = unsafe {
                libc::read(
                    std::os::unix::io::AsRawFd::as_raw_fd(&self.file),
                    spare.as_mut_ptr().cast(),
                    spare.len(),
                )
            };
            match n {
                0 => self.eof = true,
                n if n > 0 => unsafe {
                    // SAFETY: see above; `n <= spare.len()`.
                    data.set_len(data.len() + n as usize)
                },
                _ => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Appends records to `batch` (empty) until it holds `max` packets, the bytes read run out,
    /// the file ends or a record is bad. `next_index` is the 1-based number of the next record.
    /// `hook` sees each packet (its bytes and its entry) as soon as it is framed, in order.
    pub fn fill(
        &mut self,
        path: &Path,
        batch: &mut Batch,
        max: usize,
        next_index: &mut u64,
        hook: &mut impl FnMut(&[u8], &PacketMeta),
    ) -> Stop {
        match (self.header.big_endian, self.header.nanos) {
            (false, false) => self.fill_as::<false, false>(path, batch, max, next_index, hook),
            (false, true) => self.fill_as::<false, true>(path, batch, max, next_index, hook),
            (true, false) => self.fill_as::<true, false>(path, batch, max, next_index, hook),
            (true, true) => self.fill_as::<true, true>(path, batch, max, next_index, hook),
        }
    }

    /// [`PcapSource::fill`] for one byte order and precision.
    fn fill_as<const BE: bool, const NANOS: bool>(
        &mut self,
        path: &Path,
        batch: &mut Batch,
        max: usize,
        next_index: &mut u64,
        hook: &mut impl FnMut(&[u8], &PacketMeta),
    ) -> Stop {
        let u32_at = |b: &[u8], i: usize| {
            let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
            if BE {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        let (frac_ns, frac_limit): (u64, u32) = if NANOS {
            (1, 999_999_999)
        } else {
            (1_000, 999_999)
        };
        // Where the records start: past the padding up to a 4096-byte boundary, and the lead
        // that puts the first record where its output copy will sit in its block.
        let data = &mut batch.data;
        // A little less than `max` records of the mean size: the batch then usually ends where
        // the bytes read end, and only the partial record after its last whole one is carried
        // over (copied twice). Reading for more than `max` records carried the surplus instead:
        // a third of a 10M-packet capture was copied twice more that way.
        let want = (max.saturating_mul(self.mean_record) / 16 * 15 + 4096).min(READ_BYTES);
        data.reserve(2 * RECORD_ALIGN + self.carry.len().max(want));
        let pad = data.as_ptr().addr().wrapping_neg() % RECORD_ALIGN;
        let lead = pad + (self.carry_offset.wrapping_sub(self.lag) % RECORD_ALIGN as u64) as usize;
        data.resize(lead, 0);
        data.extend_from_slice(&self.carry);
        let base = self.carry_offset;
        let file_offset = |at: usize| base + (at - lead) as u64;
        let mut limit = data.len() + want;
        let mut pos = lead;
        let mut verbatim = true;
        let mut stop = Stop::Full;
        let mut read_error = None;
        'frame: loop {
            // The next piece, up to the limit.
            if let Err(e) = self.read_into(data, limit.min(data.len() + READ_CHUNK)) {
                read_error = Some(e);
            }
            let read_all =
                data.len() >= limit.min(data.capacity()) || self.eof || read_error.is_some();
            while batch.packets.len() < max {
                let index = *next_index;
                let have = data.len() - pos;
                if have < 16 {
                    if read_all {
                        break 'frame;
                    }
                    continue 'frame;
                }
                let h = &data[pos..pos + 16];
                let (secs, frac, caplen, orig_len) =
                    (u32_at(h, 0), u32_at(h, 4), u32_at(h, 8), u32_at(h, 12));
                if caplen > self.caplen_limit {
                    stop = Stop::Failed(CaptureError::at_record(
                        path,
                        index,
                        file_offset(pos),
                        format!(
                            "corrupt record header: captured length {caplen} (original length {orig_len}) exceeds \
                             the limit of {} bytes (snaplen {})",
                            self.caplen_limit, self.header.snaplen
                        ),
                    ));
                    break 'frame;
                }
                let need = 16 + caplen as usize;
                if have < need {
                    if !read_all {
                        continue 'frame;
                    }
                    if batch.packets.is_empty() && !self.eof && read_error.is_none() {
                        // A record larger than the read: make room for all of it.
                        limit = pos + need;
                        data.reserve(need - have);
                        continue 'frame;
                    }
                    break 'frame;
                }
                if frac > frac_limit {
                    verbatim = false;
                    if !self.frac_reported {
                        self.frac_reported = true;
                        self.warnings.push(format!(
                            "record {index} at byte offset {} has a fractional-seconds field of {frac} (a second or more); \
                             such timestamps are read as that many more seconds and written back normalised",
                            file_offset(pos)
                        ));
                    }
                }
                let Ok(offset) = u32::try_from(pos + 16) else {
                    break;
                };
                batch.packets.push(PacketMeta {
                    index,
                    ts: Timestamp(u64::from(secs) * 1_000_000_000 + u64::from(frac) * frac_ns),
                    interface: 0,
                    linktype: self.header.linktype,
                    orig_len,
                    direction: CaptureDirection::Unknown,
                    offset,
                    len: caplen,
                    epb_flags: None,
                    rewritten: false,
                    options: OptionRange::default(),
                    simple: false,
                    fcs_len: self.header.fcs_len,
                });
                if let Some(meta) = batch.packets.last() {
                    hook(&data[pos + 16..pos + need], meta);
                }
                pos += need;
                *next_index += 1;
            }
            break;
        }
        if let Some(mean) = (pos - lead).checked_div(batch.packets.len()) {
            self.mean_record = (3 * self.mean_record + mean) / 4;
        }
        // The rest is the start of the next record (or records past the packet limit).
        self.carry.clear();
        self.carry.extend_from_slice(&data[pos..]);
        self.carry_offset = file_offset(pos);
        data.truncate(pos);
        batch.records = Some(Records {
            start: lead,
            file_offset: base,
            verbatim,
        });
        if !matches!(stop, Stop::Full) {
            return stop;
        }
        if let Some(e) = read_error {
            return Stop::Failed(self.io_error(path, *next_index, &e));
        }
        if self.eof && batch.packets.len() < max {
            return match self.carry.len() {
                0 => Stop::End,
                n => {
                    let need = if n < 16 {
                        16
                    } else {
                        16 + u32_at(&self.carry, 8) as usize
                    };
                    Stop::Truncated(self.partial_record(*next_index, n, need))
                }
            };
        }
        Stop::Full
    }

    /// The warning for a file that ends `have` bytes into a record of `need` bytes.
    fn partial_record(&self, index: u64, have: usize, need: usize) -> String {
        let what = if need == 16 {
            "record header"
        } else {
            "record data"
        };
        format!(
            "file ends inside record {index} at byte offset {} ({have} of {need} bytes of {what}); \
             the last whole record is {}",
            self.carry_offset,
            index - 1
        )
    }

    fn io_error(&self, path: &Path, index: u64, e: &std::io::Error) -> CaptureError {
        CaptureError::at_record(path, index, self.carry_offset, format!("read error: {e}"))
    }
}
