//! The golden text of a replay: one line per packet (index, verdict, flow, tuple before → after,
//! TTL and checksums before → after, session) and the session table with end reasons. Goldens
//! are compared by `cargo test` (insta) and by `lsnat check`.

use crate::capture::PacketMeta;
use crate::engine::{AlgNote, EmitKind, Event, Flow, Outcome, PoolEvent, SessionRecord, Verdict};
use crate::replay::{Disposition, Observer};
use crate::time::Timestamp;
use crate::wire::proto;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// Collects the golden text.
#[derive(Default)]
pub struct GoldenLog {
    start: Option<Timestamp>,
    packets: String,
    sessions: Vec<SessionRecord>,
    pool_events: Vec<PoolEvent>,
    /// Per packet: whether it was written to the rewritten capture (for checksum cross-checks).
    pub forwarded: Vec<bool>,
    /// The rewritten capture's records, in order: where each one came from.
    pub written: Vec<Written>,
}

/// Where a record of the rewritten capture came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// Input packet (1-based index), written when it was handled.
    Packet(u64),
    /// Input packet held for its first fragment and written when released (at the release's
    /// time).
    Released(u64),
    /// A packet the modelled router originated (an ICMP time exceeded).
    Originated,
}

fn rel(start: Option<Timestamp>, t: Timestamp) -> String {
    super::since_start(start.unwrap_or(t), t)
}

impl Observer for GoldenLog {
    fn packet(&mut self, meta: &PacketMeta, what: &Disposition) {
        let start = *self.start.get_or_insert(meta.ts);
        let p = &mut self.packets;
        let _ = write!(p, "{:>5} {} ", meta.index, rel(Some(start), meta.ts));
        let forwarded = match what {
            Disposition::OutgoingCopy => {
                let _ = writeln!(p, "skip  outgoing copy");
                false
            }
            Disposition::NotIpv4(k) => {
                let _ = writeln!(p, "pass  not-ipv4 {k}");
                true
            }
            Disposition::LinkTruncated => {
                let _ = writeln!(p, "pass  link-truncated");
                true
            }
            Disposition::Engine(o) => {
                render_outcome(p, o);
                !matches!(o.verdict, Verdict::Drop(_) | Verdict::Held(_))
            }
        };
        self.forwarded.push(forwarded);
        if forwarded {
            self.written.push(Written::Packet(meta.index));
        }
    }

    fn emitted(&mut self, origin: &PacketMeta, now: Timestamp, kind: &EmitKind) {
        let start = *self.start.get_or_insert(now);
        let p = &mut self.packets;
        let _ = write!(p, "   -> {} ", rel(Some(start), now));
        match kind {
            EmitKind::HeldFragment { hold, outcome } => {
                let _ = write!(p, "h{hold} (packet {}): ", origin.index);
                render_outcome(p, outcome);
                if !matches!(outcome.verdict, Verdict::Drop(_)) {
                    self.written.push(Written::Released(origin.index));
                }
            }
            EmitKind::IcmpTimeExceeded { tuple, session } => {
                let _ = write!(
                    p,
                    "emit  icmp time-exceeded {} > {} (answering packet {})",
                    Ipv4Addr::from(tuple.src),
                    Ipv4Addr::from(tuple.dst),
                    origin.index
                );
                self.written.push(Written::Originated);
                if *session != 0 {
                    let _ = write!(p, " s{session}");
                }
                let _ = writeln!(p);
            }
        }
    }

    fn event(&mut self, event: &Event) {
        if let Event::Ended(r) = event {
            self.sessions.push(*r);
        }
    }

    fn pool_event(&mut self, event: &PoolEvent) {
        self.pool_events.push(event.clone());
    }
}

