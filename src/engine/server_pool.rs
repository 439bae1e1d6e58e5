//! The server pool (RFC 2391 §3, §5): the members sessions are bound to and the load each
//! carries, which the load-share algorithms read: sessions bound (§5.1 (2)), weighted session
//! load (§5.1 (4)), traffic over a sliding window of capture time (§5.1 (3), §5.2 (2)), smoothed
//! response time (§5.1 (5)), reported capacity (§5.1 active category), member weight and access
//! cost (§5.2); and whether each may take new sessions: its health as dead host detection sees it (§6,
//! [`super::dead_host`]) and its administrative state as the pool timeline sets it (§3, §4.1,
//! [`super::pool_timeline`]).

use crate::time::{Span, Timestamp};
use rustc_hash::FxHashMap;
use std::net::Ipv4Addr;

/// Buckets in a traffic window: the window slides in steps of `window / BUCKETS`.
pub const BUCKETS: usize = 16;

/// Packets and bytes to and from a member over the last `window` of capture time, kept as a
/// ring of [`BUCKETS`] per-interval buckets: O(1) amortised per packet, no allocation. The sum
/// covers between `window − window/BUCKETS` and `window` of time (the current bucket is partial).
#[derive(Clone, Debug)]
pub struct TrafficWindow {
    width: u64,
    /// Index (time / width) of the newest bucket.
    head: u64,
    packets: [u64; BUCKETS],
    bytes: [u64; BUCKETS],
    sum_packets: u64,
    sum_bytes: u64,
}

impl TrafficWindow {
    /// An empty window of length `window`.
    pub fn new(window: Span) -> TrafficWindow {
        TrafficWindow {
            width: (window.0 / BUCKETS as u64).max(1),
            head: 0,
            packets: [0; BUCKETS],
            bytes: [0; BUCKETS],
            sum_packets: 0,
            sum_bytes: 0,
        }
    }

    /// Slides the window to `now`, dropping buckets older than the window.
    #[inline]
    pub fn advance(&mut self, now: Timestamp) {
        let idx = now.0 / self.width;
        if idx <= self.head {
            return;
        }
        let gap = idx - self.head;
        if gap >= BUCKETS as u64 {
            self.packets = [0; BUCKETS];
            self.bytes = [0; BUCKETS];
            self.sum_packets = 0;
            self.sum_bytes = 0;
        } else {
            for i in self.head + 1..=idx {
                let b = (i % BUCKETS as u64) as usize;
                self.sum_packets -= self.packets[b];
                self.sum_bytes -= self.bytes[b];
                self.packets[b] = 0;
                self.bytes[b] = 0;
            }
        }
        self.head = idx;
    }

    /// Counts one packet of `bytes` at `now`.
    #[inline]
    pub fn add(&mut self, now: Timestamp, bytes: u64) {
        self.advance(now);
        let b = (self.head % BUCKETS as u64) as usize;
        self.packets[b] += 1;
        self.bytes[b] += bytes;
        self.sum_packets += 1;
        self.sum_bytes += bytes;
    }

