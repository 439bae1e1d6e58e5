//! Dead host detection (RFC 2391 §6): "track datagrams originating from a member host in
//! response to new session assignments. If no response is detected in a few seconds, declare
//! the server dead and do not assign new sessions to this host. The server can be monitored
//! later again after a long pause (say, in the order of a few minutes) by periodically
//! reassigning new sessions".
//!
//! The replay decides from the capture alone:
//!
//! - An *answer* from a member is a packet from one of its load-shared services that responds
//!   to a new session: the first packet back of a session lsnat bound to it, or (router view) a
//!   TCP SYN-ACK or a UDP/ICMP reply from it that belongs to no lsnat session (the recorded
//!   router gave that session to it, lsnat bound it elsewhere). Its time is the member's
//!   `last_answer`.
//! - Each newly bound session arms one lazy deadline, `bound + answer_within` (one heap entry,
//!   like [`super::unbinding`]'s timers; nothing per packet). An answer at that very instant
//!   still counts. When the deadline has passed the member is declared dead if it has not
//!   answered since the session was bound and no other member
//!   answered the session in its place. The event names the session and lists every session
//!   bound to the member since its last answer.
//! - A session lsnat bound to M but answered by X in the capture is evidence against the
//!   recorded router's choice (it sent the session to X), not against M: it is reported
//!   (`recorded-choice-differs`) and M is not judged on it. A session nobody answered counts
//!   against M only while M answers nothing else: when lsnat's choices differ from the
//!   recorded router's during a real outage, the sessions lsnat gives a healthy member that the
//!   recorded router gave the dead one do not kill the healthy member, because the healthy
//!   member keeps answering its other sessions.
//! - `retry_after` after being declared dead, the member is *probe-due*: the next new session of
//!   any of its virtual servers is assigned to it without consulting the load-share algorithm
//!   (whose state does not move), and no other session goes to it while the probe is out. An
//!   answer from it after the probe was bound declares it alive at once; no answer by the
//!   probe's deadline declares it dead again (and the pause starts again); a probe answered
//!   by another member proves nothing, and the next new session probes again.

use super::Engine;
use super::config::DeadHostConfig;
use super::event::{PoolEvent, PoolEventKind, Tuple};
use super::server_pool::Health;
use super::static_mapping::Target;
use crate::time::Timestamp;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A deadline: (due, kind, session number, slot, member).
type Deadline = Reverse<(Timestamp, u8, u64, u32, u32)>;

/// Kinds of deadline, in the order they fire at the same instant.
const RETRY_DUE: u8 = 0;
const ANSWER_DUE: u8 = 1;

/// Dead host detection state: the lazy deadline heap and, per member, the sessions bound to it
/// since its last answer.
#[derive(Default)]
pub(crate) struct DeadHost {
    pub cfg: DeadHostConfig,
    timers: BinaryHeap<Deadline>,
    /// Per member: sessions bound since its last answer (cleared, capacity kept, on answer).
    since_answer: Vec<Vec<u64>>,
    /// Sessions that ended before their answer deadline came, answered in the capture by
    /// another member (session number → that member): the deadline still finds the evidence.
    /// An entry lives at most `answer_within`.
    ended_answered_elsewhere: FxHashMap<u64, usize>,
}

impl DeadHost {
    pub fn new(cfg: DeadHostConfig) -> DeadHost {
        DeadHost {
            cfg,
            ..DeadHost::default()
        }
    }

    fn since_answer(&mut self, member: usize) -> &mut Vec<u64> {
        if self.since_answer.len() <= member {
            self.since_answer.resize_with(member + 1, Vec::new);
        }
        &mut self.since_answer[member]
    }
}

impl Engine {
    /// The dead-host probe the next new session `key` of virtual server `vs` must be, if one is
    /// due: the first member in the pool whose session would go to a member due for its probe
    /// (itself, or the backup it is remapped or statically mapped to). Returns that pool member
    /// and where the session goes.
    pub(crate) fn probe_target(&self, vs: usize, key: &Tuple) -> Option<(usize, Target)> {
        if !self.dead_host.cfg.enabled {
            return None;
        }
        let v = &self.vss.list[vs];
        (0..v.members.len()).find_map(|i| {
            let t = self.in_pool_target(vs, i, key)?;
            // An unreachable server (cost "inf", §5.2) gets no session, not even a probe.
            let due = self.pool.probe_due(t.member) && self.pool.member(t.member).cost.is_finite();
            due.then_some((v.members[i], t))
        })
    }

