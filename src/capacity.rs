//! Member-reported capacities (RFC 2391 §5.1, the active category: members "notifying the
//! selector of their load capacity"), read from a JSON-lines file, one report per line:
//!
//! ```text
//! {"ts": 1700000000.25, "member": "203.0.113.1", "capacity": 0.7}
//! {"ts": 1700000003000000000, "member": "203.0.113.2", "capacity": 0.2}
//! ```
//!
//! `ts` is epoch seconds as a float, or epoch nanoseconds as an integer; `capacity` is the
//! member's spare capacity (≥ 0; 0 takes no new sessions). The engine applies each report when
//! capture time reaches it; it never reads the file itself. Errors name the file and line.

use crate::engine::CapacityReport;
use crate::time::Timestamp;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;

/// Reads a capacity file.
pub fn load(path: &Path) -> Result<Vec<CapacityReport>, String> {
    // A regular file only, as for the configuration itself.
    crate::config::regular_file(path, "capacity file")
        .map_err(|cause| format!("{}: {cause}", path.display()))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read capacity file: {e}", path.display()))?;
    parse(path, &text)
}

/// Parses capacity reports (`path` only names the file in errors).
pub fn parse(path: &Path, text: &str) -> Result<Vec<CapacityReport>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fail = |cause: String| format!("{}:{}: {cause}", path.display(), n + 1);
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| fail(format!("not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| fail("expected an object {\"ts\", \"member\", \"capacity\"}".into()))?;
        if let Some(k) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "ts" | "member" | "capacity"))
        {
            return Err(fail(format!("unknown field `{k}`")));
        }
        let ts = obj.get("ts").ok_or_else(|| fail("missing `ts`".into()))?;
        // In errors `ts` is shown as written: an integer too large for u64 is read as a float.
        let ts_text = || written(line, "ts").unwrap_or_else(|| ts.to_string());
        let at = if let Some(ns) = ts.as_u64() {
            if ns < 100_000_000_000 {
                return Err(fail(format!(
                    "`ts` {ns} as an integer is nanoseconds since the epoch; write seconds as a float ({ns}.0)"
                )));
            }
            Timestamp(ns)
        } else if let Some(s) = ts.as_f64().filter(|s| s.is_finite() && *s >= 0.0) {
            // Whole seconds exactly, the fraction to the nanosecond (f64 keeps about 0.2 µs of
            // it at today's epoch; use integer nanoseconds for exact times).
            // A time past the last a u64 of nanoseconds holds (2554-07-21T23:34:33Z) is
            // refused, not wrapped (`as u64` saturates, the product would overflow).
            let whole = s.trunc();
            let late = || {
                fail(format!(
                    "`ts` {} is after the last time lsnat represents ({}.{:09} s since the \
                     epoch: u64 nanoseconds)",
                    ts_text(),
                    u64::MAX / 1_000_000_000,
                    u64::MAX % 1_000_000_000
                ))
            };
            (whole as u64)
                .checked_mul(1_000_000_000)
                .and_then(|n| n.checked_add(((s - whole) * 1e9).round() as u64))
                .map(Timestamp)
                .ok_or_else(late)?
        } else {
            return Err(fail(format!(
                "`ts` {} is not a time (epoch seconds or ns)",
                ts_text()
            )));
        };
        let member = obj
            .get("member")
            .and_then(|m| m.as_str())
            .ok_or_else(|| fail("missing `member` (an IPv4 address string)".into()))?;
        let member: Ipv4Addr = member
            .trim()
            .parse()
            .map_err(|_| fail(format!("`member` `{member}` is not an IPv4 address")))?;
        let capacity = obj
            .get("capacity")
            .and_then(|c| c.as_f64())
            .ok_or_else(|| fail("missing `capacity` (a number)".into()))?;
        if !capacity.is_finite() || capacity < 0.0 {
            return Err(fail(format!("`capacity` {capacity} must be 0 or more")));
        }
        out.push(CapacityReport {
            at,
            member,
            capacity,
        });
    }
    Ok(out)
}

/// The value of `key` in the JSON object `line` as the file writes it (`18446744073709551616`,
/// where [`serde_json::Value`] holds an integer beyond u64 as a float); `None` without it.
fn written(line: &str, key: &str) -> Option<String> {
    let raw: HashMap<String, Box<RawValue>> = serde_json::from_str(line).ok()?;
    raw.get(key).map(|v| v.get().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found reviewing what config_toml (fuzz/) could reach: `capacity_file = "/dev/zero"`
    /// read without end (memory exhausted), a FIFO blocked the run forever.
    #[test]
    fn a_device_is_refused_not_read() {
        for dev in ["/dev/zero", "/dev/null"] {
            let e = load(Path::new(dev)).unwrap_err();
            assert!(e.contains("not a regular file"), "{e}");
        }
        assert!(load(Path::new("/")).unwrap_err().contains("is a folder"));
    }

    #[test]
    fn parses_seconds_and_nanoseconds() {
        let r = parse(
            Path::new("c.jsonl"),
            "{\"ts\": 1700000000.25, \"member\": \"203.0.113.1\", \"capacity\": 0.7}\n\n\
             {\"ts\": 1700000003000000000, \"member\": \"203.0.113.2\", \"capacity\": 0}\n",
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].at, Timestamp(1_700_000_000_250_000_000));
        assert_eq!(r[1].at, Timestamp(1_700_000_003_000_000_000));
        assert_eq!((r[0].capacity, r[1].capacity), (0.7, 0.0));
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse(
            Path::new("c.jsonl"),
            "{\"ts\": 1.0, \"member\": \"203.0.113.1\", \"capacity\": 1}\n{\"ts\": 2.0, \"member\": \"x\", \"capacity\": 1}\n",
        )
        .unwrap_err();
        assert_eq!(e, "c.jsonl:2: `member` `x` is not an IPv4 address");
        let e = parse(
            Path::new("c.jsonl"),
            "{\"ts\": 5, \"member\": \"203.0.113.1\", \"capacity\": 1}",
        )
        .unwrap_err();
        assert!(e.starts_with("c.jsonl:1: `ts` 5 as an integer"), "{e}");
        let e = parse(Path::new("c.jsonl"), "[1,2]").unwrap_err();
        assert!(e.starts_with("c.jsonl:1: expected an object"), "{e}");
    }
}
