//! Reports, built only from what the replay hands its observers (packet dispositions and
//! session events): the terminal summary ([`table`]), the JSON report ([`json`]) and the golden
//! text ([`golden`]).

pub mod golden;
pub mod json;
pub mod load;
pub mod table;

use crate::capture::PacketMeta;
use crate::engine::{
    EmitKind, EndReason, Event, Flow, Outcome, PoolEvent, SessionRecord, Tuple, Verdict,
};
use crate::replay::{Disposition, Observer};
use crate::time::Timestamp;
use std::collections::BTreeMap;

/// At most this many dropped packets are listed one by one (all are counted).
pub const DROP_LIST_LIMIT: usize = 1000;

/// Per-member totals over its sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemberTotals {
    /// Sessions bound to it.
    pub sessions: u64,
    /// Packets client → member.
    pub orig_pkts: u64,
    /// IP bytes client → member.
    pub orig_ip_bytes: u64,
    /// Packets member → client.
    pub resp_pkts: u64,
    /// IP bytes member → client.
    pub resp_ip_bytes: u64,
}

/// One dropped packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DroppedPacket {
    /// Packet number in the capture.
    pub index: u64,
    /// Why.
    pub reason: &'static str,
    /// Its addressing.
    pub tuple: Tuple,
}

/// Counts over the whole replay.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Packets read.
    pub packets: u64,
    /// IPv4 packets the engine saw.
    pub ipv4: u64,
    /// Copies of packets the capturing host sent (not replayed).
    pub outgoing_copies: u64,
    /// Non-IPv4 packets by kind (named by [`Summary::not_ipv4`]).
    pub not_ipv4_kinds: BTreeMap<crate::link::NotIpv4, u64>,
    /// Frames shorter than their link header.
    pub link_truncated: u64,
    /// Translated packets client → member (NAPT's outside → inside included).
    pub translated_inbound: u64,
    /// Translated packets member → client (NAPT's inside → outside included).
    pub translated_outbound: u64,
    /// Of those, packets of NAPT sessions inside hosts started (RFC 2391 §3.2; not
    /// load-shared), inside → outside.
    pub napt_outbound: u64,
    /// Their replies, outside → inside.
    pub napt_inbound: u64,
    /// Passed unchanged, by reason.
    pub passed: BTreeMap<&'static str, u64>,
    /// Dropped, by reason.
    pub dropped: BTreeMap<&'static str, u64>,
    /// The first [`DROP_LIST_LIMIT`] dropped packets.
    pub dropped_packets: Vec<DroppedPacket>,
    /// Translated packets whose input checksum was wrong (kept wrong by the same amount).
    pub checksum_faults: u64,
    /// Sessions bound.
    pub sessions: u64,
    /// Sessions by end reason.
    pub ends: BTreeMap<EndReason, u64>,
    /// Per member (index = `SessionRecord::member`).
    pub members: Vec<MemberTotals>,
    /// Pool member transitions (dead host detection, timeline), in order.
    pub pool_events: Vec<PoolEvent>,
    /// Later fragments held for their first fragment (each is also counted, once its fate is
    /// known, as translated, passed or dropped).
    pub fragments_held: u64,
    /// Held fragments released (translated or passed) when their first fragment came.
    pub fragments_released: u64,
    /// Held fragments dropped: their first fragment did not come in time or at all, or was
    /// dropped.
    pub fragments_expired: u64,
    /// ICMP time exceeded messages the modelled router sent.
    pub icmp_time_exceeded_sent: u64,
    /// What the FTP gateway did (RFC 1631 §5, RFC 3022 §4.3).
    pub ftp: FtpTotals,
}

/// The FTP gateway's counts over a replay.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FtpTotals {
    /// Commands and replies it followed (rewrote, expects their data connection), by name
    /// (`PORT`, `EPRT`, `227`, `229`).
    pub followed: BTreeMap<&'static str, u64>,
    /// Commands and replies it read but did not follow, by reason
    /// ([`crate::engine::ftp::Unfollowed::name`]).
    pub unfollowed: BTreeMap<&'static str, u64>,
    /// Packets whose datagram changed length with the rewrite.
    pub resized: u64,
    /// Data connections bound to their control session's member.
    pub data_sessions: u64,
}

impl FtpTotals {
    /// Whether the gateway saw anything.
    pub fn any(&self) -> bool {
        *self != FtpTotals::default()
    }
}

/// Capture instant `t` as time after `start`: `+S.UUUUUU`, microseconds truncated (`-` before
/// `start`). The golden's times and the JSON report's evidence are written so, so the same
/// instant reads the same in both (the terminal rounds to milliseconds).
pub fn since_start(start: Timestamp, t: Timestamp) -> String {
    let d = t.nanos() as i128 - start.nanos() as i128;
    format!(
        "{}{}.{:06}",
        if d < 0 { "-" } else { "+" },
        d.abs() / 1_000_000_000,
        (d.abs() % 1_000_000_000) / 1000
    )
}