    /// A session was bound to `member` (a probe when `probe`): arm its answer deadline.
    pub(crate) fn dead_host_bound(
        &mut self,
        now: Timestamp,
        member: usize,
        number: u64,
        slot: u32,
        probe: bool,
    ) {
        if !self.dead_host.cfg.enabled {
            return;
        }
        self.dead_host.since_answer(member).push(number);
        let due = now.add(self.dead_host.cfg.answer_within);
        self.dead_host
            .timers
            .push(Reverse((due, ANSWER_DUE, number, slot, member as u32)));
        if probe {
            self.pool.member_mut(member).health = Health::Probing {
                session: number,
                since: now,
            };
            self.pool_event(
                now,
                member,
                PoolEventKind::Probe { session: number },
                vec![number],
            );
        }
    }

    /// `member` answered a new session at `now` (`session`: lsnat's session number, 0 when the
    /// answer belongs to no lsnat session).
    pub(crate) fn dead_host_answer(&mut self, now: Timestamp, member: usize, session: u64) {
        if !self.dead_host.cfg.enabled {
            return;
        }
        self.dead_host.since_answer(member).clear();
        let m = self.pool.member_mut(member);
        m.last_answer = Some(now);
        if let Health::Probing { session: probe, .. } = m.health {
            m.health = Health::Alive;
            self.pool_event(
                now,
                member,
                PoolEventKind::Alive {
                    probe,
                    answered: session,
                },
                // The probe, and the session whose answer revived it when that is another.
                match session {
                    0 => vec![probe],
                    s if s == probe => vec![probe],
                    s => vec![probe.min(s), probe.max(s)],
                },
            );
        }
    }

    /// A reply from `member` (router view) that belongs to no session: an answer from it, and,
    /// when lsnat bound that session to another member, evidence that the recorded router chose
    /// differently. `reply` is the packet's addressing (member → client).
    pub(crate) fn dead_host_stray_reply(&mut self, now: Timestamp, member: usize, reply: Tuple) {
        if !self.dead_host.cfg.enabled {
            return;
        }
        self.dead_host_answer(now, member, 0);
        for vs in 0..self.vss.list.len() {
            let v = &self.vss.list[vs];
            // The session's key has the service port, also when a one-port backup answers
            // from a port of its own.
            let Some(service) = v.service_port_of(member, reply.protocol, reply.sport) else {
                continue;
            };
            let key = Tuple {
                protocol: reply.protocol,
                src: reply.dst,
                sport: if reply.protocol == crate::wire::proto::ICMP {
                    reply.sport
                } else {
                    reply.dport
                },
                dst: v.vip,
                dport: if reply.protocol == crate::wire::proto::ICMP {
                    0
                } else {
                    service
                },
            };
            let Some((slot, super::Flow::Inbound)) = self.flows.get(&key, self.slots.as_slice())
            else {
                continue;
            };
            let s = self.session_mut(slot);
            if s.member == member || s.answered_elsewhere.is_some() {
                continue;
            }
            s.answered_elsewhere = Some(member as u32);
            let (bound_to, session) = (s.member, s.number);
            let answered_by = self.pool.member(member).addr;
            self.pool_event(
                now,
                bound_to,
                PoolEventKind::RecordedChoiceDiffers {
                    session,
                    answered_by,
                },
                vec![session],
            );
            return;
        }
    }

    /// The instant of the next dead-host deadline due by `now`, if any: a retry pause over at
    /// or before `now`, an answer deadline passed before `now`. An answer *within*
    /// `answer_within` counts up to and including the deadline's instant, so a deadline at
    /// `now` waits for the packet at `now`, which may be the answer. (`Engine::run_timers`
    /// interleaves these with the session timers.)
    pub(crate) fn dead_host_next(&self, now: Timestamp) -> Option<Timestamp> {
        let &Reverse((due, kind, ..)) = self.dead_host.timers.peek()?;
        (due < now || (due == now && kind != ANSWER_DUE)).then_some(due)
    }

