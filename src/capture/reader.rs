//! Capture reading: sniffs pcap vs pcapng and fills [`Batch`]es.
use super::ng::{NgSource, SHB, read_up_to};
use super::pcap::{HeaderError, PcapHeader, PcapSource};
use super::*;
use std::fs::File;
use std::path::Path;

/// Where the packets come from.
enum Source {
    Pcap(PcapSource),
    PcapNg(NgSource),
}

/// Reads a capture in batches.
///
/// A file that ends inside a record yields every whole record before it and a warning (see
/// [`CaptureReader::warnings`]); a corrupt record yields the packets before it and then the
/// error.
pub struct CaptureReader {
    path: PathBuf,
    format: CaptureFormat,
    source: Source,
    /// For pcap files: the single link type.
    pcap_linktypes: [LinkType; 1],
    /// 1-based number of the next record.
    next_index: u64,
    warnings: Vec<String>,
    /// An error met after some packets of a batch; returned by the next call.
    pending_error: Option<CaptureError>,
    done: bool,
}

impl CaptureReader {
    /// Opens `path`, sniffing pcap vs pcapng from the magic number.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let err = |cause: String| CaptureError::new(path, None, cause);
        // The kind of file first: opening a FIFO waits for a writer, maybe for ever.
        let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot open: {e}")))?;
        if meta.is_dir() {
            return Err(err("is a directory, not a capture file".into()));
        }
        if !meta.is_file() {
            // A pipe cannot be read twice (`--compare`, `audit`) nor sought in (pcapng).
            return Err(err(
                "not a regular file (a pipe or a device): save the capture to a file first".into(),
            ));
        }
        let mut file = File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
        let file_len = file
            .metadata()
            .map_err(|e| err(format!("cannot open: {e}")))?
            .len();
        if file_len == 0 {
            return Err(err("empty file: not a pcap or pcapng capture".into()));
        }
        let mut head = [0u8; 24];
        let got = read_up_to(&mut file, &mut head).map_err(|e| err(format!("read error: {e}")))?;
        if got >= 4 && u32::from_be_bytes([head[0], head[1], head[2], head[3]]) == SHB {
            let (source, big_endian) = NgSource::open(path, file, file_len)?;
            return Ok(Self::with(
                path,
                CaptureFormat::PcapNg { big_endian },
                Source::PcapNg(source),
            ));
        }
        if got < 24 {
            return Err(err(match PcapHeader::magic(&head[..got]) {
                Some(_) => format!("truncated pcap global header ({got} of 24 bytes)"),
                None => not_a_capture(&head[..got]),
            }));
        }
        let header = match PcapHeader::parse(&head) {
            Ok(h) => h,
            Err(HeaderError::NotPcap) => return Err(err(not_a_capture(&head))),
            Err(HeaderError::Unsupported(cause)) => return Err(err(cause)),
        };
        let format = CaptureFormat::Pcap {
            header: head,
            nanos: header.nanos,
            big_endian: header.big_endian,
            linktype: header.linktype,
            fcs_len: header.fcs_len,
        };
        let mut reader = Self::with(path, format, Source::Pcap(PcapSource::new(file, header)));
        reader.pcap_linktypes = [header.linktype];
        Ok(reader)
    }

    fn with(path: &Path, format: CaptureFormat, source: Source) -> Self {
        CaptureReader {
            path: path.into(),
            format,
            source,
            pcap_linktypes: [LinkType::ETHERNET],
            next_index: 1,
            warnings: Vec::new(),
            pending_error: None,
            done: false,
        }
    }

    /// The format, for the writer.
    pub fn format(&self) -> &CaptureFormat {
        &self.format
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Link types of the interfaces seen so far, indexed by [`PacketMeta::interface`]. For pcap
    /// this is the global header's link type; for pcapng it grows as interface descriptions are
    /// read (see also [`Batch::new_interfaces`]).
    pub fn interfaces(&self) -> &[LinkType] {
        match &self.source {
            Source::Pcap(_) => &self.pcap_linktypes,
            Source::PcapNg(ng) => ng.linktypes(),
        }
    }

    /// Fills `batch` (cleared first) with up to `max_packets` packets (at least one is asked
    /// for; a batch also stops at 64 MiB of packet data). Returns `Ok(false)` at the end, with
    /// the batch empty; `Ok(true)` batches may hold only format updates (pcapng interfaces).
    ///
    /// When a corrupt record follows some packets, those packets come first and the error on
    /// the next call; after an error, calls return `Ok(false)`.
    pub fn read_batch(
        &mut self,
        batch: &mut Batch,
        max_packets: usize,
    ) -> Result<bool, CaptureError> {
        self.read_batch_with(batch, max_packets, |_, _| {})
    }

    /// [`CaptureReader::read_batch`], handing each packet (its bytes and its entry) to `hook`
    /// once, in order, as it is read: for classic pcap while its bytes are still in the
    /// cache, a piece of the batch at a time.
    pub fn read_batch_with(
        &mut self,
        batch: &mut Batch,
        max_packets: usize,
        mut hook: impl FnMut(&[u8], &PacketMeta),
    ) -> Result<bool, CaptureError> {
        batch.clear();
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        if self.done {
            return Ok(false);
        }
        let max = max_packets.max(1);
        // Room for the batch's entries at once (no doublings and copies while it fills), up
        // to as many 16-byte records as one read holds.
        batch.packets.reserve(max.min(super::pcap::READ_BYTES / 16));
        let stop = match &mut self.source {
            Source::Pcap(s) => {
                let stop = s.fill(&self.path, batch, max, &mut self.next_index, &mut hook);
                self.warnings.append(&mut s.warnings);
                stop
            }
            Source::PcapNg(s) => {
                let stop = s.fill(&self.path, batch, max, &mut self.next_index);
                for (i, meta) in batch.packets.iter().enumerate() {
                    hook(batch.bytes(i), meta);
                }
                stop
            }
        };
        match stop {
            Stop::Full => {}
            Stop::End => self.done = true,
            Stop::Truncated(warning) => {
                self.warnings.push(warning);
                self.done = true;
            }
            Stop::Failed(e) => {
                self.done = true;
                if batch.packets.is_empty() && batch.format_updates.is_empty() {
                    return Err(e);
                }
                self.pending_error = Some(e);
            }
        }
        Ok(!batch.packets.is_empty() || !batch.format_updates.is_empty())
    }

    /// Tells the reader how far the output of the batches written so far lags behind the
    /// input, in bytes (what was dropped, less what was added; modulo 2^64): classic pcap batches then place their records where
    /// the writer can write them without a copy ([`Batch`]'s records). A hint only: what is
    /// read does not change.
    pub fn set_lag(&mut self, lag: u64) {
        if let Source::Pcap(s) = &mut self.source {
            s.set_lag(lag);
        }
    }

    /// Warnings gathered so far (e.g. "file ends inside record N at byte offset X").
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// The message for a file with neither magic number.
fn not_a_capture(head: &[u8]) -> String {
    if head.len() < 4 {
        return format!(
            "not a pcap or pcapng capture (only {} bytes long)",
            head.len()
        );
    }
    let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let text = head
        .iter()
        .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    format!(
        "not a pcap or pcapng capture (starts with {}{})",
        hex.join(" "),
        if text { ", which looks like text" } else { "" }
    )
}
