//! The terminal summary (comfy-table): packets by fate, sessions per member with packets and
//! bytes each way, how sessions ended.

use super::Summary;
use crate::engine::{DropReason, PoolEventKind};
use crate::replay::ReplayTotals;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use std::fmt::Write as _;

/// A table in the house style (every terminal table of lsnat: summary, load, compare, audit).
pub fn table<S: ToString>(header: &[S]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    t.set_content_arrangement(ContentArrangement::Dynamic);
    t.set_header(header.iter().map(ToString::to_string).collect::<Vec<_>>());
    t
}

/// Right-aligns the columns from `from` on (the figures).
pub fn right(t: &mut Table, from: usize) {
    for i in from..t.column_count() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// Fixes the width (for snapshots); `None` leaves the table fitting the terminal.
pub fn fit(t: &mut Table, width: Option<u16>) {
    if let Some(w) = width {
        t.force_no_tty();
        t.set_width(w);
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// Renders the summary, its warnings last. `width` fixes the table width (for snapshots);
/// `None` fits the terminal.
pub fn render(summary: &Summary, totals: &ReplayTotals, width: Option<u16>) -> String {
    let mut out = render_tables(summary, totals, width);
    for w in totals.all_warnings() {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

/// The summary's tables without its warnings, for a caller that prints more tables after
/// them and the warnings last ([`ReplayTotals::all_warnings`]).
pub fn render_tables(summary: &Summary, totals: &ReplayTotals, width: Option<u16>) -> String {
    let mut out = String::new();
    let fix = |t: &mut Table| fit(t, width);

    let mut p = table(&["packets", "count", "share"]);
    let total = summary.packets;
    let row = |p: &mut Table, name: String, n: u64| {
        p.add_row(vec![name, n.to_string(), pct(n, total)]);
    };
    row(&mut p, "read".into(), total);
    row(
        &mut p,
        "translated, client → member".into(),
        summary.translated_inbound - summary.napt_inbound,
    );
    row(
        &mut p,
        "translated, member → client".into(),
        summary.translated_outbound - summary.napt_outbound,
    );
    if summary.napt_outbound + summary.napt_inbound > 0 {
        row(
            &mut p,
            "translated by NAPT, inside → outside".into(),
            summary.napt_outbound,
        );
        row(
            &mut p,
            "translated by NAPT, outside → inside".into(),
            summary.napt_inbound,
        );
    }
    for (r, n) in &summary.passed {
        row(&mut p, format!("passed unchanged: {r}"), *n);
    }
    for (r, n) in &summary.dropped {
        row(&mut p, format!("dropped: {r}"), *n);
    }
    for (k, n) in &summary.not_ipv4() {
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
    // Below the breakdown of what was read (whose shares add up to 100 %): counts within it
    // ("of those ..."), and packets the router made, which were not read.
    if summary.fragments_held > 0 {
        row(
            &mut p,
            "of those read: held for their first fragment".into(),
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
    if summary.checksum_faults > 0 {
        row(
            &mut p,
            "of those translated: wrong input checksum".into(),
            summary.checksum_faults,
        );
    }
    if summary.icmp_time_exceeded_sent > 0 {
        p.add_row(vec![
            "not read: ICMP time exceeded sent by the router".into(),
            summary.icmp_time_exceeded_sent.to_string(),
            String::new(),
        ]);
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
    if totals.grace_cut_short > 0 {
        // Closed sessions a full table unbound before their grace period ran out (§2.4).
        e.add_row(vec![
            "of fin and rst: grace cut short for room".to_string(),
            totals.grace_cut_short.to_string(),
        ]);
    }
    e.add_row(vec![
        "total bound".to_string(),
        summary.sessions.to_string(),
    ]);
    right(&mut e, 1);
    fix(&mut e);
    let _ = writeln!(out, "{e}");
    if summary.ftp.any() {
        // The FTP gateway (RFC 1631 §5, RFC 3022 §4.3): what it read and did.
        let f = &summary.ftp;
        let mut g = table(&["ftp gateway", "count"]);
        for (name, n) in &f.followed {
            g.add_row(vec![format!("{name} followed"), n.to_string()]);
        }
        for (why, n) in &f.unfollowed {
            g.add_row(vec![format!("not followed: {why}"), n.to_string()]);
        }
        g.add_row(vec!["resized".to_string(), f.resized.to_string()]);
        g.add_row(vec![
            "data connections bound".to_string(),
            f.data_sessions.to_string(),
        ]);
        right(&mut g, 1);
        fix(&mut g);
        let _ = writeln!(out, "{g}");
    }
    if !summary.pool_events.is_empty() {
        const ROWS: usize = 60;
        let start = totals.first_ts.unwrap_or_default();
        let time = |t: crate::time::Timestamp| format!("+{:.3}s", t.since(start).as_secs_f64());
        let mut pe = table(&[
            "pool events",
            "member",
            "transition",
            "evidence",
            "sessions",
        ]);
        // Per-session events can be many: one row per member and kind here, every one of them
        // in the JSON report and the golden.
        let per_session = |k: &PoolEventKind| match *k {
            PoolEventKind::RecordedChoiceDiffers { session, .. } => Some((session, [0, 0])),
            PoolEventKind::RemovedSessionEnded {
                session,
                packets_after,
            } => Some((session, packets_after)),
            _ => None,
        };
        let mut grouped: Vec<(std::net::Ipv4Addr, &'static str, Vec<u64>, [u64; 2])> = Vec::new();
        for ev in &summary.pool_events {
            if let Some((session, p)) = per_session(&ev.kind) {
                let name = ev.kind.name();
                match grouped
                    .iter_mut()
                    .find(|(m, n, _, _)| *m == ev.member && *n == name)
                {
                    Some((_, _, v, q)) => {
                        v.push(session);
                        q[0] += p[0];
                        q[1] += p[1];
                    }
                    None => grouped.push((ev.member, name, vec![session], p)),
                }
            }
        }
        let rows = summary
            .pool_events
            .iter()
            .filter(|e| per_session(&e.kind).is_none());
        let shown = rows.clone().count().min(ROWS);
        for ev in rows.take(ROWS) {
            pe.add_row(vec![
                time(ev.at),
                ev.member.to_string(),
                ev.kind.name().to_string(),
                ev.evidence(&time, &|v| {
                    totals
                        .virtual_servers
                        .get(v)
                        .cloned()
                        .unwrap_or_else(|| format!("virtual server {v}"))
                }),
                super::session_list(&ev.sessions, 8),
            ]);
        }
        grouped.sort();
        for g in &mut grouped {
            g.2.sort_unstable();
        }
        for (m, name, sessions, p) in &grouped {
            let evidence = if *name == "recorded-choice-differs" {
                format!(
                    "{} sessions bound to it were answered by another member in the capture: evidence against the recorded choice, not this member",
                    sessions.len()
                )
            } else {
                format!(
                    "{} sessions bound when it was removed have ended; {} packets to it and {} from it after the removal",
                    sessions.len(),
                    p[0],
                    p[1]
                )
            };
            pe.add_row(vec![
                "whole replay".to_string(),
                m.to_string(),
                name.to_string(),
                evidence,
                super::session_list(sessions, 8),
            ]);
        }
        fix(&mut pe);
        let _ = writeln!(out, "{pe}");
        let hidden =
            summary.pool_events.len() - shown - grouped.iter().map(|g| g.2.len()).sum::<usize>();
        if hidden > 0 {
            let _ = writeln!(out, "… {hidden} more pool events in the JSON report");
        }
    }
    out
}

/// The drop reasons of a packet that would have started a session had binding found a member
/// and room for it.
const REFUSED_AT_BINDING: [DropReason; 4] = [
    DropReason::NoMemberAvailable,
    DropReason::TableFull,
    DropReason::NaptPortsExhausted,
    DropReason::ReplyKeyInUse,
];

/// A hint for a replay whose outcome suggests a config or a view that does not fit the
/// capture: no packet at all, no IPv4 packet, no session bound (with the drops that refused the
/// packets that would have started one, if any), or sessions whose replies all passed as
/// unrelated (`view`: the view the replay used). The terminal summary and `-q`'s stderr give it
/// after the warnings; goldens and the JSON report do not hold it.
pub fn hint(summary: &Summary, view: crate::engine::View) -> Option<String> {
    use crate::engine::View;
    if summary.packets == 0 {
        return Some("the capture holds no packet: there was nothing to replay".into());
    }
    if summary.ipv4 == 0 {
        return Some(format!(
            "the capture holds no IPv4 packet: lsnat models IPv4 (RFC 2391) and passed all {} \
             frames unchanged",
            summary.packets
        ));
    }
    if summary.sessions == 0 {
        // Packets that would have started a session but that binding refused (RFC 2391 §4.1):
        // the virtual servers fit the capture, the pool or the limits did not let them bind.
        let refused: Vec<String> = REFUSED_AT_BINDING
            .iter()
            .filter_map(|r| {
                let n = summary.dropped.get(r.name()).copied().filter(|n| *n > 0)?;
                Some(format!("{n} {}", r.name()))
            })
            .collect();
        if !refused.is_empty() {
            return Some(format!(
                "no session was bound: the packets that would have started one were dropped ({}); \
                 check the pool (a member with cost \"inf\" or capacity 0, drained, removed or \
                 dead takes no new session) and the limits (max_sessions, LS-NAPT's TU ports)",
                refused.join(", ")
            ));
        }
        return Some(
            "no session was bound: no packet to a virtual server's address and service port \
             started one; check the virtual servers' vip, protocol and ports (and, for TCP, \
             that the capture holds the connections' SYNs)"
                .into(),
        );
    }
    let unrelated = summary.passed.get("unrelated").copied().unwrap_or(0);
    if summary.translated_inbound == 0 || summary.translated_outbound > 0 || unrelated == 0 {
        return None;
    }
    let other = match view {
        View::Router => {
            "the VIP's replies (taken in front of the router, on the clients' side), it needs \
             --view client-side"
        }
        View::ClientSide => {
            "the members' own replies (taken on both sides of the router), it needs --view router"
        }
    };
    Some(format!(
        "no packet was translated member → client and {unrelated} passed as unrelated: if the \
         capture holds {other}"
    ))
}
