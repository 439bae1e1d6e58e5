//! Address lookup and translation (RFC 2391 §4.2): every packet of a bound session is looked up
//! by its key and rewritten in place. Inbound packets (client → VIP) get the member's address as
//! destination; outbound packets (member → client) get the VIP as source. The header
//! modifications are those of RFC 1631 §5 / RFC 3022 §4: IP, TCP, UDP and ICMP checksums
//! updated incrementally, ICMP error payloads translated too (RFC 3022 §4.3), and later
//! fragments of a datagram translated like its first fragment.

use super::binding::reply_key;
use super::event::{
    ChecksumFaults, DropReason, EndReason, Flow, Outcome, PassReason, Tuple, Verdict,
};
use super::fragments::{FragmentFate, FragmentKey, HoldRefused};
use super::session::{ALG_DATA, ALG_MEMBER_OPENED, Segment, opens_session, tcp_history};
use super::{Engine, View};
use crate::time::Timestamp;
use crate::wire::checksum::{ones_add, update16};
use crate::wire::ipv4::{self, Ipv4, L4, Malformed};
use crate::wire::tcp_flags::{ACK, SYN};
use crate::wire::{icmp_type, proto};

/// The two stages of [`Engine::prefetch`]: a packet's flow-table entry first, its session
/// once that entry is in cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefetch {
    /// The flow-table line the packet's lookup reads.
    Lookup,
    /// The session the packet belongs to (looked up now).
    Session,
}

/// The addressing of a parsed packet (ports where there are ports).
fn tuple_of(ip: &Ipv4, l4: &L4) -> Tuple {
    let (sport, dport) = match *l4 {
        L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport, .. } => (sport, dport),
        L4::IcmpQuery { id, .. } => (id, 0),
        _ => (0, 0),
    };
    Tuple {
        protocol: ip.protocol,
        src: ip.src,
        sport,
        dst: ip.dst,
        dport,
    }
}

pub(crate) fn l4_checksum(ip: &Ipv4, b: &[u8]) -> Option<u16> {
    ip.l4_checksum_offset()
        .map(|at| u16::from_be_bytes([b[at], b[at + 1]]))
}

/// Records in `out` how a translated packet leaves: verdict, addressing, IP and transport
/// checksums, TTL.
pub(crate) fn mark_translated(out: &mut Outcome, ip: &Ipv4, l4_after: Option<u16>) {
    out.verdict = Verdict::Translated;
    out.after = Tuple {
        src: ip.src,
        dst: ip.dst,
        ..out.before
    };
    out.ip_checksum[1] = ip.checksum;
    out.ttl[1] = ip.ttl;
    out.ip_bytes = ip.total_len as u16;
    if let (Some(c), Some(pair)) = (l4_after, out.l4_checksum.as_mut()) {
        pair[1] = c;
    }
}

/// How an ICMP error quoting a datagram of a session is translated (RFC 3022 §4.3): which side
/// it came from, the quoted datagram as the receiving side must see it, the outer source and
/// destination `[from, to]` rewrites, and the session it belongs to (0 and no member for a NAPT
/// session, §3.2).
pub(crate) struct IcmpErrorView {
    pub flow: Flow,
    pub quote_to: Tuple,
    pub src: [[u8; 4]; 2],
    pub dst: [[u8; 4]; 2],
    pub session: u64,
    pub member: Option<usize>,
}

/// A packet's outcome before anything is decided: passed as unrelated, its addressing,
/// checksums and TTL as it arrived.
pub(crate) fn base_outcome(ip: &Ipv4, l4: &L4, b: &[u8]) -> Outcome {
    let before = tuple_of(ip, l4);
    let mut out = Outcome::new(Verdict::Pass(PassReason::Unrelated));
    out.before = before;
    out.after = before;
    out.ip_checksum = [ip.checksum; 2];
    out.ttl = [ip.ttl; 2];
    if let Some(c) = l4_checksum(ip, b) {
        out.l4_checksum = Some([c; 2]);
    }
    out
}

/// Rewrites a packet's addresses and TU ports (ICMP query: identifier) to those of `to`,
/// changing only the fields that differ, each with its checksum updates (RFC 1624 eqn. 3;
/// RFC 3022 §4.1: NAPT changes the TU port and its checksum too).
pub(crate) fn rewrite_tuple(ip: &mut Ipv4, b: &mut [u8], l4: &L4, to: &Tuple) {
    if ip.src != to.src {
        ipv4::set_src(ip, b, to.src);
    }
    if ip.dst != to.dst {
        ipv4::set_dst(ip, b, to.dst);
    }
    match *l4 {
        L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport, .. } => {
            if sport != to.sport {
                ipv4::set_sport(ip, b, to.sport);
            }
            if dport != to.dport {
                ipv4::set_dport(ip, b, to.dport);
            }
        }
        L4::IcmpQuery { id, .. } if id != to.sport => ipv4::set_icmp_id(ip, b, to.sport),
        _ => {}
    }
}

