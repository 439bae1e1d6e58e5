//! Virtual servers (RFC 2391 §3): a virtual server address (VIP) and the services on it that are
//! load-shared, each with its pool and algorithm. Classifies a packet's flow: to a service of a
//! VIP (inbound), or from a pool member's service (outbound, RFC 2391 §2.2).

use super::config::{View, VirtualServerConfig};
use super::load_share::{self, LoadShare};
use super::server_pool::ServerPool;
use crate::wire::proto;

/// A configured virtual server with its members resolved to pool indices.
pub(crate) struct VirtualServer {
    pub config: VirtualServerConfig,
    pub vip: [u8; 4],
    /// Pool indices, in configured order, then the members the pool timeline added
    /// (append-only: a member's place, its round-robin rank, never changes).
    pub members: Vec<usize>,
    /// Per member: in the pool now. Drained and removed members are out of every pool (the
    /// timeline's `add` brings one back into the pool it names); their sessions go on.
    pub in_pool: Vec<bool>,
    /// Backups of this virtual server's members (a pool-timeline remap, a static mapping): they
    /// take new sessions only through the member they stand in for, never as candidates of
    /// their own, but their packets are this virtual server's.
    pub backups: Vec<usize>,
    pub load_share: Box<dyn LoadShare>,
}

impl VirtualServer {
    pub fn new(config: VirtualServerConfig, pool: &mut ServerPool) -> VirtualServer {
        let members: Vec<usize> = config.members.iter().map(|&m| pool.intern(m)).collect();
        VirtualServer {
            vip: config.vip.octets(),
            load_share: load_share::build(config.algorithm, &config.params),
            in_pool: vec![true; members.len()],
            members,
            backups: Vec::new(),
            config,
        }
    }

    /// Whether member `m` serves this virtual server: in its member list (in the pool now or
    /// not) or a backup of one of them. Its packets from a service port are outbound.
    #[inline]
    pub fn served_by(&self, m: usize) -> bool {
        self.members.contains(&m) || self.backups.contains(&m)
    }

    /// Puts member `m` (back) into this pool, at the end of the member list when it is new.
    pub fn join(&mut self, m: usize) {
        match self.members.iter().position(|&x| x == m) {
            Some(i) => self.in_pool[i] = true,
            None => {
                self.members.push(m);
                self.in_pool.push(true);
            }
        }
    }

    /// Takes member `m` out of this pool (its place in the list stays).
    pub fn leave(&mut self, m: usize) {
        if let Some(i) = self.members.iter().position(|&x| x == m) {
            self.in_pool[i] = false;
        }
    }

    /// Records `b` as a backup of a member of this virtual server.
    pub fn add_backup(&mut self, b: usize) {
        if !self.served_by(b) {
            self.backups.push(b);
        }
    }

    /// Whether `(protocol, port)` is one of this virtual server's services. TCP and UDP match
    /// by TU port (§2.1); ICMP and other protocols by protocol alone.
    #[inline]
    pub fn serves(&self, protocol: u8, port: u16) -> bool {
        self.config.protocol == protocol
            && (!matches!(protocol, proto::TCP | proto::UDP) || self.config.ports.contains(&port))
    }
}

/// The virtual-server table.
pub(crate) struct VirtualServers {
    pub list: Vec<VirtualServer>,
    pub view: View,
}

impl VirtualServers {
    /// Whether `addr` is any virtual server's address.
    #[inline]
    pub fn is_vip(&self, addr: [u8; 4]) -> bool {
        self.list.iter().any(|v| v.vip == addr)
    }

    /// The virtual server a packet to `dst` with `(protocol, dport)` is for (inbound).
    #[inline]
    pub fn inbound(&self, dst: [u8; 4], protocol: u8, dport: u16) -> Option<usize> {
        self.list
            .iter()
            .position(|v| v.vip == dst && v.serves(protocol, dport))
    }

    /// Whether a packet from `src` with `(protocol, sport)` comes from a load-shared service:
    /// from a pool member (router view) or from the VIP (client-side view).
    #[inline]
    pub fn outbound(&self, pool: &ServerPool, src: [u8; 4], protocol: u8, sport: u16) -> bool {
        match self.view {
            View::Router => pool.find(src).is_some_and(|m| {
                self.list
                    .iter()
                    .any(|v| v.serves(protocol, sport) && v.served_by(m))
            }),
            View::ClientSide => self
                .list
                .iter()
                .any(|v| v.vip == src && v.serves(protocol, sport)),
        }
    }
}
