//! Output files written around the page cache: `PATH.partial`, renamed to `PATH` by
//! [`OutputFile::finish`], filled through a few 4 MiB buffers that a background thread writes
//! with `O_DIRECT`.
//!
//! Why: a replay writes gigabytes (the rewritten capture, the JSON report) that nothing reads
//! back soon. Through the page cache every byte is first copied into a fresh cache page, and on
//! a VM whose free memory goes back to the host (virtio balloon free page reporting) every
//! fresh page is a host fault as well: that copy was the largest single cost in a profile of a
//! replay. With `O_DIRECT` (open(2)) the device reads our buffer itself, and the thread means
//! the writer waits for the disk only when every buffer is in flight.
//!
//! Direct I/O wants the buffer's address, the length and the file offset aligned to the
//! device's logical block size; 4096 bytes covers the block sizes in use. Full buffers meet all
//! three; the last one is padded to a whole block and the file cut back to its length
//! (ftruncate), so the file holds exactly the bytes written. Where the file system refuses
//! `O_DIRECT` (EINVAL at open, or at a write), the file goes through the page cache instead:
//! the same bytes, only slower.
//!
//! A file that never fills its first buffer never starts a thread and holds one buffer; the
//! others are allocated as the thread falls behind, up to [`BUFFERS`].
//!
//! Each `PATH.partial` is locked (flock(2), exclusive) from its creation until it is renamed
//! or removed, so that a second run given the same output can tell the file of a run still
//! writing it (locked: the second run fails, touching nothing) from one a killed run left
//! behind (no lock: removed and written afresh).
//!
//! Only a regular file (or a name not yet taken) is written as `PATH.partial` and renamed: an
//! output that already exists as something else, a device such as `/dev/null` or a FIFO, is
//! written in place ([`Destination`]); renaming over it would put a regular file where the
//! device was, for every program on the machine.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

/// Bytes per buffer (and per direct write).
pub const BUF_SIZE: usize = 4 << 20;
/// Buffers per file at most: one filling, one being written, one queued.
pub const BUFFERS: usize = 3;
/// Alignment of buffers, direct write lengths and offsets.
const ALIGN: usize = 4096;

/// Where the bytes of an output named `PATH` go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A regular file or a new name: written to `partial` (`PATH.partial`) and renamed over
    /// `path` once complete, so a failed run leaves nothing under the real name. A symbolic link
    /// is followed: the link stays and its target is replaced.
    Replace {
        /// The output's name (a link's target, for a symbolic link).
        path: PathBuf,
        /// `path` with `.partial` appended.
        partial: PathBuf,
    },
    /// Something that exists and is neither a regular file nor a folder (a character or block
    /// device, a FIFO, a socket): opened and written as it is, never renamed over or removed.
    InPlace(PathBuf),
}

/// Creates `partial` afresh for writing with `options` and takes an exclusive flock(2) lock on
/// it, held until the file is renamed or removed ([`Partial`]): the lock is what tells a partial
/// file another run is writing from one a run that is over left behind. Whatever non-folder
/// entry has that name is removed first ([`remove_stale`]), unless it is a file another process
/// holds the lock of: then nothing is touched and the error is [`Locked`] (two runs writing one
/// output, where the second used to delete the first's file and the first then renamed the
/// second's half-written one into place). The new file is created exclusively, so no link is
/// ever followed and no existing file written through.
/// That a partial name is not an input is checked before (`replay::refuse_overwrite`).
/// The file is created and noted as being written in one step, under the run's lock, so an
/// interruption finds every partial file there is ([`on_interrupt`]).
fn create_partial(partial: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let mut run = lock_run();
    // Another run that takes the name between our looks sends us round again; a few rounds
    // without a file of our own to lock means runs are racing for this output.
    for _ in 0..4 {
        remove_stale(partial)?;
        let file = match options.write(true).create_new(true).open(partial) {
            Err(e)
                if e.kind() == io::ErrorKind::AlreadyExists
                    && !std::fs::symlink_metadata(partial).is_ok_and(|m| m.is_dir()) =>
            {
                continue;
            }
            file => file?,
        };
        // Between the creation and the lock, another run may have taken our new file for a
        // stale one: it holds the lock (and removes the file), or it has removed it already
        // and the name is no longer this file's.
        match try_lock(&file) {
            Ok(true) => {}
            Ok(false) => return Err(locked(partial)),
            Err(e) => {
                let _ = std::fs::remove_file(partial);
                return Err(e);
            }
        }
        if !is_at(&file, partial) {
            continue;
        }
        let lock = match file.try_clone() {
            Ok(lock) => lock,
            Err(e) => {
                let _ = std::fs::remove_file(partial);
                return Err(e);
            }
        };
        run.partials.push(Partial {
            path: partial.to_owned(),
            _lock: Some(lock),
        });
        return Ok(file);
    }
    Err(locked(partial))
}

