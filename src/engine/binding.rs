//! Session binding (RFC 2391 §4.1): "the phase in which an incoming session is associated with
//! the address of a host in server pool", chosen by the virtual server's load-share algorithm
//! (§5). A TCP session starts only with a SYN without ACK (§2.3); any other session starts with
//! its first packet.

use super::decision::{AffinityBreak, AffinityOutcome, Decision};
use super::event::{DropReason, EndReason, Event, Flow, Tuple};
use super::load_share::{Candidate, Request};
use super::server_pool::{Admin, Health};
use super::session::Session;
use super::static_mapping::Target;
use super::tu_port::PoolKey;
use super::{Engine, Mode, View};
use crate::time::Timestamp;
use crate::wire::proto;
use std::cmp::Reverse;

/// The key a session's outbound packets arrive with: from the member (router view) or the VIP
/// (client-side view) back to the client, ports swapped. ICMP queries keep their identifier.
pub(crate) fn reply_key(key: &Tuple, from: [u8; 4]) -> Tuple {
    match key.protocol {
        proto::TCP | proto::UDP => Tuple {
            protocol: key.protocol,
            src: from,
            sport: key.dport,
            dst: key.src,
            dport: key.sport,
        },
        proto::ICMP => Tuple {
            protocol: key.protocol,
            src: from,
            sport: key.sport,
            dst: key.src,
            dport: 0,
        },
        _ => Tuple {
            protocol: key.protocol,
            src: from,
            sport: 0,
            dst: key.src,
            dport: 0,
        },
    }
}

/// The key the outbound packets of a session with this key and translation arrive with: from
/// the member to the translated source (router view: the client, or in LS-NAPT the router's
/// address and port), or from the VIP to the client (client-side view).
pub fn session_reply_key(key: &Tuple, translated: &Tuple, view: View) -> Tuple {
    match view {
        View::Router => reply_key(translated, translated.dst),
        View::ClientSide => reply_key(key, key.dst),
    }
}

impl Engine {
    /// Binds a new session for `key` (client → VIP) on virtual server `vs`. Returns its slot.
    pub(crate) fn bind(
        &mut self,
        now: Timestamp,
        vs: usize,
        key: Tuple,
    ) -> Result<u32, DropReason> {
        let full = self.max_sessions.is_some_and(|max| self.live >= max);
        if self.live >= super::flow_table::MAX_SLOTS {
            // The flow table addresses 2^30 slots: far beyond memory, but never wrapped.
            return Err(DropReason::TableFull);
        }
        if full {
            // RFC 2391 §2.4: a full table retires its longest-idle session "when it becomes
            // necessary": not for a session no member would take. Then the algorithm sees the
            // table as it will be (least-load counts the retired session out).
            if !self.any_member_takes(vs, &key) {
                return Err(DropReason::NoMemberAvailable);
            }
            if !self.retire_longest_idle() {
                return Err(DropReason::TableFull);
            }
        }
        let (target, decision, probe) = self.choose(now, vs, key)?;
        self.bind_to(now, vs, key, target, decision, probe, Some(key.sport))
    }

