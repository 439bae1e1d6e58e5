//! Session unbinding (RFC 2391 §4.3, §2.4): a session ends when a TCP close is seen (both FINs
//! acknowledged, or an RST) plus a short grace period, when it has been idle longer than its
//! protocol's timeout, or when the table is full and it is the longest idle.
//!
//! Timers are lazy: one heap entry per session, pushed at binding with `last seen + timeout`.
//! Packets only move `last seen`; when an entry comes due, the session's real deadline is
//! recomputed and the entry is either fired or pushed again. A packet therefore never touches
//! the heap, and timers fire in capture-time order, ties broken by session number.

use super::Engine;
use super::event::{EndReason, Event, Flow};
use super::session::Session;
use crate::time::{Span, Timestamp};
use crate::wire::proto;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::VecDeque;

impl Engine {
    /// The idle timeout for a protocol.
    pub(crate) fn idle_timeout(&self, protocol: u8) -> Span {
        match protocol {
            proto::TCP => self.timeouts.tcp,
            proto::UDP => self.timeouts.udp,
            proto::ICMP => self.timeouts.icmp,
            _ => self.timeouts.other,
        }
    }

    /// When `s` is due to be unbound, and why.
    fn deadline(&self, s: &Session) -> (Timestamp, EndReason) {
        match s.closed {
            Some((at, reason)) => (at.add(self.timeouts.tcp_close_grace), reason),
            None => (
                s.last.add(self.idle_timeout(s.key.protocol)),
                EndReason::IdleTimeout,
            ),
        }
    }

    /// Arms the close timer of a session that just closed (its deadline moved earlier).
    pub(crate) fn arm_close(&mut self, slot: u32) {
        let s = self.session(slot);
        let (d, _) = self.deadline(s);
        let number = s.number;
        self.timers.push(Reverse((d, number, slot)));
    }

    /// Fires every timer due at or before `now`.
    pub(crate) fn expire(&mut self, now: Timestamp) {
        while let Some(&Reverse((due, number, slot))) = self.timers.peek() {
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
            if deadline <= now {
                self.unbind(slot, reason, deadline);
            } else if deadline != due {
                self.timers.push(Reverse((deadline, number, slot)));
            }
        }
        self.frags.expire(now);
    }

    /// Removes a session and reports it.
    pub(crate) fn unbind(&mut self, slot: u32, reason: EndReason, at: Timestamp) {
        let Some(s) = self.slots[slot as usize].take() else {
            return;
        };
        for k in [s.key, s.reply_key] {
            if self.flows.get(&k).is_some_and(|&(sl, _)| sl == slot) {
                self.flows.remove(&k);
            }
        }
        self.free.push(slot);
        self.live -= 1;
        let vs = &self.vss.list[s.vs];
        self.pool.unbind(s.member, vs.config.session_weight);
        if let Some(cfg) = vs.config.affinity {
            self.affinity.touch(s.vs, &cfg, s.key.src, s.member, at);
        }
        self.events.push_back(Event::Ended(s.record(reason, at)));
    }
}

/// Identifies the fragments of one datagram (RFC 791): source, destination, protocol, id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FragmentKey {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub protocol: u8,
    pub ident: u16,
}

/// The translation a first fragment got, kept for the later fragments of its datagram.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FragmentEntry {
    pub slot: u32,
    pub number: u64,
    pub flow: Flow,
    pub expires: Timestamp,
}

/// First-fragment translations, expiring after a configurable time.
pub(crate) struct FragmentTable {
    timeout: Span,
    map: FxHashMap<FragmentKey, FragmentEntry>,
    order: VecDeque<(Timestamp, FragmentKey)>,
}

impl FragmentTable {
    pub fn new(timeout: Span) -> Self {
        FragmentTable {
            timeout,
            map: FxHashMap::default(),
            order: VecDeque::new(),
        }
    }

    pub fn insert(&mut self, now: Timestamp, key: FragmentKey, slot: u32, number: u64, flow: Flow) {
        let expires = now.add(self.timeout);
        self.map.insert(
            key,
            FragmentEntry {
                slot,
                number,
                flow,
                expires,
            },
        );
        self.order.push_back((expires, key));
    }

    pub fn get(&self, key: &FragmentKey) -> Option<FragmentEntry> {
        self.map.get(key).copied()
    }

    pub fn expire(&mut self, now: Timestamp) {
        while let Some(&(t, key)) = self.order.front() {
            if t > now {
                break;
            }
            self.order.pop_front();
            if self.map.get(&key).is_some_and(|e| e.expires <= now) {
                self.map.remove(&key);
            }
        }
    }
}