/// The lookup key of a packet that starts at its IPv4 header, read from the header fields
/// alone: what [`tuple_of`] gives for a first fragment with a transport header (TCP, UDP,
/// ICMP echo/timestamp/information/address-mask query or reply), `None` for anything else.
/// Only [`Engine::prefetch`] uses it, so a key it gets wrong costs a wasted hint, nothing more.
pub(crate) fn quick_key(b: &[u8]) -> Option<Tuple> {
    let (&vihl, rest) = b.split_first()?;
    let ihl = usize::from(vihl & 0x0f) * 4;
    // As few bytes as [`Ipv4::l4`] reads the key from: the ports (TCP, UDP), the type and
    // identifier (ICMP query), so that a packet cut right after them gets its key too.
    if vihl >> 4 != 4
        || ihl < 20
        || b.len() < ihl + 4
        || u16::from_be_bytes([rest[5], rest[6]]) & 0x1fff != 0
    {
        return None;
    }
    let protocol = b[9];
    let word = |at: usize| u16::from_be_bytes([b[ihl + at], b[ihl + at + 1]]);
    let (sport, dport) = match protocol {
        proto::TCP | proto::UDP => (word(0), word(2)),
        proto::ICMP
            if b.len() >= ihl + 6
                && (icmp_type::is_query(b[ihl]) || icmp_type::is_query_reply(b[ihl])) =>
        {
            (word(4), 0)
        }
        _ => return None,
    };
    Some(Tuple {
        protocol,
        src: [b[12], b[13], b[14], b[15]],
        sport,
        dst: [b[16], b[17], b[18], b[19]],
        dport,
    })
}

impl Engine {
    /// A hint that the packet `pre` was computed from is coming soon: starts loading its
    /// flow-table entry and, when that entry is already known, its session, so the cache
    /// misses of several packets overlap instead of following one another. It reads nothing
    /// of the packet itself, and changes no state: calling it or not never changes what the
    /// engine does.
    #[inline]
    pub fn prefetch(&self, pre: &super::Precomputed, stage: Prefetch) {
        let Some(h) = pre.key_hash else {
            return;
        };
        match stage {
            Prefetch::Lookup => self.flows.prefetch(h),
            Prefetch::Session => {
                if let Some(s) = self
                    .flows
                    .likely_slot(h)
                    .and_then(|s| self.slots.get(s as usize))
                {
                    super::prefetch_lines(s);
                }
            }
        }
    }

    /// A datagram whose IPv4 header the capture's snapshot cut (options past the captured
    /// bytes): the router saw it whole, but nothing here can be translated. It passes
    /// untouched, reported as truncated when it is to a VIP or from a member, as a packet cut
    /// inside its transport header is.
    fn header_cut(&self, b: &[u8]) -> Outcome {
        let addr = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        let (src, dst) = (addr(12), addr(16));
        let related = self.vss.is_vip(dst) || self.pool.find(src).is_some();
        let mut out = Outcome::new(Verdict::Pass(if related {
            PassReason::Truncated
        } else {
            PassReason::Unrelated
        }));
        let t = Tuple {
            protocol: b[9],
            src,
            sport: 0,
            dst,
            dport: 0,
        };
        out.before = t;
        out.after = t;
        out.ip_checksum = [u16::from_be_bytes([b[10], b[11]]); 2];
        out.ttl = [b[8]; 2];
        out
    }

