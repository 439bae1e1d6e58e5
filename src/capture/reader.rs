//! Capture reading (to be written).
use super::*;

/// Reads a capture in batches.
pub struct CaptureReader {
    _path: PathBuf,
}

impl CaptureReader {
    /// Opens `path`, sniffing pcap vs pcapng from the magic number.
    pub fn open(path: &std::path::Path) -> Result<Self, CaptureError> {
        Err(CaptureError {
            path: path.into(),
            at: None,
            cause: "not implemented".into(),
        })
    }
    /// The format, for the writer.
    pub fn format(&self) -> &CaptureFormat {
        unimplemented!()
    }
    /// Fills `batch` (cleared first) with up to `max_packets` packets. Returns `Ok(false)` at end.
    pub fn read_batch(
        &mut self,
        _batch: &mut Batch,
        _max_packets: usize,
    ) -> Result<bool, CaptureError> {
        Ok(false)
    }
    /// Warnings gathered so far (e.g. "file ends inside record N at byte offset X").
    pub fn warnings(&self) -> &[String] {
        &[]
    }
}
