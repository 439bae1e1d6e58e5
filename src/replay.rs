//! The replay pipeline: capture in → link layer → engine → rewritten capture(s) and observers.
//!
//! A reader thread fills batches of packets ahead of the engine; the main thread runs the
//! engine over each packet in place, writes what the modelled router forwards, and hands every
//! packet's [`Disposition`] and every session [`Event`] to the observers (reports, goldens).
//! Batches go back to the reader for reuse, so nothing is allocated per packet.

use crate::capture::{
    Batch, CaptureDirection, CaptureError, CaptureReader, CaptureWriter, PacketMeta,
};
use crate::engine::{Engine, EngineConfig, Event, Flow, Outcome, Verdict, View};
use crate::link::{self, NotIpv4, Payload};
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

const BATCH_PACKETS: usize = 4096;

/// What became of one captured packet.
#[derive(Clone, Copy, Debug)]
pub enum Disposition {
    /// A copy of a packet as the capturing host sent it (SLL/SLL2 type 4, pcapng outbound):
    /// only arriving packets are replayed.
    OutgoingCopy,
    /// Not IPv4: passed through unchanged.
    NotIpv4(NotIpv4),
    /// Shorter than its own link header: passed through unchanged.
    LinkTruncated,
    /// IPv4: what the engine decided.
    Engine(Outcome),
}

/// Receives the replay's packets and session events, in order.
pub trait Observer {
    /// One captured packet, after the engine handled it.
    fn packet(&mut self, _meta: &PacketMeta, _what: &Disposition) {}
    /// A session event, right after the packet (or timer) that caused it.
    fn event(&mut self, _event: &Event) {}
}

/// What to replay and where to write.
#[derive(Clone, Debug)]
pub struct ReplayJob {
    /// The capture.
    pub input: PathBuf,
    /// Its configuration file (only to refuse overwriting it).
    pub config_path: PathBuf,
    /// The validated configuration.
    pub config: EngineConfig,
    /// Where to write the rewritten capture.
    pub output: Option<PathBuf>,
    /// A folder for one capture per pool member (what each server would see).
    pub member_dir: Option<PathBuf>,
}

/// What a replay counted, besides what observers saw.
#[derive(Clone, Debug, Default)]
pub struct ReplayTotals {
    /// Records read.
    pub packets: u64,
    /// First and last capture timestamps.
    pub first_ts: Option<Timestamp>,
    /// Last capture timestamp.
    pub last_ts: Option<Timestamp>,
    /// Packets written to the rewritten capture.
    pub written: u64,
    /// Reader warnings (a file that ends inside a record, ...).
    pub warnings: Vec<String>,
    /// Timestamps earlier than one before them.
    pub timestamps_backwards: u64,
    /// Pool members, index = `SessionRecord::member`.
    pub members: Vec<std::net::Ipv4Addr>,
    /// Member captures written, by member address.
    pub member_captures: BTreeMap<String, PathBuf>,
}