    /// Classifies and handles one packet at time `now` (timers already fired).
    pub(crate) fn process(&mut self, now: Timestamp, b: &mut [u8]) -> Outcome {
        let ip = match Ipv4::parse(b) {
            Ok(ip) => ip,
            Err(Malformed::HeaderCut) => return self.header_cut(b),
            Err(_) => return Outcome::new(Verdict::Drop(DropReason::MalformedIpv4)),
        };
        let l4 = ip.l4(b);
        let mut out = base_outcome(&ip, &l4, b);
        let before = out.before;
        debug_assert!(
            !matches!(l4, L4::Tcp { .. } | L4::Udp { .. } | L4::IcmpQuery { .. })
                || quick_key(b) == Some(before),
            "prefetch key of {before}"
        );
        // Which sides of a session the packet may belong to: the side queries travel on
        // (`icmp_in`: client → VIP; with NAPT, inside host → outside) and the side replies
        // travel on (`icmp_out`). Only ICMP queries and replies are limited to one side.
        let (icmp_in, icmp_out) = match l4 {
            L4::IcmpQuery { icmp_type: t, .. } => {
                (icmp_type::is_query(t), icmp_type::is_query_reply(t))
            }
            L4::IcmpError { .. } => {
                self.icmp_error(ip, b, &mut out);
                return out;
            }
            L4::LaterFragment => {
                self.later_fragment(now, ip, b, &mut out, true);
                return out;
            }
            // Too short for its ports, or (TCP, UDP) for its checksum: cut by the snapshot,
            // the router saw it whole and it passes, reported as truncated; whole as captured,
            // its header goes on in a later fragment (or nowhere), and it is dropped.
            L4::Truncated | L4::Tcp { checksum: None, .. } | L4::Udp { checksum: None, .. }
                if matches!(l4, L4::Truncated) || ip.is_complete() =>
            {
                // The router's business: to a VIP, from a member, or NAPT's (from an inside
                // host to the outside, or to the outside address).
                let related = self.vss.is_vip(ip.dst)
                    || self.pool.find(ip.src).is_some()
                    || self.napt_fragment_related(&ip);
                if related {
                    out.verdict = match ip.is_complete() {
                        true => Verdict::Drop(DropReason::TransportHeaderIncomplete),
                        false => Verdict::Pass(PassReason::Truncated),
                    };
                }
                return out;
            }
            L4::IcmpOther { .. } => (false, false),
            _ => (true, true),
        };
        // A packet of a bound session, looked up before anything starts a new one (as
        // conntrack is consulted before DNAT): a reply to the router's address and TU port is
        // its session's even when that port is also a service of the address (LS-NAPT, §3.3).
        // Replies also cover statically mapped backups (§4.1).
        let hit = if icmp_in || icmp_out {
            self.flows.get(&before, self.slots.as_slice())
        } else {
            None
        };
        match hit {
            Some((slot, Flow::Outbound)) if icmp_out => {
                self.outbound(now, Some(slot), ip, l4, b, &mut out);
                return out;
            }
            Some((slot, Flow::Inbound)) if icmp_in => {
                let vs = self.session(slot).vs;
                self.inbound(now, vs as usize, Some(slot), ip, l4, b, &mut out);
                return out;
            }
            _ => {}
        }
        // §3.2: a packet of a NAPT session an inside host started, or a reply to it: also before
        // new inbound sessions, so a reply to the outside address is never load-shared. As for
        // bound sessions, an ICMP query may only match the side queries travel on (the inside
        // host's, outbound) and a query reply the other: an outside host's echo request to the
        // outside address is no reply to an inside host's ping that has the same identifier,
        // whatever the table holds (conntrack's ICMP tuples hold the type for the same reason).
        if let Some((slot, flow)) = self.napt_lookup(&before)
            && (if flow == Flow::Outbound {
                icmp_in
            } else {
                icmp_out
            })
        {
            self.napt_translate(now, slot, flow, ip, l4, b, &mut out);
            return out;
        }
        // RFC 1631 §5: the data connection an FTP control session announced, before the
        // services (conntrack's expectations come before its NAT rules).
        if self.ftp_data_syn(now, ip, l4, b, &mut out, true) {
            return out;
        }
        if icmp_in && let Some(vs) = self.vss.inbound(ip.dst, ip.protocol, before.dport) {
            self.inbound(now, vs, None, ip, l4, b, &mut out);
            return out;
        }
        // An FTP data connection the member opens (active mode), before NAPT's sessions of
        // inside hosts (an expectation comes before the NAT rules).
        if self.ftp_data_syn(now, ip, l4, b, &mut out, false) {
            return out;
        }
        // §3.2: NAPT of sessions inside hosts start.
        if self.napt.is_some() && self.napt_start(now, ip, l4, b, &mut out) {
            return out;
        }
        if icmp_out
            && self
                .vss
                .outbound(&self.pool, ip.src, ip.protocol, before.sport)
        {
            self.outbound(now, None, ip, l4, b, &mut out);
            return out;
        }
        if self.vss.is_vip(ip.dst) {
            // §3: with a router-owned VIP the router's own services are disabled there, so a
            // packet to any other port is not forwarded; otherwise it passes untouched.
            out.verdict = if self.router_addresses.contains(&ip.dst) {
                Verdict::Drop(DropReason::ServiceRestricted)
            } else {
                Verdict::Pass(PassReason::NotAService)
            };
        }
        out
    }

    /// A SYN that opens a data connection an FTP control session announced (`inbound`: the
    /// client's, passive mode; else the member's, active mode): bound to the control session's
    /// member and translated, or dropped. `false` when no expectation takes it.
    fn ftp_data_syn(
        &mut self,
        now: Timestamp,
        ip: Ipv4,
        l4: L4,
        b: &mut [u8],
        out: &mut Outcome,
        inbound: bool,
    ) -> bool {
        if self.ftp.expected.is_empty()
            || !matches!(l4, L4::Tcp { flags, .. } if opens_session(flags))
        {
            return false;
        }
        let before = out.before;
        let Some(bound) = self.bind_expected(now, &ip, &before, inbound) else {
            return false;
        };
        match (bound, inbound) {
            (Ok(slot), true) => {
                out.bound = true;
                out.flow = Flow::Inbound;
                let target = self.session(slot).translated;
                self.translate(now, slot, Flow::Inbound, ip, l4, b, out, target, true);
            }
            (Ok(slot), false) => {
                out.bound = true;
                self.outbound(now, Some(slot), ip, l4, b, out);
            }
            (Err(reason), _) => {
                out.flow = if inbound {
                    Flow::Inbound
                } else {
                    Flow::Outbound
                };
                out.verdict = Verdict::Drop(reason);
            }
        }
        true
    }