    /// Binds a new session for `key` on virtual server `vs` to `target`, as `decision` chose
    /// it (`probe`: a dead-host probe): its translation (with `napt_port`, LS-NAPT's source
    /// translation, §3.3, keeping that TU port when it is free), its keys in the flow table,
    /// its timer. Returns its slot.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn bind_to(
        &mut self,
        now: Timestamp,
        vs: usize,
        key: Tuple,
        target: Target,
        decision: Decision,
        probe: bool,
        napt_port: Option<u16>,
    ) -> Result<u32, DropReason> {
        let member = target.member;
        let chosen = decision.chosen;
        let mut translated = Tuple {
            dst: target.addr,
            dport: target.port,
            ..key
        };
        // §3.3 LS-NAPT: the client's address and TU port (ICMP: query identifier) become the
        // router's address and a TU port it allocates for this member.
        let napt = napt_port.is_some()
            && self.mode == Mode::LsNapt
            && matches!(key.protocol, proto::TCP | proto::UDP | proto::ICMP);
        if napt {
            let addr = self.napt_source.unwrap_or(key.dst);
            let pool = PoolKey {
                addr,
                peer: target.addr,
                protocol: key.protocol,
            };
            // Never a load-shared service port of that address, nor one whose replies' key
            // another session holds (a member that is also a client of the VIP).
            let vss = &self.vss;
            let (flows, slots) = (&self.flows, self.slots.as_slice());
            let port = self
                .ports
                .allocate_avoiding(pool, napt_port.unwrap_or(key.sport), |p| {
                    let t = Tuple {
                        src: addr,
                        sport: p,
                        ..translated
                    };
                    vss.is_tu_service(addr, key.protocol, p)
                        || flows
                            .get(&session_reply_key(&key, &t, vss.view), slots)
                            .is_some()
                })
                .ok_or(DropReason::NaptPortsExhausted)?;
            translated.src = addr;
            translated.sport = port;
        }

        let reply = session_reply_key(&key, &translated, self.vss.view);
        // In the client-side view the replies come from the VIP, so the flow table keys them
        // as the capture shows them; the key they leave the member with must be this
        // session's alone too (one client port to two VIPs sharing a member and port), as in
        // the router view, where it is the flow table's reply key.
        let member_side = (self.vss.view == View::ClientSide && !napt)
            .then(|| session_reply_key(&key, &translated, View::Router));
        if member_side.is_some_and(|m| self.member_side_replies.contains(&m)) {
            return Err(DropReason::ReplyKeyInUse);
        }
        let number = self.next_number;
        self.next_number += 1;
        let session = Session {
            number,
            vs: vs as u32,
            member,
            chosen,
            key,
            translated,
            reply_key: reply,
            napt,
            alg: if key.protocol == proto::TCP && self.ftp.is_control_port(key.dport) {
                super::session::ALG_CONTROL
            } else {
                0
            },
            first: now,
            last: now,
            first_reply: None,
            packets: [0; 2],
            bytes: [0; 2],
            checksum_faults: 0,
            history: Default::default(),
            tcp: Default::default(),
            closed: None,
            answered_elsewhere: None,
            member_removed: false,
            after_removal: [0; 2],
        };
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        // The replies' key must be this session's alone: in LSNAT mode (no source
        // translation) a client port that talks to two VIPs whose sessions land on the same
        // member and port would have one reply key for both (or, with a VIP as a client, a
        // reply key equal to another session's key), and the router could not tell whose
        // packets it forwards. The new session is refused; the bound one keeps its packets.
        // (The insert checks it: nothing more per session.)
        let slots = self.slots.as_slice();
        let refused = match self.flows.insert_new(reply, slot, Flow::Outbound, slots) {
            Err(_) => true,
            // The session's own key taken as another session's reply key (a member pinging a
            // VIP with the identifier of a session it answers): refused too, reply key undone.
            Ok(()) => match self.flows.insert_new(key, slot, Flow::Inbound, slots) {
                Err(_) => {
                    self.flows.remove(&reply, slot, Flow::Outbound);
                    true
                }
                Ok(()) => false,
            },
        };
        if refused {
            self.free.push(slot);
            self.next_number -= 1;
            if napt {
                self.ports.release_translated(&translated);
            }
            return Err(DropReason::ReplyKeyInUse);
        }
        if let Some(m) = member_side {
            self.member_side_replies.insert(m);
        }
        let deadline = now.add(self.idle_timeout(key.protocol));
        self.timers.push((deadline, number, slot));
        if self.max_sessions.is_some() {
            self.idle.push(Reverse((Retire::Idle, now, number, slot)));
        }
        self.slots[slot as usize] = Some(session);
        self.live += 1;
        self.compact_retirement_if_stale();
        self.pool
            .bind(member, self.vss.list[vs].config.session_weight);
        if let Some(cfg) = self.vss.list[vs].config.affinity {
            self.affinity
                .remember(vs, &cfg, key.src, chosen as usize, now);
        }
        self.stats.sessions_bound += 1;
        self.stats.peak_sessions = self.stats.peak_sessions.max(self.live as u64);
        self.dead_host_bound(now, member, number, slot, probe);
        self.events.push_back(Event::Bound {
            number,
            at: now,
            virtual_server: vs,
            member,
            member_addr: self.pool.member(member).addr.octets(),
            key,
            decision,
        });
        self.compact_timers_if_stale();
        Ok(slot)
    }

    /// Where a new session `key` that the algorithm gives pool member `m` really goes (RFC 2391
    /// §3, §4.1): to `m`, or to the backup a pool-timeline remap sends `m`'s new sessions to,
    /// then to the backup a static mapping names for that member (and the key's port).
    pub(crate) fn target_of(&self, m: usize, key: &Tuple) -> Target {
        let r = self.pool.member(m).remap.unwrap_or(m);
        self.statics.apply(
            Target {
                member: r,
                addr: self.pool.member(r).addr.octets(),
                port: key.dport,
            },
            key.dport,
            matches!(key.protocol, proto::TCP | proto::UDP),
        )
    }

    /// Pool member `m` of virtual server `vs` as a candidate for a new session: its identity
    /// (what round-robin turns and hashing tables follow), with the figures of `target`, the
    /// member that would take the session (`m` itself, or its backup), traffic window slid to
    /// `now`.
    fn candidate(&mut self, m: usize, rank: usize, target: usize, now: Timestamp) -> Candidate {
        self.pool.member_mut(target).traffic.advance(now);
        self.candidate_as_is(m, rank, target)
    }

    /// Member `m` (the `rank`th of its virtual server) as a candidate, with the figures of
    /// `target`, its traffic window as last advanced.
    fn candidate_as_is(&self, m: usize, rank: usize, target: usize) -> Candidate {
        let addr = self.pool.member(m).addr.octets();
        let p = self.pool.member(target);
        let (traffic_packets, traffic_bytes) = p.traffic.totals();
        Candidate {
            member: m,
            rank,
            addr,
            bound: p.bound,
            weighted_load: p.weighted_load,
            traffic_packets,
            traffic_bytes,
            response_ns: p.response_ns,
            capacity: p.capacity,
            weight: p.weight,
            cost: p.cost,
        }
    }

    /// Chooses where a new session `key` of virtual server `vs` goes, in this order:
    ///
    /// 1. Client affinity (when configured, RSerPool requirements §5): back to the member the
    ///    client used last, if a member of the pool still leads there.
    /// 2. A dead-host probe (RFC 2391 §6), when a member's probe is due; the algorithm is not
    ///    asked and its state does not move.
    /// 3. The virtual server's load-share algorithm (§5) over the members in the pool whose
    ///    session would go to a member that takes new sessions (alive, not draining or
    ///    removed). A member remapped or statically mapped to a backup is offered with the
    ///    backup's figures: the backup is the server that would carry the session. Members
    ///    whose access cost is infinite (§5.2: unreachable) are never candidates; they are
    ///    listed in the decision with an infinite figure.
    ///
    /// Returns where the session goes, the decision (which names the pool member chosen) and
    /// whether it is a probe.
    fn choose(
        &mut self,
        now: Timestamp,
        vs: usize,
        key: Tuple,
    ) -> Result<(Target, Decision, bool), DropReason> {
        let algorithm = self.vss.list[vs].config.algorithm;
        let mut decision = Decision::new(algorithm);
        self.candidates.clear();
        self.targets.clear();
        let mut unreachable = 0usize;
        for i in 0..self.vss.list[vs].members.len() {
            let Some(t) = self.offered(vs, i, &key) else {
                continue;
            };
            let c = self.candidate(self.vss.list[vs].members[i], i, t.member, now);
            if c.cost.is_finite() {
                self.candidates.push(c);
                self.targets.push(t);
            } else {
                unreachable += 1;
            }
        }
        if let Some(cfg) = self.vss.list[vs].config.affinity {
            decision.affinity = match self.affinity.lookup(vs, &cfg, key.src, now) {
                None => AffinityOutcome::New,
                Some((_, true)) => AffinityOutcome::Broken(AffinityBreak::Timeout),
                Some((r, false)) => {
                    if let Some(k) = self.candidates.iter().position(|c| c.member == r.member) {
                        let c = self.candidates[k];
                        decision.chosen = c.member as u32;
                        decision.chosen_addr = c.addr;
                        decision.affinity = AffinityOutcome::Kept;
                        decision.push(c.member, c.addr, f64::NAN, c.bound);
                        return Ok((self.targets[k], decision, false));
                    }
                    AffinityOutcome::Broken(self.why_unavailable(vs, r.member, &key))
                }
            };
        }
        if let Some((m, t)) = self.probe_target(vs, &key) {
            let p = self.pool.member(m);
            decision.chosen = m as u32;
            decision.chosen_addr = p.addr.octets();
            decision.push(
                m,
                p.addr.octets(),
                f64::NAN,
                self.pool.member(t.member).bound,
            );
            return Ok((t, decision, true));
        }
        let n = self.candidates.len();
        let pick = if n == 0 {
            None
        } else {
            self.scratch.reset(n);
            let request = Request { key, now };
            self.vss.list[vs]
                .load_share
                .select(&request, &self.candidates, &mut self.scratch)
                .filter(|&p| p < n)
        };
        for (c, &f) in self.candidates.iter().zip(&self.scratch.figures) {
            decision.push(c.member, c.addr, f, c.bound);
        }
        if unreachable > 0 {
            for i in 0..self.vss.list[vs].members.len() {
                let Some(t) = self.offered(vs, i, &key) else {
                    continue;
                };
                let p = self.pool.member(t.member);
                if !p.cost.is_finite() {
                    let m = self.vss.list[vs].members[i];
                    let addr = self.pool.member(m).addr.octets();
                    decision.push(m, addr, f64::INFINITY, p.bound);
                }
            }
        }
        decision.hash = self.scratch.hash;
        let Some(pick) = pick else {
            return Err(DropReason::NoMemberAvailable);
        };
        let c = self.candidates[pick];
        decision.chosen = c.member as u32;
        decision.chosen_addr = c.addr;
        Ok((self.targets[pick], decision, false))
    }

    /// Whether some member would take a new session `key` of virtual server `vs` (a candidate
    /// of the algorithm, or a due dead-host probe), without choosing one: nothing changes.
    fn any_member_takes(&self, vs: usize, key: &Tuple) -> bool {
        let v = &self.vss.list[vs];
        (0..v.members.len()).any(|i| {
            self.offered(vs, i, key).is_some_and(|t| {
                let c = self.candidate_as_is(v.members[i], i, t.member);
                // Client affinity may send the client back to a member the algorithm would
                // not choose.
                c.cost.is_finite() && (v.config.affinity.is_some() || v.load_share.may_choose(&c))
            })
        }) || self.probe_target(vs, key).is_some()
    }

    /// Where a new session `key` goes if the algorithm gives it to the `i`th member of virtual
    /// server `vs`; `None` when that member is not offered: out of the pool, not active, or its
    /// session would go to a member that takes no new session (dead, draining, removed).
    fn offered(&self, vs: usize, i: usize, key: &Tuple) -> Option<Target> {
        self.in_pool_target(vs, i, key)
            .filter(|t| self.pool.takes_new(t.member))
    }

    /// Where a new session `key` given to the `i`th member of virtual server `vs` would go,
    /// when that member is in the pool and active (whether that server takes it is another
    /// question: [`Engine::offered`], `probe_target`).
    pub(crate) fn in_pool_target(&self, vs: usize, i: usize, key: &Tuple) -> Option<Target> {
        let v = &self.vss.list[vs];
        let m = v.members[i];
        (v.in_pool[i] && self.pool.member(m).admin == Admin::Active).then(|| self.target_of(m, key))
    }

    /// Why member `m` of virtual server `vs`, to which client affinity would send the client
    /// back, is not offered for its new session `key`: the member's own state, else that of
    /// the server its session would go to (a remap or static-mapping backup).
    fn why_unavailable(&self, vs: usize, m: usize, key: &Tuple) -> AffinityBreak {
        let v = &self.vss.list[vs];
        let in_pool = v
            .members
            .iter()
            .position(|&x| x == m)
            .is_some_and(|i| v.in_pool[i]);
        let of = |p: &super::server_pool::Member| match p.admin {
            Admin::Draining => Some(AffinityBreak::Draining),
            Admin::Removed => Some(AffinityBreak::Removed),
            _ if p.health != Health::Alive => Some(AffinityBreak::Dead),
            _ if !p.cost.is_finite() => Some(AffinityBreak::Unreachable),
            _ => None,
        };
        let own = of(self.pool.member(m));
        if let Some(why) = own {
            return why;
        }
        if !in_pool {
            return AffinityBreak::Removed;
        }
        of(self.pool.member(self.target_of(m, key).member)).unwrap_or(AffinityBreak::Removed)
    }

    /// RFC 2391 §2.4: "retire the longest idle session when it becomes necessary". A TCP
    /// session whose close was seen (both FINs acknowledged, or an RST) "can be safely assumed
    /// to have been terminated" (§2.4) and is only kept for its grace period, so such a session
    /// goes first, the earliest closed, as Linux's conntrack drops connections in closing
    /// states first when its table is full (`early_drop`, `tcp_can_early_drop`). It ends as it
    /// closed (`fin` or `rst`), its grace cut short; only a live session ends `retired`.
    pub(crate) fn retire_longest_idle(&mut self) -> bool {
        while let Some(Reverse((class, seen, number, slot))) = self.idle.pop() {
            let Some(s) = self.slots[slot as usize].as_ref() else {
                continue;
            };
            if s.number != number {
                continue;
            }
            let now = self.now;
            if let Some((_, reason)) = s.closed {
                self.stats.grace_cut_short += 1;
                self.unbind(slot, reason, now);
                return true;
            }
            if class == Retire::Idle && s.last > seen {
                // Seen since this entry was made: requeue with its real idle start.
                let last = s.last;
                self.idle.push(Reverse((Retire::Idle, last, number, slot)));
                continue;
            }
            self.unbind(slot, EndReason::Retired, now);
            return true;
        }
        false
    }

    /// A session's close was seen at `now` (§2.4): with a table limit, it is the first to
    /// retire from now on ([`Engine::retire_longest_idle`]).
    pub(crate) fn closed_for_retirement(&mut self, slot: u32, number: u64, now: Timestamp) {
        if self.max_sessions.is_some() {
            self.idle.push(Reverse((Retire::Closed, now, number, slot)));
            self.compact_retirement_if_stale();
        }
    }

    /// Entries of sessions that ended some other way stay in the retirement heap until
    /// popped: dropped once they outnumber the live sessions, with the idle entry of a session
    /// that also has a closed one, so memory follows live sessions (amortised: each compaction
    /// leaves at most one entry per live session, so at least halves the heap).
    fn compact_retirement_if_stale(&mut self) {
        if self.idle.len() <= 2 * self.live + 64 {
            return;
        }
        let slots = &self.slots;
        self.idle.retain(|Reverse((class, _, number, slot))| {
            slots[*slot as usize].as_ref().is_some_and(|s| {
                s.number == *number && (s.closed.is_some() == (*class == Retire::Closed))
            })
        });
    }
}

/// The two classes of the retirement heap, in the order they retire: a session closed and in
/// its grace period before any live one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Retire {
    Closed,
    Idle,
}
