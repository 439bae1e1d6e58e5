//! The terminal summary (comfy-table): packets by fate, sessions per member with packets and
//! bytes each way, how sessions ended.

use super::Summary;
use crate::replay::ReplayTotals;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use std::fmt::Write as _;

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    t.set_content_arrangement(ContentArrangement::Dynamic);
    t.set_header(header.to_vec());
    t
}

fn right(t: &mut Table, from: usize) {
    let n = t.column_count();
    for i in from..n {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// Renders the summary. `width` fixes the table width (for snapshots); `None` fits the terminal.
pub fn render(summary: &Summary, totals: &ReplayTotals, width: Option<u16>) -> String {
    let mut out = String::new();
    let fix = |t: &mut Table| {
        if let Some(w) = width {
            t.force_no_tty();
            t.set_width(w);
        }
    };

    let mut p = table(&["packets", "count", "share"]);
    let total = summary.packets;
    let row = |p: &mut Table, name: String, n: u64| {
        p.add_row(vec![name, n.to_string(), pct(n, total)]);
    };
    row(&mut p, "read".into(), total);
    row(
        &mut p,
        "translated, client → member".into(),
        summary.translated_inbound,
    );
    row(
        &mut p,
        "translated, member → client".into(),
        summary.translated_outbound,
    );
    for (r, n) in &summary.passed {
        row(&mut p, format!("passed unchanged: {r}"), *n);
    }
    for (r, n) in &summary.dropped {
        row(&mut p, format!("dropped: {r}"), *n);
    }
    for (k, n) in &summary.not_ipv4 {
        row(&mut p, format!("not IPv4, passed: {k}"), *n);
    }
    if summary.outgoing_copies > 0 {
        row(
            &mut p,
            "outgoing copies, not replayed".into(),
            summary.outgoing_copies,
        );
    }
    if summary.link_truncated > 0 {
        row(
            &mut p,
            "shorter than link header, passed".into(),
            summary.link_truncated,
        );
    }
    if summary.fragments_held > 0 {
        row(
            &mut p,
            "fragments held for their first fragment".into(),
            summary.fragments_held,
        );
        row(
            &mut p,
            "  held, then released with it".into(),
            summary.fragments_released,
        );
        row(
            &mut p,
            "  held, then dropped".into(),
            summary.fragments_expired,
        );
    }
    if summary.icmp_time_exceeded_sent > 0 {
        row(
            &mut p,
            "ICMP time exceeded sent by the router".into(),
            summary.icmp_time_exceeded_sent,
        );
    }
    if summary.checksum_faults > 0 {
        row(
            &mut p,
            "translated with a wrong input checksum".into(),
            summary.checksum_faults,
        );
    }
    right(&mut p, 1);
    fix(&mut p);
    let _ = writeln!(out, "{p}");

    let mut m = table(&[
        "member",
        "sessions",
        "share",
        "pkts →",
        "bytes →",
        "pkts ←",
        "bytes ←",
    ]);
    for (i, addr) in totals.members.iter().enumerate() {
        let t = summary.members.get(i).copied().unwrap_or_default();
        m.add_row(vec![
            addr.to_string(),
            t.sessions.to_string(),
            pct(t.sessions, summary.sessions),
            t.orig_pkts.to_string(),
            t.orig_ip_bytes.to_string(),
            t.resp_pkts.to_string(),
            t.resp_ip_bytes.to_string(),
        ]);
    }
    right(&mut m, 1);
    fix(&mut m);
    let _ = writeln!(out, "{m}");

    let mut e = table(&["sessions ended by", "count"]);
    for (reason, n) in &summary.ends {
        e.add_row(vec![reason.name().to_string(), n.to_string()]);
    }
    e.add_row(vec![
        "total bound".to_string(),
        summary.sessions.to_string(),
    ]);
    right(&mut e, 1);
    fix(&mut e);
    let _ = writeln!(out, "{e}");
    for w in &totals.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    if totals.timestamps_backwards > 0 {
        let _ = writeln!(
            out,
            "warning: {} packets had a timestamp earlier than the one before; capture time was held",
            totals.timestamps_backwards
        );
    }
    out
}