    /// Ends session `slot`, closing (a FIN seen) or closed, because a new connection's SYN
    /// came on its tuple: with its close reason when both FINs were acknowledged or an RST
    /// seen, else `reopened`.
    fn unbind_reopened(&mut self, slot: u32, now: Timestamp) {
        let reason = self
            .session(slot)
            .closed
            .map_or(EndReason::Reopened, |c| c.1);
        self.unbind(slot, reason, now);
    }

    fn ttl_expired(&self, ip: &Ipv4, flow: Flow) -> bool {
        self.forwards_with_ttl(flow) && ip.ttl <= 1
    }

    /// Whether the modelled router decrements TTL on this flow. In the client-side view the
    /// outbound packets are shown as the member sent them, before any router.
    pub(crate) fn forwards_with_ttl(&self, flow: Flow) -> bool {
        self.ttl_decrement && (flow == Flow::Inbound || self.vss.view == View::Router)
    }

    /// An inbound packet to service `vs`; `hit` is its session's slot, already looked up by
    /// its key.
    #[allow(clippy::too_many_arguments)]
    fn inbound(
        &mut self,
        now: Timestamp,
        vs: usize,
        hit: Option<u32>,
        ip: Ipv4,
        l4: L4,
        b: &mut [u8],
        out: &mut Outcome,
    ) {
        out.flow = Flow::Inbound;
        let key = out.before;
        let fresh_syn = matches!(l4, L4::Tcp { flags, .. } if opens_session(flags));
        let mut slot = hit;
        if let Some(s) = slot
            && fresh_syn
            && self.session(s).tcp.reopened_by_syn()
        {
            // A new connection reusing the 4-tuple of one that has closed (or is closing, a
            // FIN seen): the old one ends now, with its close reason, and the SYN binds anew.
            let data = self.session(s).alg & ALG_DATA != 0;
            self.unbind_reopened(s, now);
            if data {
                // An FTP data connection's tuple: its new connection is one a control session
                // announces again, or none (not to a service); classified afresh.
                *out = self.process(now, b);
                return;
            }
            slot = None;
        }
        if self.ttl_expired(&ip, Flow::Inbound) {
            out.verdict = Verdict::Drop(DropReason::TtlExceeded);
            out.session = slot.map_or(0, |s| self.session(s).number);
            return;
        }
        let slot = match slot {
            Some(s) => s,
            None => {
                if key.protocol == proto::TCP && !fresh_syn {
                    out.verdict = Verdict::Drop(DropReason::NoSession);
                    return;
                }
                match self.bind(now, vs, key) {
                    Ok(s) => {
                        out.bound = true;
                        s
                    }
                    Err(reason) => {
                        out.verdict = Verdict::Drop(reason);
                        return;
                    }
                }
            }
        };
        let s = self.session(slot);
        let (target, alg) = (s.translated, s.alg != 0);
        self.translate(now, slot, Flow::Inbound, ip, l4, b, out, target, alg);
    }

    /// An outbound packet; `hit` is its session's slot, already looked up by its reply key.
    fn outbound(
        &mut self,
        now: Timestamp,
        hit: Option<u32>,
        ip: Ipv4,
        l4: L4,
        b: &mut [u8],
        out: &mut Outcome,
    ) {
        out.flow = Flow::Outbound;
        if let Some(s) = hit
            && self.session(s).alg & ALG_MEMBER_OPENED != 0
            && matches!(l4, L4::Tcp { flags, .. } if opens_session(flags))
            && self.session(s).tcp.reopened_by_syn()
        {
            // An active FTP data connection's tuple opened again by the member, the old one
            // closing: it ends, and the new one is classified afresh (an expectation, or none).
            self.unbind_reopened(s, now);
            *out = self.process(now, b);
            return;
        }
        let Some(slot) = hit else {
            let answers = out.before.protocol != proto::TCP
                || matches!(l4, L4::Tcp { flags, .. } if flags & (SYN | ACK) == (SYN | ACK));
            out.verdict = if out.before.protocol == proto::TCP
                && !matches!(l4, L4::Tcp { flags, .. } if opens_session(flags))
            {
                Verdict::Drop(DropReason::NoSession)
            } else {
                Verdict::Pass(PassReason::OutboundWithoutSession)
            };
            // RFC 2391 §6: a member answering a session lsnat did not bind to it (router view).
            if answers
                && self.vss.view == View::Router
                && let Some(m) = self.pool.find(out.before.src)
            {
                self.dead_host_stray_reply(now, m, out.before);
            }
            out.flow = Flow::None;
            return;
        };
        if self.ttl_expired(&ip, Flow::Outbound) {
            out.verdict = Verdict::Drop(DropReason::TtlExceeded);
            out.session = self.session(slot).number;
            return;
        }
        let s = self.session(slot);
        // Router view: back to VIP:service → client:port. Client-side view: what the member
        // sent, member:service → (LS-NAPT: router address:port, else client:port).
        let target = match self.vss.view {
            View::Router => reply_key(&s.key, s.key.dst),
            View::ClientSide => reply_key(&s.translated, s.translated.dst),
        };
        let alg = s.alg != 0;
        self.translate(now, slot, Flow::Outbound, ip, l4, b, out, target, alg);
    }

