//! Capture writing (to be written).
use super::*;

/// Writes a capture in the reader's format.
pub struct CaptureWriter {}

impl CaptureWriter {
    /// Creates `PATH.partial`.
    pub fn create(path: &std::path::Path, _format: &CaptureFormat) -> Result<Self, CaptureError> {
        Err(CaptureError {
            path: path.into(),
            at: None,
            cause: "not implemented".into(),
        })
    }
    /// Writes packet `i` of `batch` (its current, possibly rewritten, bytes).
    pub fn write(&mut self, _batch: &Batch, _i: usize) -> Result<(), CaptureError> {
        Ok(())
    }
    /// Writes `bytes` as a packet with `meta`'s timestamp, interface and lengths.
    pub fn write_bytes(&mut self, _meta: &PacketMeta, _bytes: &[u8]) -> Result<(), CaptureError> {
        Ok(())
    }
    /// Applies the batch's format updates (pcapng IDBs); call once per batch before writing it.
    pub fn begin_batch(&mut self, _batch: &Batch) -> Result<(), CaptureError> {
        Ok(())
    }
    /// Flushes and renames `PATH.partial` to `PATH`.
    pub fn finish(self) -> Result<(), CaptureError> {
        Ok(())
    }
}
