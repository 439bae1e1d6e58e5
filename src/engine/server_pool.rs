//! The server pool (RFC 2391 §3, §5): the members sessions are bound to and the load each
//! carries, which the load-share algorithms read, and whether each may take new sessions: its
//! health as dead host detection sees it (§6, [`super::dead_host`]) and its administrative state
//! as the pool timeline sets it (§3, §4.1, [`super::pool_timeline`]).

use crate::time::Timestamp;

use rustc_hash::FxHashMap;
use std::net::Ipv4Addr;

/// One pool member. A member serving several virtual servers is one member: its load is the
/// sum over all of them.
#[derive(Clone, Debug)]
pub struct Member {
    /// Its address.
    pub addr: Ipv4Addr,
    /// Sessions bound to it now.
    pub bound: u64,
    /// Sessions ever bound to it.
    pub total: u64,
    /// Relative weight for weighted algorithms (default 1).
    pub weight: u32,
    /// Relative cost for cost-aware algorithms (default 1.0).
    pub cost: f64,
    /// Dead host detection's view of it (RFC 2391 §6).
    pub health: Health,
    /// What the pool timeline made of it (RFC 2391 §3, RSerPool §3–4).
    pub admin: Admin,
    /// Static remap: new sessions chosen for this member go to this one (a backup).
    pub remap: Option<usize>,
    /// The last time it answered a newly assigned session (RFC 2391 §6 evidence of life).
    pub last_answer: Option<Timestamp>,
}

/// A member's health (RFC 2391 §6 dead host detection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Health {
    /// Answering: takes new sessions.
    #[default]
    Alive,
    /// Did not answer a newly assigned session in time: no new sessions.
    Dead {
        /// When it was declared dead.
        since: Timestamp,
    },
    /// The retry pause is over: the next new session for one of its virtual servers is its
    /// probe.
    ProbeDue {
        /// When it became due.
        since: Timestamp,
    },
    /// One probe session was assigned to it; no other new session until it is answered.
    Probing {
        /// The probe session's number.
        session: u64,
        /// When the probe was assigned.
        since: Timestamp,
    },
}

/// A member's administrative state (the pool timeline).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Admin {
    /// In the pool.
    #[default]
    Active,
    /// No new sessions; bound sessions continue to their end.
    Draining,
    /// Out of the pool: no new sessions; sessions still bound are not moved (RFC 2391 §2.5)
    /// and continue, flagged.
    Removed,
    /// Only a remap target: takes new sessions only through a remapped member.
    Backup,
}

impl Member {
    fn new(addr: Ipv4Addr) -> Member {
        Member {
            addr,
            bound: 0,
            total: 0,
            weight: 1,
            cost: 1.0,
            health: Health::Alive,
            admin: Admin::Active,
            remap: None,
            last_answer: None,
        }
    }
}

/// All members of all pools, indexed in configuration order of first appearance.
#[derive(Clone, Debug, Default)]
pub struct ServerPool {
    members: Vec<Member>,
    by_addr: FxHashMap<[u8; 4], usize>,
}

impl ServerPool {
    /// Adds `addr` if new; returns its index.
    pub fn intern(&mut self, addr: Ipv4Addr) -> usize {
        let next = self.members.len();
        *self.by_addr.entry(addr.octets()).or_insert_with(|| {
            self.members.push(Member::new(addr));
            next
        })
    }

    /// The member with this address.
    #[inline]
    pub fn find(&self, addr: [u8; 4]) -> Option<usize> {
        self.by_addr.get(&addr).copied()
    }

    /// All members.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Member `i`.
    pub fn member(&self, i: usize) -> &Member {
        &self.members[i]
    }

    /// Whether member `i` may be offered to a load-share algorithm for a new session: it is
    /// active, and the member that would really get the session (itself, or its remap target)
    /// is alive and not draining or removed.
    #[inline]
    pub fn accepts_new(&self, i: usize) -> bool {
        let m = &self.members[i];
        if m.admin != Admin::Active {
            return false;
        }
        let target = &self.members[m.remap.unwrap_or(i)];
        target.health == Health::Alive && matches!(target.admin, Admin::Active | Admin::Backup)
    }

    /// Whether member `i` is waiting for its dead-host probe session.
    #[inline]
    pub fn probe_due(&self, i: usize) -> bool {
        let m = &self.members[i];
        matches!(m.health, Health::ProbeDue { .. }) && m.admin == Admin::Active
    }

    pub(crate) fn member_mut(&mut self, i: usize) -> &mut Member {
        &mut self.members[i]
    }

    pub(crate) fn bind(&mut self, i: usize) {
        self.members[i].bound += 1;
        self.members[i].total += 1;
    }

    pub(crate) fn unbind(&mut self, i: usize) {
        self.members[i].bound = self.members[i].bound.saturating_sub(1);
    }
}
