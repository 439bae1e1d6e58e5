//! Session unbinding (RFC 2391 §4.3, §2.4): a session ends when a TCP close is seen (both FINs
//! acknowledged, or an RST) plus a short grace period, when it has been idle longer than its
//! protocol's timeout, or when the table is full and it is closed and in its grace period, or
//! else the longest idle (`binding::Engine::retire_longest_idle`).
//!
//! Timers are lazy: one heap entry per session, pushed at binding with `last seen + timeout`.
//! Packets only move `last seen`; when an entry comes due, the session's real deadline is
//! recomputed and the entry is either fired or pushed again. Only the few packets that change a
//! TCP session's state (handshake done, first FIN, close, RST) push an entry, since the new
//! state's timeout may be shorter; timers fire in capture-time order, ties broken by session
//! number. Timers due at a packet's own time fire before that packet is handled, so with a
//! zero grace (`tcp_close_grace` or `tcp_rst` of `"0s"`) a session closed by one packet ends
//! before the next packet of the same instant is handled, whatever the session numbers.

use super::Engine;
use super::event::{EndReason, Event, Flow, TcpState};
use super::session::Session;
use crate::time::{Span, Timestamp};
use crate::wire::proto;

impl Engine {
    /// The shortest idle timeout a session of this protocol can have (for TCP, over the
    /// opening, established and closing states): the first timer of a new session is armed with
    /// it, so a lazy timer is never later than the real deadline.
    pub(crate) fn idle_timeout(&self, protocol: u8) -> Span {
        let t = &self.timeouts;
        match protocol {
            proto::TCP => t.tcp.min(t.opening()).min(t.closing()),
            other => t.idle(other, TcpState::default()),
        }
    }

    /// When `s` is due to be unbound, and why (see [`super::config::Timeouts::deadline`]).
    fn deadline(&self, s: &Session) -> (Timestamp, EndReason) {
        self.timeouts
            .deadline(s.key.protocol, s.tcp.state, s.last, s.closed)
    }

    /// Arms a timer at a session's current deadline: when it closed, or when its TCP state
    /// changed to one with a shorter timeout (the deadline may have moved earlier than the
    /// entry already in the heap).
    pub(crate) fn arm_close(&mut self, slot: u32) {
        let s = self.session(slot);
        let (d, _) = self.deadline(s);
        let number = s.number;
        self.timers.push((d, number, slot));
        self.compact_timers_if_stale();
    }

    /// Keeps the lazy timer heap proportional to the live sessions (ARCHITECTURE.md: memory
    /// grows with live sessions, never with the capture): entries of sessions since unbound,
    /// and superseded entries of live ones (a 24 h TCP entry outlives its session by a day),
    /// are dropped by rebuilding the heap with one entry per live session at its real
    /// deadline, once stale entries outnumber live sessions. Firing times and order are
    /// unchanged: a lazy entry only ever fires a session at its real deadline.
    pub(crate) fn compact_timers_if_stale(&mut self) {
        if self.timers.len() <= 2 * self.live + 4096 {
            return;
        }
        let mut entries = Vec::with_capacity(self.live);
        for (slot, s) in self.slots.iter().enumerate() {
            if let Some(s) = s {
                let (due, _) = self.deadline(s);
                entries.push((due, s.number, slot as u32));
            }
        }
        self.timers.rebuild(entries);
    }

    /// Fires every timer due at or before `now`.
    pub(crate) fn expire(&mut self, now: Timestamp) {
        while let Some((due, number, slot)) = self.timers.peek() {
            if due > now {
                break;
            }
            self.timers.pop();
            let Some(s) = self.slots[slot as usize].as_ref() else {
                continue;
            };
            if s.number != number {
                continue; // a stale entry of a slot since reused
            }
            let (deadline, reason) = self.deadline(s);
            if deadline <= due {
                self.unbind(slot, reason, deadline);
            } else {
                // Seen since: requeued at its real deadline, which may still be due by `now`;
                // it then fires in its turn, so sessions end in the order of their deadlines.
                self.timers.push((deadline, number, slot));
            }
        }
        self.frags.expire(now);
        self.napt_expire(now);
    }

    /// Removes a session and reports it.
    pub(crate) fn unbind(&mut self, slot: u32, reason: EndReason, at: Timestamp) {
        let Some(s) = self.slots[slot as usize].take() else {
            return;
        };
        let elsewhere = s.answered_elsewhere.map(|m| m as usize);
        self.dead_host_session_ended(s.number, s.first, elsewhere, at);
        self.flows.remove(&s.key, slot, Flow::Inbound);
        self.flows.remove(&s.reply_key, slot, Flow::Outbound);
        if !self.member_side_replies.is_empty() {
            let m = super::binding::session_reply_key(&s.key, &s.translated, super::View::Router);
            self.member_side_replies.remove(&m);
        }
        if s.napt {
            // LS-NAPT (RFC 2391 §3.3): the session's TU port is free again.
            self.ports.release_translated(&s.translated);
        }
        self.free.push(slot);
        self.live -= 1;
        let vs = &self.vss.list[s.vs as usize];
        self.pool.unbind(s.member, vs.config.session_weight);
        if let Some(cfg) = vs.config.affinity {
            self.affinity
                .touch(s.vs as usize, &cfg, s.key.src, s.chosen as usize, at);
        }
        let data_of = match s.alg {
            0 => None,
            _ => {
                let d = self.ftp.data_of.get(&s.number).copied();
                let pending = self.ftp.forget(s.number);
                self.ftp_unreserve(pending);
                d
            }
        };
        self.events
            .push_back(Event::Ended(s.record(reason, at, data_of)));
        let removed = s.member_removed.then_some(s.after_removal);
        self.timeline_unbound(at, s.member, s.number, removed);
    }
}