/// Removes what has the name `partial` and is no live run's: a file no process holds the lock
/// of (a run killed before it could remove it), a symbolic link, anything but a folder (left
/// for the creation to fail on). A file whose lock another process holds is left as it is:
/// the error is [`Locked`]. The lock is taken to remove the file, so a run that starts to
/// write it meanwhile cannot, and the file removed is the one that was looked at (the name may
/// have been taken again in between: then nothing is removed).
fn remove_stale(partial: &Path) -> io::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(partial) else {
        return Ok(());
    };
    if meta.is_dir() {
        return Ok(());
    }
    if meta.is_file() {
        // O_NOFOLLOW: a link put there since is removed, not followed; O_NONBLOCK: nor does a
        // FIFO put there block the open. A file this process cannot open either way (its
        // mode) is no file lsnat made for writing: removed as before.
        let open = |read: bool| {
            OpenOptions::new()
                .read(read)
                .write(!read)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(partial)
        };
        let opened = match open(true) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => open(false),
            other => other,
        };
        match opened {
            Ok(file) => {
                if !try_lock(&file)? {
                    return Err(locked(partial));
                }
                if is_at(&file, partial) {
                    remove_missing_ok(partial)?;
                }
                // The lock goes with `file`, after the removal.
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(_) => {}
        }
    }
    remove_missing_ok(partial)
}

fn remove_missing_ok(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Takes the exclusive flock(2) lock of `file` without waiting: `false` when another open file
/// (another process's, or another open of it in this one) holds it; `true` also where the file
/// system keeps no such locks (the output is then written unlocked, as before the lock).
fn try_lock(file: &File) -> io::Result<bool> {
    loop {
        // SAFETY: the descriptor of `file`, open for the whole call; flock(2) only changes the
        // lock of the open file description, no memory.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => {}
            // A file system that keeps no such locks (some FUSE and network mounts): written
            // unlocked, as before the lock existed, rather than not at all.
            Some(libc::EOPNOTSUPP | libc::ENOLCK | libc::ENOSYS | libc::EINVAL) => return Ok(true),
            _ => return Err(io::Error::new(e.kind(), format!("cannot lock: {e}"))),
        }
    }
}

/// Whether the name `path` still leads to the open `file` (same device and inode), not to a
/// file put in its place, nor nowhere.
fn is_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(f), Ok(p)) => (f.dev(), f.ino()) == (p.dev(), p.ino()),
        _ => false,
    }
}

/// The cause of an output that cannot be written because another process holds the lock of
/// its partial file: another lsnat run writing the same output. Carried inside an
/// [`io::Error`] (kind `ResourceBusy`); [`is_locked`] tells it.
#[derive(Debug)]
struct Locked(PathBuf);

impl std::fmt::Display for Locked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another lsnat run is writing this output ({} is locked)",
            self.0.display()
        )
    }
}

impl std::error::Error for Locked {}

fn locked(partial: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::ResourceBusy, Locked(partial.to_owned()))
}

/// Whether `error` says that another lsnat run is writing the output (the lock of its partial
/// file is held): its text then is the whole cause, to follow the output's name.
pub fn is_locked(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|e| e.is::<Locked>())
}

/// A partial file of this process's run, with the second descriptor of it that holds its
/// flock(2) lock (the descriptors share one open file description, so one lock; it lasts until
/// both are closed): the lock stays taken after the writer closes its descriptor, while the
/// whole file waits for its rename, and goes only once the file is renamed or removed.
struct Partial {
    path: PathBuf,
    _lock: Option<File>,
}

/// Renames the whole `partial` to `path`, or, in a run begun with [`begin_run`], notes it for
/// [`commit_run`]: a run's outputs replace what was there only once all are whole. The lock of
/// the partial file is held until it is renamed.
fn finish_partial(partial: &Path, path: &Path) -> Result<(), OutputError> {
    let mut run = lock_run();
    let held = match run.partials.iter().rposition(|p| p.path == partial) {
        Some(i) => run.partials.swap_remove(i),
        None => Partial {
            path: partial.to_owned(),
            _lock: None,
        },
    };
    if run.defer {
        run.pending.push((held, path.to_owned()));
        return Ok(());
    }
    let renamed = std::fs::rename(partial, path).map_err(|error| {
        let _ = std::fs::remove_file(partial);
        let what = format!("cannot rename to {}", path.display());
        OutputError::new(partial, &what, error)
    });
    drop(held);
    renamed
}

/// Removes the partial file of an output that will not be finished (then lets go of its lock).
fn abandon_partial(partial: &Path) {
    let mut run = lock_run();
    let _ = std::fs::remove_file(partial);
    if let Some(i) = run.partials.iter().rposition(|p| p.path == partial) {
        run.partials.swap_remove(i);
    }
}

impl Destination {
    /// `PATH.partial`, where an output named `path` is written before it is renamed, or `None`
    /// for one written in place.
    pub fn partial_path(path: &Path) -> Option<PathBuf> {
        match Destination::of(path) {
            Destination::Replace { partial, .. } => Some(partial),
            Destination::InPlace(_) => None,
        }
    }

    /// Where an output named `path` is written.
    pub fn of(path: &Path) -> Destination {
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() && !m.is_dir() => Destination::InPlace(path.into()),
            _ => {
                let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink());
                let path = match is_link {
                    true => std::fs::canonicalize(path).unwrap_or_else(|_| path.into()),
                    false => path.into(),
                };
                let mut partial = path.as_os_str().to_owned();
                partial.push(".partial");
                Destination::Replace {
                    partial: partial.into(),
                    path,
                }
            }
        }
    }

    /// Writes all of `bytes` as the whole output: through `PATH.partial` (removed again if
    /// anything fails) or in place.
    pub fn write_whole(&self, bytes: &[u8]) -> Result<(), OutputError> {
        match self {
            Destination::InPlace(path) => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|error| OutputError::new(path, "cannot open", error))?;
                file.write_all(bytes)
                    .map_err(|error| OutputError::new(path, "write error", error))
            }
            Destination::Replace { path, partial } => {
                let mut file = create_partial(partial, &mut OpenOptions::new())
                    .map_err(|error| OutputError::creating(path, partial, error))?;
                if let Err(error) = file.write_all(bytes) {
                    abandon_partial(partial);
                    return Err(OutputError::new(partial, "write error", error));
                }
                drop(file);
                finish_partial(partial, path)
            }
        }
    }
}