    /// Fires the dead-host deadlines due at instant `at` (which
    /// [`Engine::dead_host_next`] gave for `now`).
    pub(crate) fn dead_host_expire_at(&mut self, at: Timestamp, now: Timestamp) {
        while let Some(&Reverse((due, kind, number, slot, member))) = self.dead_host.timers.peek() {
            if due > at || (due == now && kind == ANSWER_DUE) {
                break;
            }
            self.dead_host.timers.pop();
            let member = member as usize;
            if kind == RETRY_DUE {
                if let Health::Dead { since } = self.pool.member(member).health
                    && since.add(self.dead_host.cfg.retry_after) == due
                {
                    self.pool.member_mut(member).health = Health::ProbeDue { since: due };
                    self.pool_event(due, member, PoolEventKind::ProbeDue, Vec::new());
                }
                continue;
            }
            self.answer_due(due, number, slot, member);
        }
    }

    /// Session `number` ends at `at`, having been answered by member `other` in the capture:
    /// kept for its answer deadline if that is still to come (at its instant or later).
    pub(crate) fn dead_host_session_ended(
        &mut self,
        number: u64,
        first: Timestamp,
        other: Option<usize>,
        at: Timestamp,
    ) {
        let Some(other) = other else {
            return;
        };
        // Still to come: a deadline after `at`, or at `at` itself when that is now (an answer
        // deadline at the current instant waits for the packet; one at an earlier instant
        // fired before the sessions ending then).
        let deadline = first.add(self.dead_host.cfg.answer_within);
        if self.dead_host.cfg.enabled && (at < deadline || (at == deadline && deadline == self.now))
        {
            self.dead_host
                .ended_answered_elsewhere
                .insert(number, other);
        }
    }

    /// Evidence kept for sessions that ended before their answer deadline.
    #[cfg(test)]
    pub(crate) fn ended_evidence_kept(&self) -> usize {
        self.dead_host.ended_answered_elsewhere.len()
    }

    fn answer_due(&mut self, due: Timestamp, number: u64, slot: u32, member: usize) {
        let ended_elsewhere = self.dead_host.ended_answered_elsewhere.remove(&number);
        let bound_at = Timestamp(due.0.saturating_sub(self.dead_host.cfg.answer_within.0));
        let m = self.pool.member(member);
        let probe = match m.health {
            Health::Alive => false,
            Health::Probing { session, .. } if session == number => true,
            _ => return, // already dead, or an older session of a member being probed
        };
        let last_answer = m.last_answer;
        if last_answer.is_some_and(|a| a >= bound_at) {
            return; // answered (this session or another new one) since it was bound
        }
        let elsewhere = self.slots[slot as usize]
            .as_ref()
            .filter(|s| s.number == number)
            .and_then(|s| s.answered_elsewhere)
            .map(|m| m as usize)
            .or(ended_elsewhere);
        if let Some(other) = elsewhere {
            if probe {
                self.pool.member_mut(member).health = Health::ProbeDue { since: due };
                let answered_by = self.pool.member(other).addr;
                self.pool_event(
                    due,
                    member,
                    PoolEventKind::ProbeInconclusive {
                        probe: number,
                        answered_by,
                    },
                    vec![number],
                );
            }
            return;
        }
        self.pool.member_mut(member).health = Health::Dead { since: due };
        let sessions = std::mem::take(self.dead_host.since_answer(member));
        self.pool_event(
            due,
            member,
            PoolEventKind::Dead {
                unanswered: number,
                bound_at,
                last_answer,
                probe,
            },
            sessions,
        );
        let retry = due.add(self.dead_host.cfg.retry_after);
        self.dead_host
            .timers
            .push(Reverse((retry, RETRY_DUE, 0, 0, member as u32)));
    }

    /// Queues a pool event for `member`.
    pub(crate) fn pool_event(
        &mut self,
        at: Timestamp,
        member: usize,
        kind: PoolEventKind,
        sessions: Vec<u64>,
    ) {
        self.pool_events.push_back(PoolEvent {
            at,
            member: self.pool.member(member).addr,
            kind,
            sessions,
        });
    }
}

#[cfg(test)]
#[path = "dead_host_tests.rs"]
mod tests;
