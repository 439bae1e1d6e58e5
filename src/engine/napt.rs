//! NAPT for sessions that inside hosts start toward the outside, on the same router as LSNAT
//! (RFC 2391 §3.2: "The NAT configuration is required for translation of outbound sessions
//! ... The illustration below will assume NAPT on the outbound and LSNAT on the inbound";
//! RFC 3022 §2.2). The inside host's address and TU port (ICMP: query identifier) are replaced
//! by the router's outside address and a TU port from [`super::tu_port`]; replies addressed to
//! that address and port are translated back. These are traditional NAT sessions, not
//! load-shared ones: they are kept in their own table, carry no session number in reports, and
//! end like any session (§2.4: TCP close plus the grace period, `tcp_rst` after a reset, or the
//! idle timeout of their protocol and TCP state), which frees their port.

use super::Engine;
use super::binding::reply_key;
use super::config::Timeouts;
use super::event::{DropReason, EndReason, Flow, Outcome, Tuple, Verdict};
use super::fragments::{FragmentFate, FragmentKey};
use super::lookup::{l4_checksum, mark_translated};
use super::session::{Segment, TcpTrack, opens_session};
use super::tu_port::PoolKey;
use crate::time::Timestamp;
use crate::wire::ipv4::{Ipv4, L4};
use std::net::Ipv4Addr;

/// One outbound NAPT session.
#[derive(Clone, Copy, Debug)]
struct Entry {
    number: u64,
    /// Inside host → outside host, as it arrived.
    key: Tuple,
    /// Router's outside address and port → outside host.
    translated: Tuple,
    /// Outside host → router's outside address and port: how replies arrive.
    reply: Tuple,
    last: Timestamp,
    tcp: TcpTrack,
    /// When both FINs were acknowledged or an RST was seen, and which.
    closed: Option<(Timestamp, EndReason)>,
}

impl Entry {
    /// When the session is due to end (RFC 2391 §2.4; per TCP state, RFC 5382 §5 and
    /// RFC 7857 §2.1), with the same timeouts as load-shared sessions (`unbinding.rs`): after
    /// an RST `tcp_rst`, after both FINs `tcp_close_grace`, else the idle timeout of its
    /// protocol and TCP state (`tcp_opening` until the inside host acknowledges the SYN-ACK,
    /// `tcp_closing` once a FIN is seen, `tcp` in between).
    fn deadline(&self, t: &Timeouts) -> Timestamp {
        t.deadline(self.key.protocol, self.tcp.state, self.last, self.closed)
            .0
    }
}

impl super::flow_table::FlowKeys for [Option<Entry>] {
    fn key_of(&self, slot: u32, flow: Flow) -> Option<&Tuple> {
        let e = self.get(slot as usize)?.as_ref()?;
        match flow {
            Flow::Outbound => Some(&e.key),
            Flow::Inbound => Some(&e.reply),
            Flow::None => None,
        }
    }
}

/// The NAPT table.
pub(crate) struct Napt {
    /// Inside networks as (network, mask).
    inside: Vec<(u32, u32)>,
    /// The outside address sessions get.
    address: [u8; 4],
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    flows: super::flow_table::FlowTable,
    timers: super::timer_queue::TimerQueue<(Timestamp, u64, u32)>,
    next: u64,
}

impl Napt {
    pub fn new(inside: &[(Ipv4Addr, u8)], address: Ipv4Addr) -> Napt {
        Napt {
            inside: inside
                .iter()
                .map(|&(a, len)| {
                    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                    (u32::from(a) & mask, mask)
                })
                .collect(),
            address: address.octets(),
            entries: Vec::new(),
            free: Vec::new(),
            flows: super::flow_table::FlowTable::default(),
            timers: super::timer_queue::TimerQueue::default(),
            next: 1,
        }
    }

    fn is_inside(&self, a: [u8; 4]) -> bool {
        let a = u32::from_be_bytes(a);
        self.inside.iter().any(|&(net, mask)| a & mask == net)
    }

    /// Ends session `slot` now: its table entries go and its port is freed. Its timers and
    /// fragment fates name it by number, so they no longer apply.
    fn end(&mut self, slot: u32, ports: &mut super::tu_port::TuPorts) {
        let Some(e) = self.entries[slot as usize].take() else {
            return;
        };
        self.free.push(slot);
        self.flows.remove(&e.key, slot, Flow::Outbound);
        self.flows.remove(&e.reply, slot, Flow::Inbound);
        ports.release_translated(&e.translated);
    }

    /// Keeps the lazy timer queue proportional to the live sessions, as
    /// `Engine::compact_timers_if_stale` does for load-shared ones: once stale entries (of
    /// sessions since ended, or superseded by a state change) outnumber the live sessions,
    /// it is rebuilt with one entry per live session at its deadline. Firing is unchanged.
    fn compact_timers_if_stale(&mut self, t: &Timeouts) {
        let live = self.entries.len() - self.free.len();
        if self.timers.len() <= 2 * live + 4096 {
            return;
        }
        let entries = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(slot, e)| e.as_ref().map(|e| (e.deadline(t), e.number, slot as u32)))
            .collect();
        self.timers.rebuild(entries);
    }
}