/// The outputs of this process's run: the partial files being written, and, in a run begun
/// with [`begin_run`], the whole ones waiting for [`commit_run`].
#[derive(Default)]
struct Run {
    /// Renames wait for [`commit_run`] (the command line's runs); else each output is renamed
    /// when whole (library use).
    defer: bool,
    /// Committed, aborted or interrupted: nothing more happens to the outputs.
    done: bool,
    partials: Vec<Partial>,
    /// (partial file, output name), whole.
    pending: Vec<(Partial, PathBuf)>,
    /// Folders the run created for its outputs ([`create_folder`]), outermost first: removed
    /// again, when empty, if the run fails or is interrupted.
    folders: Vec<PathBuf>,
}

static RUN: std::sync::Mutex<Run> = std::sync::Mutex::new(Run {
    defer: false,
    done: false,
    partials: Vec::new(),
    pending: Vec::new(),
    folders: Vec::new(),
});

/// Creates the folder `dir` with any parents missing, for outputs. In a run begun with
/// [`begin_run`], each folder made here is noted (under the run's lock, so an interruption
/// finds it) and removed again if the run fails or is interrupted and it is still empty; a
/// folder that was there before is never removed.
pub fn create_folder(dir: &Path) -> io::Result<()> {
    let mut run = lock_run();
    let mut missing = Vec::new();
    let mut d = dir;
    while std::fs::symlink_metadata(d).is_err() {
        missing.push(d.to_path_buf());
        match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => d = p,
            _ => break,
        }
    }
    for m in missing.iter().rev() {
        match std::fs::create_dir(m) {
            Ok(()) if run.defer => run.folders.push(m.clone()),
            Ok(()) => {}
            // `new/..`, which the creation of `new` made.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && m.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    if dir.is_dir() {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::NotADirectory, "not a folder"))
    }
}

fn lock_run() -> std::sync::MutexGuard<'static, Run> {
    RUN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Begins a run whose outputs replace their names only together, at [`commit_run`]: until
/// then each stays `PATH.partial`, and a run that fails ([`abort_run`]) or is interrupted
/// ([`on_interrupt`]) leaves none of them, and every file that was there before as it was.
pub fn begin_run() {
    lock_run().defer = true;
}

/// Renames every whole output of the run to its name. An output still being written (none,
/// when the run got this far) is removed.
pub fn commit_run() -> Result<(), OutputError> {
    let mut run = lock_run();
    run.done = true;
    for p in std::mem::take(&mut run.partials) {
        let _ = std::fs::remove_file(&p.path);
    }
    // Their locks go when `pending` does, after the renames.
    let pending = std::mem::take(&mut run.pending);
    let folders = std::mem::take(&mut run.folders);
    for (i, (partial, path)) in pending.iter().enumerate() {
        let partial = &partial.path;
        if let Err(error) = std::fs::rename(partial, path) {
            for (p, _) in &pending[i..] {
                let _ = std::fs::remove_file(&p.path);
            }
            remove_folders(folders);
            let what = format!("cannot rename to {}", path.display());
            return Err(OutputError::new(partial, &what, error));
        }
    }
    Ok(())
}

/// Removes the folders a run made, innermost first, those left empty only.
fn remove_folders(folders: Vec<PathBuf>) {
    for f in folders.iter().rev() {
        let _ = std::fs::remove_dir(f);
    }
}

/// The run failed: removes its partial files, whole or not, and the folders it made for them
/// that are left empty; no output name is touched.
pub fn abort_run() {
    let mut run = lock_run();
    run.done = true;
    remove_all(&mut run);
}

/// Removes the run's partial files, each before letting go of its lock.
fn remove_all(run: &mut Run) {
    for p in std::mem::take(&mut run.partials) {
        let _ = std::fs::remove_file(&p.path);
    }
    for (p, _) in std::mem::take(&mut run.pending) {
        let _ = std::fs::remove_file(&p.path);
    }
    remove_folders(std::mem::take(&mut run.folders));
}

/// For a signal handler (Ctrl-C, SIGTERM): unless the run is already committed or aborted,
/// removes its partial files and ends the process with exit code 130, holding the run's lock
/// so that nothing is created, renamed or committed meanwhile. Returns only when the run was
/// over before the signal.
pub fn on_interrupt() {
    let mut run = lock_run();
    if run.done {
        return;
    }
    remove_all(&mut run);
    eprintln!("lsnat: interrupted; no output written");
    std::process::exit(130);
}

/// The outputs a run has renamed into place so far, outside a run begun with [`begin_run`]
/// (library use, where each output is renamed when whole). Unless [`Committed::keep`] is
/// called, they are removed again when it is dropped, so a run that fails after finishing some
/// of its outputs leaves none of them. In a [`begin_run`] run nothing is renamed before
/// [`commit_run`], and this does nothing. Outputs written in place are never removed.
#[derive(Debug, Default)]
pub struct Committed {
    paths: Vec<PathBuf>,
    kept: bool,
}

impl Committed {
    /// Notes that the output named `path` has been written whole.
    pub fn add(&mut self, path: &Path) {
        if lock_run().defer {
            return;
        }
        if let Destination::Replace { path, .. } = Destination::of(path) {
            self.paths.push(path);
        }
    }