/// The sessions of a pool event in short: `s3 s7 s9` or `s3 s7 … (12)`.
pub fn session_list(sessions: &[u64], max: usize) -> String {
    let mut out: Vec<String> = sessions.iter().take(max).map(|n| format!("s{n}")).collect();
    if sessions.len() > max {
        out.push(format!("… ({} in all)", sessions.len()));
    }
    out.join(" ")
}

impl Summary {
    /// Non-IPv4 packets by kind name (`arp`, `ipv6`, `llc`, `ethertype-0x…`, ...: [`NotIpv4`]),
    /// in name order.
    ///
    /// [`NotIpv4`]: crate::link::NotIpv4
    pub fn not_ipv4(&self) -> BTreeMap<String, u64> {
        self.not_ipv4_kinds
            .iter()
            .map(|(k, n)| (k.to_string(), *n))
            .collect()
    }

    fn member(&mut self, i: usize) -> &mut MemberTotals {
        if self.members.len() <= i {
            self.members.resize(i + 1, MemberTotals::default());
        }
        &mut self.members[i]
    }

    /// Translated packets.
    pub fn translated(&self) -> u64 {
        self.translated_inbound + self.translated_outbound
    }

    fn ended(&mut self, r: &SessionRecord) {
        *self.ends.entry(r.end).or_default() += 1;
        self.ftp.data_sessions += u64::from(r.ftp_data_of.is_some());
        let m = self.member(r.member);
        m.orig_pkts += r.orig_packets;
        m.orig_ip_bytes += r.orig_bytes;
        m.resp_pkts += r.resp_packets;
        m.resp_ip_bytes += r.resp_bytes;
    }
}

impl Summary {
    #[cold]
    fn ftp_command(&mut self, c: crate::engine::ftp::FtpCommand, o: &Outcome) {
        match o.alg.unfollowed {
            None => {
                *self.ftp.followed.entry(c.name()).or_default() += 1;
                self.ftp.resized += u64::from(o.alg.resized != 0);
            }
            Some(u) => *self.ftp.unfollowed.entry(u.name()).or_default() += 1,
        }
    }

    fn outcome(&mut self, meta: &PacketMeta, o: &Outcome) {
        match o.verdict {
            Verdict::Held(_) => self.fragments_held += 1,
            Verdict::Translated => {
                let napt = o.is_napt();
                if o.flow == Flow::Outbound {
                    self.translated_outbound += 1;
                    self.napt_outbound += u64::from(napt);
                } else {
                    self.translated_inbound += 1;
                    self.napt_inbound += u64::from(napt);
                }
                if o.faults.any() {
                    self.checksum_faults += 1;
                }
                if let Some(c) = o.alg.ftp {
                    self.ftp_command(c, o);
                }
            }
            Verdict::Pass(r) => *self.passed.entry(r.name()).or_default() += 1,
            Verdict::Drop(r) => {
                *self.dropped.entry(r.name()).or_default() += 1;
                if self.dropped_packets.len() < DROP_LIST_LIMIT {
                    self.dropped_packets.push(DroppedPacket {
                        index: meta.index,
                        reason: r.name(),
                        tuple: o.before,
                    });
                }
            }
        }
    }
}

impl Observer for Summary {
    fn packet(&mut self, meta: &PacketMeta, what: &Disposition) {
        self.packets += 1;
        match what {
            Disposition::OutgoingCopy => self.outgoing_copies += 1,
            Disposition::NotIpv4(k) => *self.not_ipv4_kinds.entry(*k).or_default() += 1,
            Disposition::LinkTruncated => self.link_truncated += 1,
            Disposition::Engine(o) => {
                self.ipv4 += 1;
                self.outcome(meta, o);
            }
        }
    }

    fn emitted(&mut self, origin: &PacketMeta, _now: Timestamp, kind: &EmitKind) {
        match kind {
            EmitKind::HeldFragment { outcome, .. } => {
                if matches!(outcome.verdict, Verdict::Drop(_)) {
                    self.fragments_expired += 1;
                } else {
                    self.fragments_released += 1;
                }
                self.outcome(origin, outcome);
            }
            EmitKind::IcmpTimeExceeded { .. } => self.icmp_time_exceeded_sent += 1,
        }
    }

    fn event(&mut self, event: &Event) {
        match event {
            Event::Bound { member, .. } => {
                self.sessions += 1;
                self.member(*member).sessions += 1;
            }
            Event::Ended(r) => self.ended(r),
        }
    }

    fn pool_event(&mut self, event: &PoolEvent) {
        self.pool_events.push(event.clone());
    }
}