impl Engine {
    /// The NAPT session a packet with addressing `t` belongs to, and on which side it came:
    /// an inside host's packet of it (outbound) or a reply to the router's address and port
    /// (inbound).
    #[inline]
    pub(crate) fn napt_lookup(&self, t: &Tuple) -> Option<(u32, Flow)> {
        let napt = self.napt.as_ref()?;
        napt.flows.get(t, napt.entries.as_slice())
    }

    /// Starts a NAPT session for a packet an inside host sends toward the outside (a TCP SYN,
    /// UDP, an ICMP query) and translates it. Returns `false` (leaving `out` untouched) when the
    /// packet starts none.
    pub(crate) fn napt_start(
        &mut self,
        now: Timestamp,
        ip: Ipv4,
        l4: L4,
        b: &mut [u8],
        out: &mut Outcome,
    ) -> bool {
        let Some(napt) = self.napt.as_ref() else {
            return false;
        };
        let t = out.before;
        // Only TCP, UDP and ICMP query sessions have a TU port (or identifier) to translate;
        // other protocols pass untranslated.
        let starts = match l4 {
            L4::Tcp { flags, .. } => opens_session(flags),
            L4::Udp { .. } => true,
            L4::IcmpQuery { icmp_type, .. } => crate::wire::icmp_type::is_query(icmp_type),
            _ => false,
        };
        if !starts || !napt.is_inside(t.src) || napt.is_inside(t.dst) {
            return false;
        }
        out.flow = Flow::Outbound;
        if self.forwards_with_ttl(Flow::Outbound) && ip.ttl <= 1 {
            out.verdict = Verdict::Drop(DropReason::TtlExceeded);
            return true;
        }
        match self.napt_bind(now, t) {
            Some(slot) => self.napt_translate(now, slot, Flow::Outbound, ip, l4, b, out),
            None => out.verdict = Verdict::Drop(DropReason::NaptPortsExhausted),
        }
        true
    }