    /// The run succeeded: the outputs stay.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Committed {
    fn drop(&mut self) {
        if !self.kept {
            for p in &self.paths {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// An output file that does not survive unless finished: written to `PATH.partial`, renamed to
/// `PATH` by [`OutputFile::finish`], removed when dropped unfinished. Bytes reach the file in
/// whole buffers; a write error shows up at a later `write` or at `finish`.
pub struct OutputFile {
    /// The file `finish` produces.
    path: PathBuf,
    /// The file being written.
    partial: PathBuf,
    /// The buffer being filled.
    buf: Buffer,
    io: Io,
    /// Misalignment of new buffers, in bytes: 0, except for tests of the fallback.
    skew: usize,
    /// Set once the partial file has been renamed (or for a file written in place); otherwise
    /// dropping removes the partial file.
    finished: bool,
    /// Written in place ([`Destination::InPlace`]): `partial` is `path`, nothing is renamed.
    in_place: bool,
}

/// Who writes full buffers.
enum Io {
    /// The caller, at `finish`: no buffer has filled yet.
    Inline(Sink),
    /// The I/O thread.
    Thread(IoThread),
    /// The I/O thread failed with this error (kept for every later call), or the file is
    /// finished.
    Failed(io::ErrorKind, String),
}

struct IoThread {
    /// Full buffers to the thread.
    full: Sender<Buffer>,
    /// Written buffers back from it.
    empty: Receiver<Buffer>,
    /// Buffers allocated so far, the one being filled included.
    buffers: usize,
    /// Tells the thread to drop what is queued (the file is being abandoned).
    abandon: Arc<AtomicBool>,
    handle: JoinHandle<io::Result<Sink>>,
}

/// The open file and how it is written.
struct Sink {
    file: File,
    /// Still open with `O_DIRECT`.
    direct: bool,
    /// Bytes written so far, the padding of a last direct block included.
    written: u64,
}

/// An output file that could not be written: the file, what failed, why. Displays as one line,
/// `PATH: WHAT: ERROR`; for an output another run is writing ([`is_locked`]), `OUTPUT: ERROR`
/// (`out.pcap: another lsnat run is writing this output (out.pcap.partial is locked)`).
#[derive(Debug)]
pub struct OutputError {
    /// The file (the partial file: that is what exists while writing; the output's name when
    /// another run is writing it).
    pub path: PathBuf,
    /// What failed: "cannot create", "write error", "cannot rename to PATH".
    pub what: String,
    /// Why.
    pub error: io::Error,
}

impl OutputError {
    fn new(path: &Path, what: &str, error: io::Error) -> OutputError {
        OutputError {
            path: path.into(),
            what: what.into(),
            error,
        }
    }

    /// `partial`, the partial file of the output `output`, could not be created: named by the
    /// partial file, or by the output when another run is writing it.
    fn creating(output: &Path, partial: &Path, error: io::Error) -> OutputError {
        match is_locked(&error) {
            true => OutputError::new(output, "", error),
            false => OutputError::new(partial, "cannot create", error),
        }
    }

    /// What failed and why, one line: all of it but the file's name.
    pub fn cause(&self) -> String {
        match is_locked(&self.error) {
            true => self.error.to_string(),
            false => format!("{}: {}", self.what, self.error),
        }
    }
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.cause())
    }
}

impl std::error::Error for OutputError {}

impl OutputFile {
    /// Creates `PATH.partial`, with `O_DIRECT` where the file system takes it; or opens `PATH`
    /// itself when it is a device or a FIFO ([`Destination`]).
    pub fn create(path: &Path) -> Result<Self, OutputError> {
        Self::open(path, true, 0)
    }

    /// The file being written.
    pub fn partial(&self) -> &Path {
        &self.partial
    }

    /// Creates `PATH.partial` (or opens `PATH`, see [`Destination`]): direct or not, new
    /// buffers misaligned by `skew` bytes.
    fn open(given: &Path, direct: bool, skew: usize) -> Result<Self, OutputError> {
        let (path, partial, in_place) = match Destination::of(given) {
            Destination::Replace { path, partial } => (path, partial, false),
            Destination::InPlace(path) => (path.clone(), path, true),
        };
        let direct = direct && !in_place;
        let open = |direct: bool| {
            let mut options = OpenOptions::new();
            if direct {
                options.custom_flags(libc::O_DIRECT);
            }
            match in_place {
                true => options.write(true).open(&partial),
                false => create_partial(&partial, &mut options),
            }
        };
        let (file, direct) = match open(direct) {
            Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => (open(false), false),
            file => (file, direct),
        };
        let file = file.map_err(|error| match in_place {
            true => OutputError::new(&partial, "cannot open", error),
            false => OutputError::creating(given, &partial, error),
        })?;
        Ok(OutputFile {
            path,
            partial,
            buf: Buffer::new(skew),
            io: Io::Inline(Sink {
                file,
                direct,
                written: 0,
            }),
            skew,
            finished: in_place,
            in_place,
        })
    }

    /// Writes what is buffered, closes the file and renames it to `PATH`; any write error of
    /// the I/O thread comes out here at the latest.
    pub fn finish(mut self) -> Result<(), OutputError> {
        self.close().map(|_direct| ())
    }

    /// [`OutputFile::finish`], telling whether the file was still written directly at the end.
    fn close(&mut self) -> Result<bool, OutputError> {
        let write_error = |partial: &Path, error| OutputError {
            path: partial.to_owned(),
            what: "write error".into(),
            error,
        };
        let mut sink = match std::mem::replace(&mut self.io, Io::finished()) {
            Io::Inline(sink) => sink,
            Io::Thread(t) => {
                drop(t.full);
                join(t.handle).map_err(|e| write_error(&self.partial, e))?
            }
            Io::Failed(kind, msg) => {
                return Err(write_error(&self.partial, io::Error::new(kind, msg)));
            }
        };
        sink.write_last(&mut self.buf)
            .map_err(|e| write_error(&self.partial, e))?;
        let direct = sink.direct;
        drop(sink);
        if !self.in_place {
            // Whether renamed or not, the partial file is no longer this value's to remove.
            self.finished = true;
            finish_partial(&self.partial, &self.path)?;
        }
        self.finished = true;
        Ok(direct)
    }

    /// Writes the bytes `region[start..]` next, from `region` itself where it can: when the
    /// file is written directly, `region` starts at a 4096-byte boundary and `start` equals
    /// where the next byte falls in its block. Then the bytes still buffered are written, the
    /// last partial block of them is copied into `region[..start]` (which the caller gives up),
    /// and `region` goes to the disk without being copied, up to its last whole block; only
    /// that remainder is buffered. Returns `Ok(false)`, having written nothing, when the
    /// conditions do not hold (the caller then writes the bytes the usual way).
    ///
    /// The write happens on the calling thread, after the I/O thread (if any) has finished:
    /// `region` is borrowed only for the call.
    pub fn write_in_place(&mut self, region: &mut [u8], start: usize) -> io::Result<bool> {
        let aligned = region.as_ptr().addr().is_multiple_of(ALIGN) && self.skew == 0;
        if !aligned || start >= ALIGN || start > region.len() {
            return Ok(false);
        }
        self.reclaim();
        let Io::Inline(sink) = &mut self.io else {
            return Err(self.io_error());
        };
        let pending = self.buf.len;
        if !sink.direct || pending % ALIGN != start {
            return Ok(false);
        }
        let whole = pending - start;
        let result = sink.write(&self.buf.filled()[..whole]).and_then(|()| {
            region[..start].copy_from_slice(&self.buf.filled()[whole..]);
            let cut = region.len() - region.len() % ALIGN;
            sink.write(&region[..cut])?;
            let rest = &region[cut..];
            self.buf.len = 0;
            self.buf.spare()[..rest.len()].copy_from_slice(rest);
            self.buf.len = rest.len();
            Ok(true)
        });
        if let Err(e) = &result {
            self.io = Io::Failed(e.kind(), e.to_string());
        }
        result
    }

    /// Takes the file back from the I/O thread, once it has written everything queued.
    fn reclaim(&mut self) {
        if matches!(self.io, Io::Thread(_))
            && let Io::Thread(t) = std::mem::replace(&mut self.io, Io::finished())
        {
            drop(t.full);
            self.io = match join(t.handle) {
                Ok(sink) => Io::Inline(sink),
                Err(e) => Io::Failed(e.kind(), e.to_string()),
            };
        }
    }

    /// Hands the buffer being filled to the I/O thread, starting it if need be, and takes an
    /// empty one. A buffer that is not full is cut after its last whole block (direct writes
    /// take whole blocks); the bytes after it start the next buffer.
    #[cold]
    fn submit(&mut self) -> io::Result<()> {
        if let Io::Inline(_) = self.io {
            self.start_thread();
        }
        let Io::Thread(t) = &mut self.io else {
            return Err(self.io_error());
        };
        let next = match t.empty.try_recv() {
            Ok(b) => Some(b),
            Err(_) if t.buffers < BUFFERS => {
                t.buffers += 1;
                Some(Buffer::new(self.skew))
            }
            Err(_) => t.empty.recv().ok(),
        };
        if let Some(mut next) = next {
            // A buffer not filled to the end goes in whole blocks: the rest starts the next.
            let cut = self.buf.len - self.buf.len % ALIGN;
            let rest = self.buf.len - cut;
            let from = self.buf.start + cut;
            next.len = rest;
            let (to, mem) = (next.start, &mut next.mem);
            mem[to..to + rest].copy_from_slice(&self.buf.mem[from..from + rest]);
            self.buf.len = cut;
            if t.full.send(std::mem::replace(&mut self.buf, next)).is_ok() {
                return Ok(());
            }
        }
        // The thread stopped: it failed.
        if let Io::Thread(t) = std::mem::replace(&mut self.io, Io::finished()) {
            drop(t.full);
            let e = join(t.handle)
                .err()
                .unwrap_or_else(|| io::Error::other("the output thread stopped"));
            self.io = Io::Failed(e.kind(), e.to_string());
        }
        Err(self.io_error())
    }

    /// The error that stopped the I/O thread, or why there is none.
    fn io_error(&self) -> io::Error {
        match &self.io {
            Io::Failed(kind, msg) => io::Error::new(*kind, msg.clone()),
            _ => io::Error::other("the output thread stopped"),
        }
    }

    /// Moves the file to an I/O thread.
    fn start_thread(&mut self) {
        let Io::Inline(mut sink) = std::mem::replace(&mut self.io, Io::finished()) else {
            return;
        };
        let (full_tx, full_rx) = mpsc::channel::<Buffer>();
        let (empty_tx, empty_rx) = mpsc::channel::<Buffer>();
        let abandon = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&abandon);
        let spawned = std::thread::Builder::new()
            .name("lsnat-output".into())
            .spawn(move || {
                for mut buf in full_rx {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    sink.write_full(&buf)?;
                    buf.len = 0;
                    let _ = empty_tx.send(buf);
                }
                Ok(sink)
            });
        self.io = match spawned {
            Ok(handle) => Io::Thread(IoThread {
                full: full_tx,
                empty: empty_rx,
                buffers: 1,
                abandon,
                handle,
            }),
            Err(e) => Io::Failed(e.kind(), format!("cannot start a thread: {e}")),
        };
    }
}

impl Io {
    /// The state of a finished (or finishing) file.
    fn finished() -> Io {
        Io::Failed(io::ErrorKind::Other, "already finished".into())
    }
}

/// Waits for the I/O thread and takes the file back.
fn join(handle: JoinHandle<io::Result<Sink>>) -> io::Result<Sink> {
    handle
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the output thread failed")))
}

impl Write for OutputFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.buf.len == BUF_SIZE {
            self.submit()?;
        }
        let n = bytes.len().min(BUF_SIZE - self.buf.len);
        self.buf.spare()[..n].copy_from_slice(&bytes[..n]);
        self.buf.len += n;
        Ok(n)
    }

    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.buf.spare().get_mut(..bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.buf.len += bytes.len();
                Ok(())
            }
            None => self.write_all_slow(bytes),
        }
    }

    /// Does nothing: direct writes take whole blocks, so bytes reach the file a buffer at a
    /// time and the rest at [`OutputFile::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl OutputFile {
    /// Lets `f` write the next bytes straight into the buffer being filled (no copy): it is
    /// given at least `room` bytes and returns how many it wrote. When the buffer has less
    /// room left, its whole blocks go to the disk first and the rest moves to a fresh one.
    /// Room for more than a buffer holds is given in a temporary, then copied.
    pub fn append_with(
        &mut self,
        room: usize,
        f: impl FnOnce(&mut [u8]) -> usize,
    ) -> io::Result<()> {
        if room > BUF_SIZE - ALIGN {
            let mut tmp = vec![0; room];
            let n = f(&mut tmp);
            return self.write_all(&tmp[..n]);
        }
        if BUF_SIZE - self.buf.len < room {
            self.submit()?;
        }
        let n = f(self.buf.spare());
        debug_assert!(n <= BUF_SIZE - self.buf.len);
        self.buf.len += n;
        Ok(())
    }

    #[cold]
    fn write_all_slow(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = self.write(bytes)?;
            bytes = &bytes[n..];
        }
        Ok(())
    }
}