    /// Rewrites a packet of session `slot` to `target` (addresses and TU ports), decrements
    /// TTL, and updates the session's counters and TCP state; `alg`: the session is one the
    /// FTP gateway follows (`Session::alg`).
    #[allow(clippy::too_many_arguments)]
    fn translate(
        &mut self,
        now: Timestamp,
        slot: u32,
        flow: Flow,
        mut ip: Ipv4,
        l4: L4,
        b: &mut [u8],
        out: &mut Outcome,
        target: Tuple,
        alg: bool,
    ) {
        self.rewrite_forwarded(flow, &mut ip, &l4, b, &target, out);
        if ip.more_fragments {
            let key = FragmentKey::arrived(out.before.src, out.before.dst, &ip);
            let number = self.session(slot).number;
            let fate = FragmentFate::Translated { slot, number, flow };
            self.frags.insert(now, key, fate);
        }
        // RFC 1631 §5, RFC 3022 §4.3: the FTP gateway's payload and sequence changes (it
        // returns the segment as TCP tracking sees it).
        if alg {
            let track = self.ftp_segment(now, slot, flow, &mut ip, l4, b, out);
            // A datagram that changed length is the engine's to forward now.
            let resized = (out.alg.resized != 0).then(|| std::mem::take(&mut self.resized));
            let forwarded: &[u8] = resized.as_deref().unwrap_or(b);
            self.finish_translation(now, slot, flow, &ip, track, forwarded, out);
            if let Some(r) = resized {
                self.resized = r;
            }
        } else {
            self.finish_translation(now, slot, flow, &ip, l4, b, out);
        }
        if !matches!(l4, L4::Other) {
            out.after.sport = target.sport;
            out.after.dport = target.dport;
        }
    }

    /// The transport checksum error of the packet being handled, as it arrived: the figure
    /// the caller gave [`Engine::handle_precomputed`], or computed now.
    fn l4_checksum_error(&self, ip: &Ipv4, b: &[u8]) -> Option<u16> {
        match self.given {
            Some(given) => {
                debug_assert_eq!(given.l4_error, ip.l4_checksum_error(b), "given error");
                given.l4_error
            }
            None => ip.l4_checksum_error(b),
        }
    }

    /// The IPv4 header checksum error of the packet being handled, as it arrived: the figure
    /// the caller gave [`Engine::handle_precomputed`], or computed now.
    fn ip_checksum_error(&self, ip: &Ipv4, b: &[u8]) -> u16 {
        match self.given {
            Some(given) => {
                debug_assert_eq!(given.ip_error, ip.header_checksum_error(b), "given error");
                given.ip_error
            }
            None => ip.header_checksum_error(b),
        }
    }

