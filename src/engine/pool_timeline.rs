//! Pools that change during a replay (RFC 2391 §3 and §4.1; RSerPool requirements §3–4): a
//! timeline of pool changes applied as capture time passes, interleaved with the timers.
//!
//! Actions: add a member to a virtual server's pool, drain it (no new sessions, bound ones
//! continue to their end), remove it, set its weight or cost, statically remap it to a backup.
//! Bound sessions are never moved (RFC 2391 §2.5: "a session ... stays bound to the same host
//! for the duration of the session"): a removed member's sessions continue to their end like a
//! draining member's, flagged; the removal lists them, and each one's end reports its packets
//! after the removal. A remap affects only new sessions. Relative times count from the
//! capture's first packet; entries at the same instant apply in configuration order.

use super::Engine;
use super::config::{TimelineAction, TimelineAt, TimelineEntry};
use super::event::PoolEventKind;
use super::server_pool::Admin;
use crate::time::Timestamp;

/// The timeline, resolved to capture timestamps at the first packet.
#[derive(Default)]
pub(crate) struct Timeline {
    entries: Vec<TimelineEntry>,
    /// (when, configuration index), sorted; filled at the first packet.
    order: Vec<(Timestamp, usize)>,
    next: usize,
    resolved: bool,
}

impl Timeline {
    pub fn new(entries: Vec<TimelineEntry>) -> Timeline {
        Timeline {
            entries,
            ..Timeline::default()
        }
    }

    /// Resolves relative times against the capture's first timestamp.
    pub fn resolve(&mut self, first: Timestamp) {
        if self.resolved {
            return;
        }
        self.resolved = true;
        self.order = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let at = match e.at {
                    TimelineAt::Absolute(t) => t,
                    TimelineAt::Relative(d) => first.add(d),
                };
                (at, i)
            })
            .collect();
        self.order.sort_unstable();
    }

    /// The next entry due at or before `now`.
    fn pop_due(&mut self, now: Timestamp) -> Option<(Timestamp, TimelineEntry)> {
        let &(at, i) = self.order.get(self.next)?;
        if at > now {
            return None;
        }
        self.next += 1;
        Some((at, self.entries[i]))
    }
}

impl Engine {
    /// Applies every timeline entry due at or before `now`, each after the timers due before it.
    pub(crate) fn apply_timeline(&mut self, now: Timestamp) {
        while let Some((at, entry)) = self.timeline.pop_due(now) {
            self.run_timers(at);
            self.apply(at, entry);
        }
    }

    fn apply(&mut self, at: Timestamp, e: TimelineEntry) {
        let m = self.pool.intern(e.member);
        match e.action {
            TimelineAction::Add { virtual_server } => {
                if let Some(v) = self.vss.list.get_mut(virtual_server) {
                    v.join(m);
                }
                self.pool.member_mut(m).admin = Admin::Active;
                self.pool_event(at, m, PoolEventKind::Added { virtual_server }, Vec::new());
            }
            TimelineAction::Drain => {
                self.leave_pools(m, Admin::Draining);
                let bound = self.bound_to(m, false);
                let none = bound.is_empty();
                self.pool_event(at, m, PoolEventKind::Draining, bound);
                if none {
                    self.pool_event(at, m, PoolEventKind::Drained, Vec::new());
                }
            }
            TimelineAction::Remove => {
                self.leave_pools(m, Admin::Removed);
                let bound = self.bound_to(m, true);
                self.pool_event(at, m, PoolEventKind::Removed, bound);
            }
            TimelineAction::Weight(to) => {
                let from = std::mem::replace(&mut self.pool.member_mut(m).weight, to);
                self.pool_event(at, m, PoolEventKind::Weight { from, to }, Vec::new());
            }
            TimelineAction::Cost(to) => {
                let from = std::mem::replace(&mut self.pool.member_mut(m).cost, to);
                self.pool_event(at, m, PoolEventKind::Cost { from, to }, Vec::new());
            }
            TimelineAction::Remap { backup } => {
                // A backup that is no member yet takes sessions only through the remap; one
                // that is already a member somewhere keeps its state, and is a candidate of its
                // own only in the pools it is a member of.
                let known = self.pool.find(backup.octets()).is_some();
                let b = self.pool.intern(backup);
                if !known {
                    self.pool.member_mut(b).admin = Admin::Backup;
                }
                // The backup's replies are recognised on every virtual server of `m`, and
                // those of the backups a static mapping gives it (the session may go on there).
                let backup_addr = backup.octets();
                for v in &mut self.vss.list {
                    if v.members.contains(&m) {
                        v.add_backup(b, None);
                        self.statics.register_backups(v, backup_addr);
                    }
                }
                self.pool.member_mut(m).remap = Some(b);
                self.pool_event(at, m, PoolEventKind::Remapped { backup }, Vec::new());
            }
        }
    }

    /// Takes member `m` out of every pool (drain, remove): the timeline's `add` brings it back
    /// into the one pool it names.
    fn leave_pools(&mut self, m: usize, admin: Admin) {
        self.pool.member_mut(m).admin = admin;
        for v in &mut self.vss.list {
            v.leave(m);
        }
    }

    /// Session numbers bound to member `m` now, in order; `flag` marks them member-removed.
    fn bound_to(&mut self, m: usize, flag: bool) -> Vec<u64> {
        let mut out = Vec::new();
        for s in self.slots.iter_mut().flatten() {
            if s.member == m {
                out.push(s.number);
                if flag {
                    s.member_removed = true;
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// A session of member `m` was unbound: report the end of a removed member's session, and a
    /// draining member's last one.
    pub(crate) fn timeline_unbound(
        &mut self,
        at: Timestamp,
        m: usize,
        number: u64,
        removed: Option<[u64; 2]>,
    ) {
        if let Some(packets_after) = removed {
            self.pool_event(
                at,
                m,
                PoolEventKind::RemovedSessionEnded {
                    session: number,
                    packets_after,
                },
                vec![number],
            );
        }
        let member = self.pool.member(m);
        if member.admin == Admin::Draining && member.bound == 0 {
            self.pool_event(at, m, PoolEventKind::Drained, Vec::new());
        }
    }
}