impl Drop for OutputFile {
    /// Stops the I/O thread (what it has queued is not written), then removes the partial
    /// file unless [`OutputFile::finish`] renamed it; a file written in place stays.
    fn drop(&mut self) {
        if let Io::Thread(t) = std::mem::replace(&mut self.io, Io::finished()) {
            t.abandon.store(true, Ordering::Relaxed);
            drop(t.full);
            let _ = join(t.handle);
        }
        if !self.finished {
            abandon_partial(&self.partial);
        }
    }
}

impl Sink {
    /// Writes a full buffer.
    fn write_full(&mut self, buf: &Buffer) -> io::Result<()> {
        self.write(buf.filled())
    }

    /// Writes the last buffer (any length): directly, padded to a whole block, then cut back.
    fn write_last(&mut self, buf: &mut Buffer) -> io::Result<()> {
        let end = self.written + buf.len as u64;
        if self.direct {
            self.write(buf.padded())?;
        } else {
            self.write(buf.filled())?;
        }
        if self.written != end {
            self.file.set_len(end)?;
        }
        Ok(())
    }

    /// Writes all of `bytes`; a direct write refused with EINVAL is taken as the file system
    /// (or this buffer) not doing direct I/O, and the rest goes through the page cache.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut done = 0;
        while done < bytes.len() {
            match (&self.file).write(&bytes[done..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    done += n;
                    self.written += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                    clear_direct(&self.file)?;
                    self.direct = false;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Clears `O_DIRECT` on an open file (fcntl(2) `F_SETFL`), so later writes go through the page
/// cache.
fn clear_direct(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is the open descriptor of `file`, which outlives the call; F_GETFL takes no
    // argument and reads only the descriptor's status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above; F_SETFL takes an int argument and changes only the status flags.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// [`BUF_SIZE`] bytes starting at an [`ALIGN`]-aligned address (plus `skew`): a zeroed `Vec`
/// one block longer than that, used from the first aligned byte on. The `Vec` never grows, so
/// the address stays put; nothing here needs `unsafe`.
struct Buffer {
    mem: Vec<u8>,
    /// Where the aligned part starts in `mem`.
    start: usize,
    /// Bytes filled.
    len: usize,
}

impl Buffer {
    fn new(skew: usize) -> Buffer {
        let mem = vec![0u8; BUF_SIZE + 2 * ALIGN];
        let addr = mem.as_ptr().addr();
        let start = addr.next_multiple_of(ALIGN) - addr + skew % ALIGN;
        Buffer { mem, start, len: 0 }
    }

    fn filled(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }

    /// The filled part and zeros after it, up to a whole number of blocks.
    fn padded(&mut self) -> &[u8] {
        let (start, len) = (self.start, self.len);
        let end = start + len.next_multiple_of(ALIGN);
        self.mem[start + len..end].fill(0);
        &self.mem[start..end]
    }

    fn spare(&mut self) -> &mut [u8] {
        &mut self.mem[self.start + self.len..self.start + BUF_SIZE]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("lsnat-output-{}-{name}", std::process::id()))
    }

    fn content(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 4099) as u8).collect()
    }

    /// Writes `data` in uneven pieces (small records and writes larger than a buffer), some
    /// copied (`write_all`), most written in place (`append_with`, asking for more room than
    /// the piece needs, so that buffers go out part-filled; a piece larger than a buffer goes
    /// through its temporary).
    fn write_pieces(out: &mut OutputFile, data: &[u8]) {
        let sizes = [1, 7, 16, 4096, 100_000, 3, BUF_SIZE + 5, 1500, 2600];
        let mut rest = data;
        for (k, &n) in sizes.iter().cycle().enumerate() {
            if rest.is_empty() {
                break;
            }
            let (piece, after) = rest.split_at(n.min(rest.len()));
            if k % 3 != 2 {
                out.append_with(piece.len() + 2000, |buf| {
                    buf[..piece.len()].copy_from_slice(piece);
                    piece.len()
                })
                .expect("append");
            } else {
                out.write_all(piece).expect("write");
            }
            rest = after;
        }
    }

    const SIZES: [usize; 11] = [
        0,
        1,
        4095,
        4096,
        4097,
        BUF_SIZE - 1,
        BUF_SIZE,
        BUF_SIZE + 1,
        3 * BUF_SIZE + 4097,
        (BUFFERS + 3) * BUF_SIZE,
        (BUFFERS + 3) * BUF_SIZE + 123,
    ];

    /// Each size through `open(direct, skew)` gives the same bytes as a buffered write;
    /// returns whether the last file was still direct at the end.
    fn same_bytes(name: &str, direct: bool, skew: usize) -> bool {
        let path = temp(name);
        let reference = temp(&format!("{name}-ref"));
        let mut still_direct = false;
        for size in SIZES {
            let data = content(size);
            let mut out = OutputFile::open(&path, direct, skew).expect("create");
            write_pieces(&mut out, &data);
            still_direct = out.close().expect("finish");
            drop(out);
            let mut buffered = std::io::BufWriter::new(File::create(&reference).expect("ref"));
            buffered.write_all(&data).expect("ref write");
            drop(buffered);
            let got = std::fs::read(&path).expect("output");
            assert!(
                got == std::fs::read(&reference).expect("ref"),
                "{size} bytes"
            );
            assert!(!PathBuf::from(format!("{}.partial", path.display())).exists());
        }
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(&reference);
        still_direct
    }

    /// Lines written in place, each given more room than it takes (as the JSON report's
    /// are): every buffer goes out part-filled, cut after its last whole block.
    #[test]
    fn lines_written_in_place_give_the_same_bytes() {
        let data = content(3 * BUF_SIZE + 777);
        for (direct, skew) in [(true, 0), (false, 0), (true, 1)] {
            let path = temp(&format!("lines-{direct}-{skew}"));
            let mut out = OutputFile::open(&path, direct, skew).expect("create");
            let mut rest = &data[..];
            let mut k = 0;
            while !rest.is_empty() {
                k += 1;
                let (line, after) = rest.split_at((k * 977 % 2500 + 1).min(rest.len()));
                out.append_with(2600, |buf| {
                    buf[..line.len()].copy_from_slice(line);
                    line.len()
                })
                .expect("append");
                rest = after;
            }
            out.close().expect("finish");
            drop(out);
            let got = std::fs::read(&path).expect("output");
            let _ = std::fs::remove_file(&path);
            assert!(got == data, "direct {direct}, skew {skew}");
        }
    }

    #[test]
    fn direct_writes_the_same_bytes() {
        same_bytes("direct", true, 0);
    }

    #[test]
    fn buffered_writes_the_same_bytes() {
        assert!(!same_bytes("buffered", false, 0));
    }

    /// A misaligned buffer makes a file system that checks alignment (ext4, xfs) refuse the
    /// direct write with EINVAL: the file goes on through the page cache. (tmpfs takes
    /// `O_DIRECT` since Linux 6.6 without checking alignment, so there this is the direct path
    /// again.)
    #[test]
    fn refused_direct_write_falls_back() {
        same_bytes("misaligned", true, 1);
    }

    #[test]
    fn missing_folder_is_named() {
        let path = temp("no-such-folder").join("out.pcap");
        let Err(e) = OutputFile::create(&path) else {
            panic!("created in a missing folder");
        };
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("{}.partial: cannot create: ", path.display())));
        assert!(!msg.contains('\n'));
    }

