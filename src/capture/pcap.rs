//! Classic pcap records: a hand-written loop over a large read buffer.
//!
//! pcap-file's `PcapReader::next_raw_packet` cannot tell a bogus record length from a file that
//! ends early (both surface as `UnexpectedEof` from its 8 MB buffer) and costs a second copy, so
//! records are framed here: the 16-byte header is validated before its data is waited for.

use super::{Batch, CaptureDirection, CaptureError, LinkType, PacketMeta, Stop};
use crate::time::Timestamp;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

/// Size of the read buffer (grown for a larger record).
const BUF_SIZE: usize = 1 << 20;
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
        // The upper bits of the link-type field hold FCS flags (libpcap's LT_LINKTYPE mask).
        let linktype = LinkType(u32_at(20) & 0x03ff_ffff);
        Ok(PcapHeader {
            big_endian,
            nanos,
            snaplen: u32_at(16),
            linktype,
        })
    }
}

/// Reads the records of a pcap file whose global header has been read.
pub(super) struct PcapSource {
    file: File,
    header: PcapHeader,
    /// Records with a larger captured length are corrupt.
    caplen_limit: u32,
    buf: Vec<u8>,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    eof: bool,
    /// Warnings not yet handed to the reader.
    pub warnings: Vec<String>,
    /// Whether an out-of-range fractional-seconds field has been reported.
    frac_reported: bool,
}

impl PcapSource {
    /// `file` is positioned just after the 24-byte global header.
    pub fn new(file: File, header: PcapHeader) -> Self {
        PcapSource {
            file,
            header,
            caplen_limit: header.snaplen.clamp(MIN_CAPLEN_LIMIT, MAX_CAPLEN_LIMIT),
            buf: vec![0; BUF_SIZE],
            pos: 0,
            end: 0,
            buf_offset: 24,
            eof: false,
            warnings: Vec::new(),
            frac_reported: false,
        }
    }

    /// Makes at least `need` unread bytes available unless the file ends first.
    fn refill(&mut self, need: usize) -> std::io::Result<()> {
        if self.end - self.pos >= need || self.eof {
            return Ok(());
        }
        if self.buf.len() - self.pos < need {
            self.buf.copy_within(self.pos..self.end, 0);
            self.buf_offset += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
            if self.buf.len() < need {
                self.buf.resize(need, 0);
            }
        }
        while self.end - self.pos < need {
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Appends records to `batch` until it holds `max` packets, the file ends or a record is bad.
    /// `next_index` is the 1-based number of the next record.
    pub fn fill(
        &mut self,
        path: &Path,
        batch: &mut Batch,
        max: usize,
        next_index: &mut u64,
    ) -> Stop {
        match (self.header.big_endian, self.header.nanos) {
            (false, false) => self.fill_as::<false, false>(path, batch, max, next_index),
            (false, true) => self.fill_as::<false, true>(path, batch, max, next_index),
            (true, false) => self.fill_as::<true, false>(path, batch, max, next_index),
            (true, true) => self.fill_as::<true, true>(path, batch, max, next_index),
        }
    }

    /// [`PcapSource::fill`] for one byte order and precision.
    fn fill_as<const BE: bool, const NANOS: bool>(
        &mut self,
        path: &Path,
        batch: &mut Batch,
        max: usize,
        next_index: &mut u64,
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
        while batch.packets.len() < max && batch.data.len() < BATCH_BYTES {
            let index = *next_index;
            if self.end - self.pos < 16 {
                if let Err(e) = self.refill(16) {
                    return Stop::Failed(self.io_error(path, index, &e));
                }
                match self.end - self.pos {
                    0 => return Stop::End,
                    n if n < 16 => return Stop::Truncated(self.partial_record(index, n, 16)),
                    _ => {}
                }
            }
            let h = &self.buf[self.pos..self.pos + 16];
            let (secs, frac, caplen, orig_len) =
                (u32_at(h, 0), u32_at(h, 4), u32_at(h, 8), u32_at(h, 12));
            if caplen > self.caplen_limit {
                return Stop::Failed(CaptureError::at_record(
                    path,
                    index,
                    self.record_offset(),
                    format!(
                        "corrupt record header: captured length {caplen} (original length {orig_len}) exceeds \
                         the limit of {} bytes (snaplen {})",
                        self.caplen_limit, self.header.snaplen
                    ),
                ));
            }
            let need = 16 + caplen as usize;
            if self.end - self.pos < need {
                if let Err(e) = self.refill(need) {
                    return Stop::Failed(self.io_error(path, index, &e));
                }
                let have = self.end - self.pos;
                if have < need {
                    return Stop::Truncated(self.partial_record(index, have, need));
                }
            }
            if frac > frac_limit && !self.frac_reported {
                self.frac_reported = true;
                self.warnings.push(format!(
                    "record {index} at byte offset {} has a fractional-seconds field of {frac} (a second or more); \
                     such timestamps are read as that many more seconds and written back normalised",
                    self.record_offset()
                ));
            }
            let Ok(offset) = u32::try_from(batch.data.len()) else {
                break;
            };
            batch
                .data
                .extend_from_slice(&self.buf[self.pos + 16..self.pos + need]);
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
            });
            self.pos += need;
            *next_index += 1;
        }
        Stop::Full
    }

    /// File offset of the record at `pos`.
    fn record_offset(&self) -> u64 {
        self.buf_offset + self.pos as u64
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
            self.record_offset(),
            index - 1
        )
    }

    fn io_error(&self, path: &Path, index: u64, e: &std::io::Error) -> CaptureError {
        CaptureError::at_record(
            path,
            index,
            self.record_offset(),
            format!("read error: {e}"),
        )
    }
}