    /// (packets, bytes) in the window as of the last [`TrafficWindow::advance`].
    pub fn totals(&self) -> (u64, u64) {
        (self.sum_packets, self.sum_bytes)
    }
}

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
    /// Member weight (RFC 2391 §5.1 (4)): how resourceful it is relative to the others.
    pub weight: u32,
    /// Access cost (RFC 2391 §5.2); infinity: unreachable, no new sessions.
    pub cost: f64,
    /// Sum of the session weights of the sessions bound now (§5.1 (4)).
    pub weighted_load: u64,
    /// Traffic to and from it over the sliding window.
    pub traffic: TrafficWindow,
    /// Smoothed (EWMA) time from a session's first packet to the member's first reply, ns;
    /// `None` until it has answered once.
    pub response_ns: Option<f64>,
    /// Responses measured.
    pub responses: u64,
    /// The last capacity it reported, if any.
    pub capacity: Option<f64>,
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
    fn new(addr: Ipv4Addr, window: Span) -> Member {
        Member {
            addr,
            bound: 0,
            total: 0,
            weight: 1,
            cost: 1.0,
            weighted_load: 0,
            traffic: TrafficWindow::new(window),
            response_ns: None,
            responses: 0,
            capacity: None,
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
    window: Span,
    smoothing: f64,
    /// Whether an algorithm reads the traffic windows (§5.1 (3), §5.2 (2)); when none does,
    /// packets are not counted into them, keeping the per-packet path short.
    pub(crate) count_traffic: bool,
    /// Capacities reported by addresses that are not members yet (the pool timeline may add
    /// them later): the last one each, applied when the member joins.
    pending_capacity: FxHashMap<[u8; 4], f64>,
}

impl ServerPool {
    /// A pool whose members keep traffic over `window` and smooth response times by `smoothing`.
    pub fn new(window: Span, smoothing: f64) -> ServerPool {
        ServerPool {
            window,
            smoothing,
            ..ServerPool::default()
        }
    }

    /// Adds `addr` if new; returns its index.
    pub fn intern(&mut self, addr: Ipv4Addr) -> usize {
        let next = self.members.len();
        let window = self.window;
        let pending = &mut self.pending_capacity;
        *self.by_addr.entry(addr.octets()).or_insert_with(|| {
            let mut m = Member::new(addr, window);
            m.capacity = pending.remove(&addr.octets());
            self.members.push(m);
            next
        })
    }

    /// A member-reported capacity (§5.1, active category) from `addr`: the member's, or kept
    /// until that address joins the pool.
    pub fn report_capacity(&mut self, addr: [u8; 4], capacity: f64) {
        match self.find(addr) {
            Some(m) => self.members[m].capacity = Some(capacity),
            None => {
                self.pending_capacity.insert(addr, capacity);
            }
        }
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

    /// Whether member `i` can take a new session: alive, and in a pool or a backup (not
    /// draining or removed). Whether a pool member is offered to the algorithm also depends on
    /// its virtual server and on where its session would go (`Engine::choose`).
    #[inline]
    pub fn takes_new(&self, i: usize) -> bool {
        let m = &self.members[i];
        m.health == Health::Alive && matches!(m.admin, Admin::Active | Admin::Backup)
    }

    /// Whether member `i` is waiting for its dead-host probe session (a pool member or a
    /// backup).
    #[inline]
    pub fn probe_due(&self, i: usize) -> bool {
        let m = &self.members[i];
        matches!(m.health, Health::ProbeDue { .. })
            && matches!(m.admin, Admin::Active | Admin::Backup)
    }

    /// Member `i`, to change its weight or cost.
    pub fn member_mut(&mut self, i: usize) -> &mut Member {
        &mut self.members[i]
    }

    pub(crate) fn bind(&mut self, i: usize, session_weight: u32) {
        let m = &mut self.members[i];
        m.bound += 1;
        m.total += 1;
        m.weighted_load += u64::from(session_weight);
    }

    pub(crate) fn unbind(&mut self, i: usize, session_weight: u32) {
        let m = &mut self.members[i];
        m.bound = m.bound.saturating_sub(1);
        m.weighted_load = m.weighted_load.saturating_sub(u64::from(session_weight));
    }

    /// Counts a translated packet of `bytes` to or from member `i`.
    #[inline]
    pub(crate) fn traffic(&mut self, i: usize, now: Timestamp, bytes: u64) {
        if self.count_traffic {
            self.members[i].traffic.add(now, bytes);
        }
    }

    /// Feeds one response time (a session's first reply − its first packet) of member `i`.
    pub(crate) fn response(&mut self, i: usize, rt: Span) {
        let a = self.smoothing;
        let m = &mut self.members[i];
        let sample = rt.0 as f64;
        m.response_ns = Some(match m.response_ns {
            None => sample,
            Some(old) => a * sample + (1.0 - a) * old,
        });
        m.responses += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides_and_forgets() {
        let mut w = TrafficWindow::new(Span::from_secs(16)); // 1 s buckets
        let s = |x: u64| Timestamp(x * 1_000_000_000);
        w.add(s(100), 100);
        w.add(s(100), 50);
        w.add(s(105), 10);
        assert_eq!(w.totals(), (3, 160));
        w.advance(s(115));
        assert_eq!(w.totals(), (3, 160));
        w.advance(s(116)); // bucket of t=100 leaves the window
        assert_eq!(w.totals(), (1, 10));
        w.add(s(200), 7); // far later: everything before is gone
        assert_eq!(w.totals(), (1, 7));
        w.advance(s(199)); // time never goes back
        assert_eq!(w.totals(), (1, 7));
    }

    #[test]
    fn response_time_is_smoothed() {
        let mut p = ServerPool::new(Span::from_secs(10), 0.5);
        let m = p.intern(Ipv4Addr::new(203, 0, 113, 1));
        assert_eq!(p.member(m).response_ns, None);
        p.response(m, Span(1000));
        p.response(m, Span(3000));
        assert_eq!(p.member(m).response_ns, Some(2000.0));
        assert_eq!(p.member(m).responses, 2);
    }
}