    /// A partial file whose lock another open file holds (another run writing the output) is
    /// neither removed nor written: the creation fails, naming the output and the locked
    /// file; once the lock is let go, the file is a stale one and replaced. A partial file
    /// being written holds its lock until it is renamed.
    #[test]
    fn a_locked_partial_is_left_alone() {
        let path = temp("locked");
        let partial = PathBuf::from(format!("{}.partial", path.display()));
        std::fs::write(&partial, b"another run's").expect("partial");
        let other = File::open(&partial).expect("open");
        assert!(try_lock(&other).expect("lock"));
        let Err(e) = OutputFile::create(&path) else {
            panic!("created over a locked partial file");
        };
        assert!(is_locked(&e.error));
        let want = format!(
            "{}: another lsnat run is writing this output ({} is locked)",
            path.display(),
            partial.display()
        );
        assert_eq!(e.to_string(), want);
        let Err(e) = Destination::of(&path).write_whole(b"whole") else {
            panic!("written over a locked partial file");
        };
        assert_eq!(e.to_string(), want);
        assert_eq!(std::fs::read(&partial).expect("partial"), b"another run's");
        assert!(!path.exists());
        drop(other);
        let mut out = OutputFile::create(&path).expect("a stale partial file is replaced");
        out.write_all(b"mine").expect("write");
        let reader = File::open(&partial).expect("open");
        assert!(!try_lock(&reader).expect("lock"), "locked while written");
        out.finish().expect("finish");
        assert!(try_lock(&reader).expect("lock"), "let go once renamed");
        assert_eq!(std::fs::read(&path).expect("output"), b"mine");
        assert!(!partial.exists());
        std::fs::remove_file(&path).expect("remove");
    }

