//! The server pool (RFC 2391 §3, §5): the members sessions are bound to and the load each
//! carries, which the load-share algorithms read.

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
            self.members.push(Member {
                addr,
                bound: 0,
                total: 0,
            });
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

    pub(crate) fn bind(&mut self, i: usize) {
        self.members[i].bound += 1;
        self.members[i].total += 1;
    }

    pub(crate) fn unbind(&mut self, i: usize) {
        self.members[i].bound = self.members[i].bound.saturating_sub(1);
    }
}