/// One outcome: verdict, flow, tuple before => after, TTL and checksums, session.
fn render_outcome(p: &mut String, o: &Outcome) {
    let dir = match o.flow {
        Flow::Inbound => "in ",
        Flow::Outbound => "out",
        Flow::None => "-  ",
    };
    let verdict = match o.verdict {
        Verdict::Translated => "xlat".to_string(),
        Verdict::Pass(r) => format!("pass  {}", r.name()),
        Verdict::Drop(r) => format!("DROP  {}", r.name()),
        Verdict::Held(h) => format!("HOLD  h{h}"),
    };
    let _ = write!(
        p,
        "{verdict} {dir} {} {}",
        proto::name(o.before.protocol),
        o.before
    );
    if o.verdict == Verdict::Translated {
        let _ = write!(p, " => {}", o.after);
        let _ = write!(
            p,
            " ttl {}>{} ip {:04x}>{:04x}",
            o.ttl[0], o.ttl[1], o.ip_checksum[0], o.ip_checksum[1]
        );
        if let Some([a, b]) = o.l4_checksum {
            let _ = write!(p, " l4 {a:04x}>{b:04x}");
        }
        if o.faults.ip != 0 {
            let _ = write!(p, " BAD-IP-CSUM({:04x})", o.faults.ip);
        }
        if let Some(e) = o.faults.l4.filter(|&e| e != 0) {
            let _ = write!(p, " BAD-L4-CSUM({e:04x})");
        }
        render_alg(p, &o.alg);
    }
    if o.session != 0 {
        let _ = write!(p, " s{}{}", o.session, if o.bound { " new" } else { "" });
    } else if o.is_napt() {
        let _ = write!(p, " napt");
    }
    let _ = writeln!(p);
}

/// What the FTP gateway did: the command or reply it acted on and how much longer the datagram
/// became (`ftp 227 +1B`), then the change made to the sequence and acknowledgement numbers
/// (`seq+1`, `ack-1`).
fn render_alg(p: &mut String, a: &AlgNote) {
    if let Some(c) = a.ftp {
        let _ = write!(p, " ftp {}", c.name());
        if let Some(u) = a.unfollowed {
            let _ = write!(p, " unfollowed {}", u.name());
        }
        if a.resized != 0 {
            let _ = write!(p, " {:+}B", a.resized);
        }
    }
    if a.seq != 0 {
        let _ = write!(p, " seq{:+}", a.seq);
    }
    if a.ack != 0 {
        let _ = write!(p, " ack{:+}", a.ack);
    }
}

impl GoldenLog {
    /// The golden text. `names` are the virtual servers' names.
    pub fn render(&self, title: &str, names: &[String]) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# {title}");
        let _ = writeln!(
            out,
            "## packets: index, time, verdict, flow, tuple => translated, ttl, checksums, session"
        );
        out.push_str(&self.packets);
        let _ = writeln!(out, "## sessions");
        let mut sessions = self.sessions.clone();
        sessions.sort_by_key(|r| r.number);
        for r in &sessions {
            let _ = writeln!(
                out,
                "s{} {} {} {} => {} first {} last {} reply {} pkts {}/{} bytes {}/{} history {} end {} at {}{}{}",
                r.number,
                names.get(r.virtual_server).map_or("?", String::as_str),
                proto::name(r.key.protocol),
                r.key,
                if r.translated.src != r.key.src || r.translated.dport != r.key.dport {
                    // LS-NAPT (§3.3) or a port-remapping static mapping: the whole tuple.
                    r.translated.to_string()
                } else {
                    Ipv4Addr::from(r.translated.dst).to_string()
                },
                rel(self.start, r.first),
                rel(self.start, r.last),
                r.first_reply.map_or("-".into(), |t| rel(self.start, t)),
                r.orig_packets,
                r.resp_packets,
                r.orig_bytes,
                r.resp_bytes,
                if r.history.as_str().is_empty() {
                    "-"
                } else {
                    r.history.as_str()
                },
                r.end.name(),
                rel(self.start, r.ended_at),
                if r.checksum_faults > 0 {
                    format!(" checksum-faults {}", r.checksum_faults)
                } else {
                    String::new()
                },
                r.ftp_data_of
                    .map_or(String::new(), |c| format!(" ftp-data of s{c}")),
            );
        }
        if !self.pool_events.is_empty() {
            let _ = writeln!(
                out,
                "## pool events: time, member, transition, evidence, sessions"
            );
            let time = |t| rel(self.start, t);
            let vs = |v: usize| names.get(v).cloned().unwrap_or_else(|| v.to_string());
            for ev in &self.pool_events {
                let _ = write!(
                    out,
                    "{} {} {} {}",
                    rel(self.start, ev.at),
                    ev.member,
                    ev.kind.name(),
                    ev.evidence(&time, &vs)
                );
                if !ev.sessions.is_empty() {
                    let _ = write!(
                        out,
                        " sessions {}",
                        super::session_list(&ev.sessions, usize::MAX)
                    );
                }
                let _ = writeln!(out);
            }
        }
        out
    }
}