    /// The header rewrite every forwarded session packet gets (RFC 1631 §5, RFC 3022 §4.1):
    /// input checksum errors noted, addresses and TU ports set to `target` with incremental
    /// checksum updates, TTL decremented where the modelled router forwards.
    pub(crate) fn rewrite_forwarded(
        &self,
        flow: Flow,
        ip: &mut Ipv4,
        l4: &L4,
        b: &mut [u8],
        target: &Tuple,
        out: &mut Outcome,
    ) {
        out.faults = ChecksumFaults {
            ip: self.ip_checksum_error(ip, b),
            l4: self.l4_checksum_error(ip, b),
        };
        rewrite_tuple(ip, b, l4, target);
        if self.forwards_with_ttl(flow) {
            ipv4::decrement_ttl(ip, b);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_translation(
        &mut self,
        now: Timestamp,
        slot: u32,
        flow: Flow,
        ip: &Ipv4,
        l4: L4,
        b: &[u8],
        out: &mut Outcome,
    ) {
        mark_translated(out, ip, l4_checksum(ip, b));
        let dir = usize::from(flow == Flow::Outbound);
        let faulty = out.faults.any();
        // Bytes as the member sent or received them: in the router view a reply the FTP
        // gateway resized left the member at its captured length.
        let mut member_len = ip.total_len as u64;
        if out.alg.resized != 0 && dir == 1 && self.vss.view == View::Router {
            member_len = (member_len as i64 - i64::from(out.alg.resized)) as u64;
            out.ip_bytes = member_len as u16;
        }
        let s = self.session_mut(slot);
        out.session = s.number;
        out.member = Some(s.member);
        s.last = now;
        s.packets[dir] += 1;
        s.bytes[dir] += member_len;
        if s.member_removed {
            s.after_removal[dir] += 1;
        }
        let member = s.member;
        let answered = (dir == 1 && s.first_reply.is_none()).then(|| now.since(s.first));
        // A data connection the FTP gateway bound was no new session the member was given to
        // answer (active mode: it opened it): no response-time sample (§5.1 (5)).
        let sample = answered.filter(|_| s.alg & ALG_DATA == 0);
        if answered.is_some() {
            s.first_reply = Some(now);
        }
        if faulty {
            s.checksum_faults += 1;
            s.history.mark(b'c', dir == 0);
        }
        let state_changed = match l4 {
            L4::Tcp { .. } => {
                let seg = Segment::of(ip, &l4, b).unwrap_or_default();
                tcp_history(&mut s.history, dir == 0, seg.flags, seg.payload_len);
                if s.closed.is_none() {
                    let before = s.tcp.state;
                    // An active FTP data connection: the member opened it.
                    let opener = match s.alg & ALG_MEMBER_OPENED {
                        0 => dir,
                        _ => 1 - dir,
                    };
                    let end = s.tcp.on_segment(opener, seg);
                    if let Some(reason) = end {
                        s.closed = Some((now, reason));
                    }
                    out.tcp_state = Some(s.tcp.state);
                    end.is_some() || s.tcp.state != before
                } else {
                    out.tcp_state = Some(s.tcp.state);
                    false
                }
            }
            L4::LaterFragment => false,
            _ => {
                s.history.mark(b'd', dir == 0);
                false
            }
        };
        // Load figures for the load-share algorithms (RFC 2391 §5.1 (3), (5)).
        self.pool.traffic(member, now, member_len);
        if let Some(rt) = sample {
            self.pool.response(member, rt);
        }
        if state_changed {
            // A new TCP state, or the close itself.
            self.arm_close(slot);
            let s = self.session(slot);
            if s.closed.is_some_and(|(at, _)| at == now) {
                let number = s.number;
                self.closed_for_retirement(slot, number, now);
            }
        }
        if answered.is_some() {
            // RFC 2391 §6: the member answered a newly assigned session.
            let (m, number) = (out.member.unwrap_or(0), out.session);
            self.dead_host_answer(now, m, number);
        }
    }

    /// A later fragment: translated like the first fragment of its datagram (RFC 3022 §4.2
    /// fragments; only the first carries the transport header, so only the IP header changes).
    /// One that comes before its first fragment is held for it when `may_hold` (see
    /// [`super::fragments`]).
    pub(crate) fn later_fragment(
        &mut self,
        now: Timestamp,
        ip: Ipv4,
        b: &mut [u8],
        out: &mut Outcome,
        may_hold: bool,
    ) {
        let key = FragmentKey::arrived(ip.src, ip.dst, &ip);
        let (slot, number, flow) = match self.frags.get(&key).map(|e| e.fate) {
            Some(FragmentFate::Translated { slot, number, flow })
                if self.slots[slot as usize]
                    .as_ref()
                    .is_some_and(|s| s.number == number) =>
            {
                (slot, number, flow)
            }
            // §3.2: its first fragment was a NAPT session's (still there).
            Some(FragmentFate::Napt { slot, number, flow })
                if self.napt_fragment_addresses(slot, number, flow).is_some() =>
            {
                self.napt_later_fragment(now, slot, number, flow, ip, b, out);
                return;
            }
            // Passed or dropped as its first fragment was.
            Some(FragmentFate::Like(verdict)) => {
                out.verdict = verdict;
                return;
            }
            _ => {
                if self.fragment_related(&ip) {
                    let held = may_hold.then(|| self.hold.hold(now, key, &b[..ip.captured]));
                    out.verdict = match held {
                        Some(Ok(id)) => Verdict::Held(id),
                        Some(Err(HoldRefused::Full)) => Verdict::Drop(DropReason::FragmentHoldFull),
                        Some(Err(HoldRefused::Disabled)) | None => {
                            Verdict::Drop(DropReason::FragmentWithoutFirst)
                        }
                    };
                }
                return;
            }
        };
        out.flow = flow;
        if self.ttl_expired(&ip, flow) {
            out.verdict = Verdict::Drop(DropReason::TtlExceeded);
            out.session = number;
            return;
        }
        let s = self.session(slot);
        let (new_src, new_dst) = match (flow, self.vss.view) {
            // The session's translated tuple both ways (LS-NAPT changes the client side too).
            (Flow::Inbound, _) => (s.translated.src, s.translated.dst),
            (_, View::Router) => (s.key.dst, s.key.src),
            (_, View::ClientSide) => (s.translated.dst, s.translated.src),
        };
        let ip = self.rewrite_later_fragment(ip, b, flow, new_src, new_dst, out);
        self.finish_translation(now, slot, flow, &ip, L4::LaterFragment, b, out);
    }

    /// Gives a later fragment on `flow` the addresses its first fragment got (RFC 3022 §4.1:
    /// no transport header to update), TTL decremented as forwarded; notes its IP checksum
    /// fault. Returns the rewritten header.
    fn rewrite_later_fragment(
        &self,
        mut ip: Ipv4,
        b: &mut [u8],
        flow: Flow,
        src: [u8; 4],
        dst: [u8; 4],
        out: &mut Outcome,
    ) -> Ipv4 {
        out.faults = ChecksumFaults {
            ip: self.ip_checksum_error(&ip, b),
            l4: None,
        };
        ipv4::set_src(&mut ip, b, src);
        ipv4::set_dst(&mut ip, b, dst);
        if self.forwards_with_ttl(flow) {
            ipv4::decrement_ttl(&mut ip, b);
        }
        ip
    }

    /// A later fragment of NAPT session `number` in `slot` (§3.2), whose first fragment went
    /// on `flow`: given the addresses its first fragment got, TTL decremented.
    #[allow(clippy::too_many_arguments)]
    fn napt_later_fragment(
        &mut self,
        now: Timestamp,
        slot: u32,
        number: u64,
        flow: Flow,
        ip: Ipv4,
        b: &mut [u8],
        out: &mut Outcome,
    ) {
        let Some((src, dst)) = self.napt_fragment_addresses(slot, number, flow) else {
            return;
        };
        out.flow = flow;
        if self.ttl_expired(&ip, flow) {
            out.verdict = Verdict::Drop(DropReason::TtlExceeded);
            return;
        }
        let ip = self.rewrite_later_fragment(ip, b, flow, src, dst, out);
        self.napt_touch(slot, now);
        mark_translated(out, &ip, l4_checksum(&ip, b));
    }

    /// Whether the router has a part in a fragmented datagram: to a VIP, or from where a
    /// session's replies come (a pool member; in the client-side view, the VIP: the capture
    /// shows them after the router), or NAPT's (§3.2: an inside host's toward the outside, or
    /// to the outside address). Only such datagrams' later fragments are held for their
    /// first fragment, and only such first fragments leave their fate for them when not
    /// translated.
    pub(crate) fn fragment_related(&self, ip: &Ipv4) -> bool {
        self.vss.is_vip(ip.dst)
            || self.pool.find(ip.src).is_some()
            || self.vss.view == View::ClientSide && self.vss.is_vip(ip.src)
            || self.napt_fragment_related(ip)
    }

    /// An ICMP error (RFC 3022 §4.3, RFC 5508 REQ-4/5): find the session of the datagram it
    /// quotes, translate the outer header, the quoted IP header and ports, the quoted IP
    /// checksum, the quoted transport checksum when it is in the quote, and the ICMP checksum.
    /// It never binds, refreshes or ends a session.
    fn icmp_error(&mut self, mut ip: Ipv4, b: &mut [u8], out: &mut Outcome) {
        let inner_at = ip.ihl + 8;
        let quoted = b.get(inner_at..ip.captured).and_then(|q| {
            let inner = Ipv4::parse(q).ok()?;
            let l4 = inner.quoted_l4(q);
            let t = match l4 {
                L4::Tcp { .. } | L4::Udp { .. } | L4::IcmpQuery { .. } | L4::Other => {
                    tuple_of(&inner, &l4)
                }
                _ => return None,
            };
            Some((inner, t))
        });
        let related = self.vss.is_vip(ip.dst)
            || quoted.is_some_and(|(_, t)| self.vss.is_vip(t.src) || self.vss.is_vip(t.dst));
        let Some((inner, qt)) = quoted else {
            // No session can be told from the quote. Cut by the capture's snapshot length, the
            // quote the router saw was whole: the error passes untranslated, reported as
            // truncated like any packet whose headers were cut; a quote that short on the wire
            // is an error about no session.
            if !ip.is_complete() && (related || self.pool.find(ip.src).is_some()) {
                out.verdict = Verdict::Pass(PassReason::Truncated);
            } else if related {
                out.verdict = Verdict::Drop(DropReason::IcmpErrorWithoutSession);
            }
            return;
        };
        // The quoted datagram went the other way: reverse it to get the key of its session.
        let reversed = Tuple {
            protocol: qt.protocol,
            src: qt.dst,
            sport: qt.dport,
            dst: qt.src,
            dport: qt.sport,
        };
        let reversed = if qt.protocol == proto::ICMP {
            Tuple {
                sport: qt.sport,
                dport: 0,
                ..reversed
            }
        } else {
            reversed
        };
        // The reversed quote stands for a packet going the other way, of the other kind: a
        // quoted ICMP query is answered by a reply, a quoted reply answers a query. As for the
        // session's own packets (`process`), it may only match the side its kind travels on.
        let (query_side, reply_side) = match inner.quoted_l4(&b[inner_at..ip.captured]) {
            L4::IcmpQuery { icmp_type: t, .. } => {
                (icmp_type::is_query_reply(t), icmp_type::is_query(t))
            }
            _ => (true, true),
        };
        let view = match self.flows.get(&reversed, self.slots.as_slice()) {
            Some((slot, flow))
                if (flow == Flow::Inbound && query_side)
                    || (flow == Flow::Outbound && reply_side) =>
            {
                Some(self.icmp_error_view(slot, flow))
            }
            // §3.2: an error about a NAPT session an inside host started (its queries go out).
            _ => self.napt_icmp_error_view(&reversed).filter(|v| {
                (v.flow == Flow::Outbound && query_side) || (v.flow == Flow::Inbound && reply_side)
            }),
        };
        let Some(v) = view else {
            if related
                || self.pool.find(ip.src).is_some()
                    && self.vss.outbound(&self.pool, qt.dst, qt.protocol, qt.dport)
            {
                out.verdict = Verdict::Drop(DropReason::IcmpErrorWithoutSession);
            }
            return;
        };
        let flow = v.flow;
        out.flow = flow;
        if self.ttl_expired(&ip, flow) {
            out.verdict = Verdict::Drop(DropReason::TtlExceeded);
            out.session = v.session;
            return;
        }
        let (quote_to, [src_from, src_to], [dst_from, dst_to]) = (v.quote_to, v.src, v.dst);
        out.faults.ip = self.ip_checksum_error(&ip, b);
        out.faults.l4 = self.l4_checksum_error(&ip, b);
        let icmp_csum_at = ip.ihl + 2;
        let mut icmp_csum = u16::from_be_bytes([b[icmp_csum_at], b[icmp_csum_at + 1]]);
        {
            // Rewrite the quoted header (its IP and transport checksums follow, RFC 1624), then
            // fold every 16-bit word of the quote that changed into the ICMP checksum. Changes
            // stay within the quoted IP header and the first 18 bytes after it.
            const SNAP: usize = 80;
            let q = &mut b[inner_at..ip.captured];
            let n = q.len().min(SNAP);
            let mut before = [0u8; SNAP];
            before[..n].copy_from_slice(&q[..n]);
            let mut inner = inner;
            let l4q = inner.quoted_l4(q);
            rewrite_tuple(&mut inner, q, &l4q, &quote_to);
            let word = |d: &[u8], i: usize| {
                u16::from_be_bytes([d[i], if i + 1 < n { d[i + 1] } else { 0 }])
            };
            for i in (0..n).step_by(2) {
                let (old, new) = (word(&before, i), word(q, i));
                if old != new {
                    icmp_csum = update16(icmp_csum, old, new);
                }
            }
            // The quoted TCP or UDP checksum past the snapshot: the router changed it too, by
            // minus the change of the addresses and ports it covers (RFC 1624), whatever its
            // value, and the ICMP checksum covers it. (A zero UDP checksum, which stays zero,
            // cannot be told here: taken as present, as Linux always sends one.)
            let csum_at = match inner.protocol {
                proto::TCP => Some(inner.ihl + 16),
                proto::UDP => Some(inner.ihl + 6),
                _ => None,
            };
            if let Some(at) = csum_at
                && at + 2 > q.len()
                && inner_at + at + 2 <= ip.total_len
                && inner.ihl + 4 <= n
                && inner.frag_offset == 0
            {
                let mut covered = 0u16;
                for i in [12, 14, 16, 18, inner.ihl, inner.ihl + 2] {
                    let (old, new) = (word(&before, i), word(q, i));
                    covered = ones_add(covered, ones_add(new, !old));
                }
                icmp_csum = update16(icmp_csum, covered, 0);
            }
        }
        b[icmp_csum_at..icmp_csum_at + 2].copy_from_slice(&icmp_csum.to_be_bytes());
        if ip.src == src_from && src_from != src_to {
            ipv4::set_src(&mut ip, b, src_to);
        }
        if ip.dst == dst_from && dst_from != dst_to {
            ipv4::set_dst(&mut ip, b, dst_to);
        }
        if self.forwards_with_ttl(flow) {
            ipv4::decrement_ttl(&mut ip, b);
        }
        out.session = v.session;
        out.member = v.member;
        mark_translated(out, &ip, Some(icmp_csum));
    }

    /// How an ICMP error about load-shared session `slot`, arriving on `flow`'s side, is
    /// translated: the session's translated tuple both ways (LS-NAPT changes the client's
    /// address and TU port too, a static mapping may change the service port). The outer
    /// addresses change only where they are the session's own endpoints (an intermediate
    /// router's stay).
    fn icmp_error_view(&self, slot: u32, flow: Flow) -> IcmpErrorView {
        let s = self.session(slot);
        let (quote_to, src, dst) = match (flow, self.vss.view) {
            // From the client side, quoting VIP:svc → client: toward the member.
            (Flow::Inbound, _) => (
                reply_key(&s.translated, s.translated.dst),
                [s.key.src, s.translated.src],
                [s.key.dst, s.translated.dst],
            ),
            // From the member side, quoting (router|client):port → member:svc: to the client.
            (_, View::Router) => (
                s.key,
                [s.translated.dst, s.key.dst],
                [s.translated.src, s.key.src],
            ),
            (_, View::ClientSide) => (
                s.translated,
                [s.key.dst, s.translated.dst],
                [s.key.src, s.translated.src],
            ),
        };
        IcmpErrorView {
            flow,
            quote_to,
            src,
            dst,
            session: s.number,
            member: Some(s.member),
        }
    }
}