    /// Translates a packet of NAPT session `slot` that came on `flow`'s side: an inside host's
    /// to the router's outside address and port, a reply back to the inside host.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn napt_translate(
        &mut self,
        now: Timestamp,
        slot: u32,
        flow: Flow,
        ip: Ipv4,
        l4: L4,
        b: &mut [u8],
        out: &mut Outcome,
    ) {
        let fresh_syn = matches!(l4, L4::Tcp { flags, .. } if opens_session(flags));
        if flow == Flow::Outbound
            && fresh_syn
            && self.napt.as_ref().is_some_and(|n| {
                n.entries[slot as usize]
                    .as_ref()
                    .is_some_and(|e| e.tcp.reopened_by_syn())
            })
        {
            // A new connection reusing the 4-tuple of one that has closed (both FINs, or an
            // RST): the old session ends now and the SYN starts a new one, as for load-shared
            // sessions (`lookup.rs` `inbound`). Kept on the old entry, the new connection would
            // end with the old one's close grace.
            self.napt_end(slot);
            let started = self.napt_start(now, ip, l4, b, out);
            debug_assert!(started, "a NAPT key's SYN starts a NAPT session");
            return;
        }
        out.flow = flow;
        if self.forwards_with_ttl(flow) && ip.ttl <= 1 {
            out.verdict = Verdict::Drop(DropReason::TtlExceeded);
            return;
        }
        let napt = self.napt.as_mut().expect("a NAPT session without NAPT");
        let e = napt.entries[slot as usize]
            .as_mut()
            .expect("NAPT flow points at a live entry");
        let target = if flow == Flow::Outbound {
            e.translated
        } else {
            reply_key(&e.key, e.key.dst)
        };
        e.last = now;
        let number = e.number;
        if let Some(seg) = Segment::of(&ip, &l4, b)
            && e.closed.is_none()
        {
            let dir = usize::from(flow == Flow::Inbound);
            let before = e.tcp.state;
            if let Some(reason) = e.tcp.on_segment(dir, seg) {
                e.closed = Some((now, reason));
            }
            // Closed, or a state whose timeout may be shorter: the deadline may have moved
            // earlier than the timer waiting for it (as `Engine::arm_close`).
            if e.closed.is_some() || e.tcp.state != before {
                let due = e.deadline(&self.timeouts);
                napt.timers.push((due, number, slot));
                napt.compact_timers_if_stale(&self.timeouts);
            }
        }
        if ip.more_fragments {
            // A first fragment: its datagram's later fragments get the same addresses
            // (RFC 3022 §4.1), keyed by the datagram as it arrived.
            let key = FragmentKey::arrived(out.before.src, out.before.dst, &ip);
            self.frags
                .insert(now, key, FragmentFate::Napt { slot, number, flow });
        }
        let mut ip = ip;
        self.rewrite_forwarded(flow, &mut ip, &l4, b, &target, out);
        mark_translated(out, &ip, l4_checksum(&ip, b));
        out.after.sport = target.sport;
        out.after.dport = target.dport;
    }

    /// The source and destination a later fragment gets when its first fragment was
    /// translated for NAPT session `number` in `slot` on `flow`; `None` when that session has
    /// ended since.
    pub(crate) fn napt_fragment_addresses(
        &self,
        slot: u32,
        number: u64,
        flow: Flow,
    ) -> Option<([u8; 4], [u8; 4])> {
        let napt = self.napt.as_ref()?;
        let e = napt.entries.get(slot as usize)?.as_ref()?;
        (e.number == number).then_some(match flow {
            Flow::Outbound => (e.translated.src, e.translated.dst),
            _ => (e.key.dst, e.key.src),
        })
    }

    /// A packet of NAPT session `slot` (a later fragment) was forwarded at `now`.
    pub(crate) fn napt_touch(&mut self, slot: u32, now: Timestamp) {
        if let Some(Some(e)) = self
            .napt
            .as_mut()
            .and_then(|n| n.entries.get_mut(slot as usize))
        {
            e.last = now;
        }
    }

    /// Whether a fragmented datagram is NAPT's (§3.2): an inside host's toward the outside, or
    /// one to the router's outside address (a reply).
    pub(crate) fn napt_fragment_related(&self, ip: &Ipv4) -> bool {
        self.napt
            .as_ref()
            .is_some_and(|n| ip.dst == n.address || n.is_inside(ip.src) && !n.is_inside(ip.dst))
    }

    /// How an ICMP error whose quoted datagram, reversed, is `reversed` is translated when it
    /// belongs to a NAPT session (RFC 3022 §4.3): from outside, quoting router:port → outside
    /// host, it goes to the inside host quoting what that host sent; from inside, quoting the
    /// outside host's reply, it goes out quoting that reply as the outside host sent it.
    pub(crate) fn napt_icmp_error_view(
        &self,
        reversed: &Tuple,
    ) -> Option<super::lookup::IcmpErrorView> {
        let napt = self.napt.as_ref()?;
        let (slot, flow) = napt.flows.get(reversed, napt.entries.as_slice())?;
        let e = napt.entries[slot as usize].as_ref()?;
        let (quote_to, src, dst) = if flow == Flow::Inbound {
            (e.key, [e.key.dst, e.key.dst], [e.translated.src, e.key.src])
        } else {
            (
                reply_key(&e.translated, e.translated.dst),
                [e.key.src, e.translated.src],
                [e.key.dst, e.key.dst],
            )
        };
        Some(super::lookup::IcmpErrorView {
            flow,
            quote_to,
            src,
            dst,
            session: 0,
            member: None,
        })
    }

    /// Starts a NAPT session for `key` (inside → outside): allocates the TU port.
    /// Never a port that is a load-shared service of the outside address (when it is a VIP,
    /// as in figure 2): the outside host's replies to it would be taken for new inbound
    /// sessions to that service. An ICMP identifier needs no such care: the outside host's
    /// echo replies and its own echo requests to an ICMP service never match each other's
    /// session (`lookup.rs` `process` matches a query and a reply on one side each).
    fn napt_bind(&mut self, now: Timestamp, key: Tuple) -> Option<u32> {
        let due = now.add(self.idle_timeout(key.protocol));
        let pool = PoolKey {
            addr: self.napt.as_ref()?.address,
            peer: key.dst,
            protocol: key.protocol,
        };
        let port = self.allocate_tu_port(pool, key.sport)?;
        let napt = self.napt.as_mut()?;
        let translated = Tuple {
            src: napt.address,
            sport: port,
            ..key
        };
        let reply = reply_key(&translated, translated.dst);
        let number = napt.next;
        napt.next += 1;
        let e = Entry {
            number,
            key,
            translated,
            reply,
            last: now,
            tcp: TcpTrack::default(),
            closed: None,
        };
        let slot = match napt.free.pop() {
            Some(s) => {
                napt.entries[s as usize] = Some(e);
                s
            }
            None => {
                napt.entries.push(Some(e));
                (napt.entries.len() - 1) as u32
            }
        };
        napt.flows
            .insert(key, slot, Flow::Outbound, napt.entries.as_slice());
        napt.flows
            .insert(reply, slot, Flow::Inbound, napt.entries.as_slice());
        napt.timers.push((due, number, slot));
        Some(slot)
    }

    /// Ends NAPT sessions due by `now` (idle timeout or TCP close grace), freeing their ports.
    pub(crate) fn napt_expire(&mut self, now: Timestamp) {
        let Some(napt) = self.napt.as_mut() else {
            return;
        };
        while let Some((due, number, slot)) = napt.timers.peek() {
            if due > now {
                break;
            }
            napt.timers.pop();
            let Some(e) = napt.entries[slot as usize] else {
                continue;
            };
            if e.number != number {
                continue;
            }
            let deadline = e.deadline(&self.timeouts);
            if deadline > now {
                if deadline != due {
                    napt.timers.push((deadline, number, slot));
                }
                continue;
            }
            napt.end(slot, &mut self.ports);
        }
    }

    /// Ends NAPT session `slot` now (see [`Napt::end`]).
    fn napt_end(&mut self, slot: u32) {
        if let Some(napt) = self.napt.as_mut() {
            napt.end(slot, &mut self.ports);
        }
    }
}