    #[test]
    fn dropped_unfinished_leaves_nothing() {
        let path = temp("dropped");
        let partial = PathBuf::from(format!("{}.partial", path.display()));
        for size in [10, 2 * BUF_SIZE + 10, (BUFFERS + 2) * BUF_SIZE] {
            let mut out = OutputFile::create(&path).expect("create");
            assert_eq!(out.partial(), partial);
            write_pieces(&mut out, &content(size));
            assert!(partial.exists() && !path.exists());
            drop(out);
            assert!(!partial.exists() && !path.exists(), "{size} bytes");
        }
    }

    /// A FIFO (like a device) is written in place: the reader gets every byte and the FIFO is
    /// still a FIFO afterwards, with no `.partial` beside it.
    #[test]
    fn fifo_is_written_in_place() {
        use std::ffi::CString;
        use std::io::Read;
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::FileTypeExt;
        let path = temp("fifo");
        let _ = std::fs::remove_file(&path);
        let c = CString::new(path.as_os_str().as_bytes()).expect("path");
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        assert_eq!(Destination::of(&path), Destination::InPlace(path.clone()));
        let reader_path = path.clone();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            File::open(reader_path)
                .expect("open fifo")
                .read_to_end(&mut got)
                .expect("read");
            got
        });
        let data = content(2 * BUF_SIZE + 4097);
        let mut out = OutputFile::create(&path).expect("open fifo for writing");
        assert_eq!(out.partial(), path);
        write_pieces(&mut out, &data);
        out.finish().expect("finish");
        assert!(reader.join().expect("reader") == data);
        assert!(
            std::fs::symlink_metadata(&path)
                .expect("fifo")
                .file_type()
                .is_fifo()
        );
        assert!(!PathBuf::from(format!("{}.partial", path.display())).exists());
        std::fs::remove_file(&path).expect("remove fifo");
    }

    /// A symbolic link is followed: the link stays a link, its target gets the bytes.
    #[test]
    fn symlink_target_is_replaced() {
        let target = temp("link-target");
        let link = temp("link");
        let _ = std::fs::remove_file(&link);
        std::fs::write(&target, b"old").expect("target");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let data = content(BUF_SIZE + 3);
        let mut out = OutputFile::create(&link).expect("create");
        write_pieces(&mut out, &data);
        out.finish().expect("finish");
        assert!(std::fs::symlink_metadata(&link).expect("link").is_symlink());
        assert!(std::fs::read(&target).expect("target") == data);
        Destination::of(&link)
            .write_whole(b"whole")
            .expect("write_whole");
        assert!(std::fs::symlink_metadata(&link).expect("link").is_symlink());
        assert_eq!(std::fs::read(&target).expect("target"), b"whole");
        std::fs::remove_file(&link).expect("remove link");
        std::fs::remove_file(&target).expect("remove target");
    }

    /// Pieces written in place (from aligned regions whose start matches the file position)
    /// and pieces written the usual way, mixed, give the same bytes; a region that does not
    /// fit is refused untouched and written the usual way. Also after the I/O thread ran.
    #[test]
    fn in_place_writes_give_the_same_bytes() {
        for direct in [true, false] {
            let path = temp(&format!("in-place-{direct}"));
            let data = content(3 * BUF_SIZE + 12_345);
            let mut out = OutputFile::open(&path, direct, 0).expect("create");
            let mut region = Buffer::new(0);
            let (mut at, mut in_place, mut refused) = (0, 0, 0);
            let sizes = [24, 1_000_000, 70_000, 5, BUF_SIZE + 17, 4096, 333_333, 123];
            for (k, &n) in sizes.iter().cycle().enumerate() {
                if at == data.len() {
                    break;
                }
                let piece = &data[at..(at + n).min(data.len())];
                // Every third piece the usual way; the others offered in place, at the
                // file position's offset in its block, or one byte off every fifth time.
                let start = (at + usize::from(k % 5 == 4)) % ALIGN;
                let fits = k % 3 != 0 && start + piece.len() <= BUF_SIZE;
                let taken = fits && {
                    let mem = &mut region.mem[region.start..region.start + start + piece.len()];
                    mem[start..].copy_from_slice(piece);
                    out.write_in_place(mem, start).expect("in place")
                };
                match taken {
                    true => in_place += 1,
                    false => {
                        refused += usize::from(fits);
                        out.write_all(piece).expect("write");
                    }
                }
                at += piece.len();
            }
            let still_direct = out.close().expect("finish");
            drop(out);
            assert!(
                std::fs::read(&path).expect("read") == data,
                "direct {direct}"
            );
            if direct && still_direct {
                assert!(
                    in_place > 0 && refused > 0,
                    "{in_place} in place, {refused} refused"
                );
            } else {
                assert_eq!(in_place, 0, "buffered files take no region");
            }
            std::fs::remove_file(&path).expect("remove");
        }
    }
}