/// A replay that could not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The capture could not be read or an output written.
    #[error("{0}")]
    Capture(#[from] CaptureError),
    /// A refused request (same path for input and output, unsupported link type, ...).
    #[error("{0}")]
    Refused(String),
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Runs a replay, feeding `observers`.
pub fn run(
    job: &ReplayJob,
    observers: &mut [&mut dyn Observer],
) -> Result<ReplayTotals, ReplayError> {
    for out in job.output.iter() {
        for input in [&job.input, &job.config_path] {
            if same_file(out, input) {
                return Err(ReplayError::Refused(format!(
                    "{}: output path is an input file; refusing to write over it",
                    out.display()
                )));
            }
        }
    }
    let mut reader = CaptureReader::open(&job.input)?;
    let format = reader.format().clone();
    let mut writer = match &job.output {
        Some(p) => Some(CaptureWriter::create(p, &format)?),
        None => None,
    };
    let mut members: Vec<Option<CaptureWriter>> = Vec::new();
    let mut engine = Engine::new(job.config.clone());
    let view = job.config.view;
    if let Some(dir) = &job.member_dir {
        std::fs::create_dir_all(dir).map_err(|e| {
            ReplayError::Refused(format!("{}: cannot create folder: {e}", dir.display()))
        })?;
        let ext = job
            .input
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("pcap");
        for m in engine.members() {
            let p = dir.join(format!("member-{}.{ext}", m.addr));
            members.push(Some(CaptureWriter::create(&p, &format)?));
        }
    }

    let (full_tx, full_rx) = mpsc::sync_channel::<Result<Batch, CaptureError>>(3);
    let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
    for _ in 0..4 {
        let _ = empty_tx.send(Batch::default());
    }
    let mut totals = ReplayTotals::default();
    let result = std::thread::scope(|scope| -> Result<(), ReplayError> {
        let reader_thread = scope.spawn(move || {
            while let Ok(mut batch) = empty_rx.recv() {
                match reader.read_batch(&mut batch, BATCH_PACKETS) {
                    Ok(true) => {
                        if full_tx.send(Ok(batch)).is_err() {
                            break;
                        }
                    }
                    Ok(false) => break,
                    Err(e) => {
                        let _ = full_tx.send(Err(e));
                        break;
                    }
                }
            }
            reader.warnings().to_vec()
        });
        let mut scratch = Vec::new();
        let mut checked_links = Vec::new();
        for batch in full_rx.iter() {
            let mut batch = batch?;
            if let Some(w) = writer.as_mut() {
                w.begin_batch(&batch)?;
            }
            for w in members.iter_mut().flatten() {
                w.begin_batch(&batch)?;
            }
            for i in 0..batch.packets.len() {
                let meta = batch.packets[i];
                if !checked_links.contains(&meta.linktype) {
                    link::check_supported(meta.linktype).map_err(|m| {
                        ReplayError::Refused(format!(
                            "{}: packet {}: {m}",
                            job.input.display(),
                            meta.index
                        ))
                    })?;
                    checked_links.push(meta.linktype);
                }
                totals.packets += 1;
                totals.first_ts.get_or_insert(meta.ts);
                totals.last_ts = Some(meta.ts);
                let (_, frame) = batch.bytes_mut(i);
                let view_l = link::locate(meta.linktype, frame);
                let outgoing = meta.direction == CaptureDirection::Outbound
                    || view_l.direction == CaptureDirection::Outbound;
                let what = if outgoing {
                    Disposition::OutgoingCopy
                } else {
                    match view_l.payload {
                        Payload::NotIpv4(k) => Disposition::NotIpv4(k),
                        Payload::Truncated => Disposition::LinkTruncated,
                        Payload::Ipv4 { offset } => {
                            let keep_original = !members.is_empty() && view == View::Router;
                            if keep_original {
                                scratch.clear();
                                scratch.extend_from_slice(frame);
                            }
                            let o = engine.handle(meta.ts, &mut frame[offset..]);
                            if let Some(m) = o.member
                                && let Some(Some(w)) = members.get_mut(m)
                            {
                                if keep_original && o.flow == Flow::Outbound {
                                    w.write_bytes(&meta, &scratch)?;
                                } else {
                                    w.write(&batch, i)?;
                                }
                            }
                            Disposition::Engine(o)
                        }
                    }
                };
                let forwarded = match what {
                    Disposition::OutgoingCopy => false,
                    Disposition::Engine(o) => !matches!(o.verdict, Verdict::Drop(_)),
                    _ => true,
                };
                if forwarded && let Some(w) = writer.as_mut() {
                    w.write(&batch, i)?;
                    totals.written += 1;
                }
                for ob in observers.iter_mut() {
                    ob.packet(&meta, &what);
                }
                while let Some(ev) = engine.poll_event() {
                    for ob in observers.iter_mut() {
                        ob.event(&ev);
                    }
                }
            }
            batch.clear();
            let _ = empty_tx.send(batch);
        }
        drop(empty_tx);
        totals.warnings = reader_thread
            .join()
            .map_err(|_| ReplayError::Refused("the capture reader thread failed".into()))?;
        Ok(())
    });
    result?;
    engine.finish(totals.last_ts.unwrap_or_default());
    while let Some(ev) = engine.poll_event() {
        for ob in observers.iter_mut() {
            ob.event(&ev);
        }
    }
    totals.timestamps_backwards = engine.stats().timestamps_backwards;
    totals.members = engine.members().iter().map(|m| m.addr).collect();
    if let Some(w) = writer {
        w.finish()?;
    }
    if let Some(dir) = &job.member_dir {
        let ext = job
            .input
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("pcap");
        for (m, w) in engine.members().iter().zip(members) {
            if let Some(w) = w {
                w.finish()?;
                totals.member_captures.insert(
                    m.addr.to_string(),
                    dir.join(format!("member-{}.{ext}", m.addr)),
                );
            }
        }
    }
    Ok(totals)
}
