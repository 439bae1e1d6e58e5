//! Two runs writing the same output: the partial file (`PATH.partial`) of a run still writing
//! is locked (flock(2), exclusive), so a second run naming that output fails at once, exit 2,
//! with one line naming the output and the cause, and leaves the first run's file alone; a
//! partial file nobody holds the lock of (left by a killed run) is removed and replaced, as
//! before (README "Commands": outputs).

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

const CAPTURE: &str = "captures/rfc2391-fig1.pcap";

/// Opens `path` and takes its exclusive flock(2) lock, as a run writing it holds it: the
/// lock lasts as long as the returned file is open.
fn hold_lock(path: &Path) -> std::fs::File {
    let file = std::fs::File::open(path).unwrap();
    // SAFETY: the descriptor of `file`, open for the call; flock(2) touches no memory.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(r, 0, "flock: {}", std::io::Error::last_os_error());
    file
}

/// `path` with `.partial` appended.
fn partial_of(path: &Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".partial");
    p.into()
}

/// Asserts that `o` failed with exit 2 and exactly the one line saying that another run is
/// writing `output`.
#[track_caller]
fn refused_as_locked(o: &std::process::Output, output: &Path) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "exit code; stderr: {err}");
    assert_eq!(
        err,
        format!(
            "lsnat: error: {}: another lsnat run is writing this output ({} is locked)\n",
            output.display(),
            partial_of(output).display()
        )
    );
}

/// The bytes `lsnat replay CAPTURE -o OUT` writes, from a run of its own.
fn reference_output(dir: &Path) -> Vec<u8> {
    let out = dir.join("reference.pcap");
    let o = common::lsnat()
        .args(["replay", CAPTURE, "-q", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.len() > 24, "a capture with packets");
    std::fs::remove_file(&out).unwrap();
    bytes
}

/// Every output kind (the rewritten capture, the JSON report, the golden, a member's capture,
/// a golden `lsnat check --bless` writes, an audit's JSON report): while another process holds
/// the lock of its partial file, a run that would write it fails at once, exit 2, in one line
/// naming the output and the locked file; the locked file keeps its bytes and its inode, the
/// output is not created, and the run leaves nothing else behind.
#[test]
fn an_output_whose_partial_file_is_locked_is_refused_and_left_alone() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let members = dir.join("members");
    std::fs::create_dir(&members).unwrap();
    let golden_dir = dir.join("golden");
    std::fs::create_dir(&golden_dir).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let other = s(&dir.join("other.pcap"));
    let cases: Vec<(Vec<String>, std::path::PathBuf)> = vec![
        (
            vec![
                "replay".into(),
                CAPTURE.into(),
                "-q".into(),
                "-o".into(),
                s(&dir.join("out.pcap")),
            ],
            dir.join("out.pcap"),
        ),
        (
            vec![
                "replay".into(),
                CAPTURE.into(),
                "-q".into(),
                "-o".into(),
                other.clone(),
                "--json".into(),
                s(&dir.join("report.json")),
            ],
            dir.join("report.json"),
        ),
        (
            vec![
                "replay".into(),
                CAPTURE.into(),
                "-q".into(),
                "-o".into(),
                other.clone(),
                "--golden".into(),
                s(&dir.join("fig1.snap")),
            ],
            dir.join("fig1.snap"),
        ),
        (
            vec![
                "replay".into(),
                CAPTURE.into(),
                "-q".into(),
                "--members-dir".into(),
                s(&members),
            ],
            members.join("member-172.85.0.3.pcap"),
        ),
        (
            vec![
                "check".into(),
                "--golden-dir".into(),
                s(&golden_dir),
                "--bless".into(),
                "captures/lsnat-router.pcap".into(),
                CAPTURE.into(),
            ],
            golden_dir.join("rfc2391-fig1.snap"),
        ),
        (
            vec![
                "audit".into(),
                CAPTURE.into(),
                "-q".into(),
                "--json".into(),
                s(&dir.join("audit.json")),
            ],
            dir.join("audit.json"),
        ),
    ];
    for (args, output) in cases {
        let partial = partial_of(&output);
        let first_run = b"the first run's bytes, still being written";
        std::fs::write(&partial, first_run).unwrap();
        let inode = std::fs::metadata(&partial).unwrap().ino();
        let lock = hold_lock(&partial);
        let o = common::lsnat().args(&args).output().unwrap();
        refused_as_locked(&o, &output);
        assert_eq!(std::fs::read(&partial).unwrap(), first_run, "{args:?}");
        assert_eq!(
            std::fs::metadata(&partial).unwrap().ino(),
            inode,
            "{args:?}"
        );
        assert!(!output.exists(), "{args:?}: {} created", output.display());
        drop(lock);
        std::fs::remove_file(&partial).unwrap();
        // Nothing else of the refused run is left: only the two folders made above.
        for d in [dir, members.as_path(), golden_dir.as_path()] {
            let left: Vec<_> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != "members" && n != "golden")
                .collect();
            assert!(
                left.is_empty(),
                "{args:?}: left {left:?} in {}",
                d.display()
            );
        }
    }
}

/// A partial file nobody holds the lock of is what a run killed before it could remove it
/// left behind: it is removed and replaced, and the run writes the output it would have
/// written without it.
#[test]
fn a_stale_unlocked_partial_file_is_replaced() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let want = reference_output(dir);
    let out = dir.join("out.pcap");
    let partial = partial_of(&out);
    std::fs::write(&partial, b"left by a killed run").unwrap();
    let o = common::lsnat()
        .args(["replay", CAPTURE, "-q", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    finished_whole(&o, &out, &want, "the output as without a stale file");
}

/// The run `o` succeeded and `out` holds `want`, renamed into place: no partial file left.
fn finished_whole(o: &std::process::Output, out: &Path, want: &[u8], what: &str) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(out).unwrap() == want, "{what}");
    assert!(!partial_of(out).exists());
}

/// Waits until the replay whose golden is a FIFO has written its whole JSON report (still
/// `report`, its partial name): it then blocks opening the FIFO, its other outputs whole but
/// not yet renamed. Fails after 30 s.
fn wait_at_golden(report: &Path) {
    for _ in 0..600 {
        if std::fs::read(report).is_ok_and(|b| b.ends_with(b"}\n")) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the replay never got to its golden");
}

/// A run started in the background: killed and waited for if the test ends (fails) first, so
/// that a run blocked on its FIFO never outlives the test.
struct Background(Option<std::process::Child>);

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Two real runs: the first has written its capture whole and waits (at its golden, a FIFO)
/// to rename it with its other outputs; its partial file stays locked meanwhile. A second run
/// writing the same output is refused and leaves it alone; the first then finishes with the
/// output it wrote, not the second's.
#[test]
fn a_whole_output_stays_locked_until_its_run_renames_it() {
    let scratch = common::scratch();
    let dir = scratch.path();
    let want = reference_output(dir);
    let out = dir.join("out.pcap");
    let fifo = dir.join("g.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the file.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let mut first = Background(Some(
        common::lsnat()
            .args(["replay", CAPTURE, "-q", "-o"])
            .arg(&out)
            .arg("--json")
            .arg(dir.join("r.json"))
            .arg("--golden")
            .arg(&fifo)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    wait_at_golden(&dir.join("r.json.partial"));
    let partial = partial_of(&out);
    let whole = std::fs::read(&partial).unwrap();
    assert!(whole == want, "the first run's capture, whole");
    let second = common::lsnat()
        .args(["replay", "captures/lsnat-router.pcap", "-q", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    refused_as_locked(&second, &out);
    assert!(std::fs::read(&partial).unwrap() == whole);
    assert!(!out.exists());
    // Reading the golden lets the first run finish.
    let golden = std::fs::read_to_string(&fifo).unwrap();
    assert!(golden.contains("172.85.0.1"), "{golden}");
    let first = first.0.take().unwrap().wait_with_output().unwrap();
    finished_whole(&first, &out, &want, "the first run's output");
}
