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
    /// Pool indices, in configured order.
    pub members: Vec<usize>,
    pub load_share: Box<dyn LoadShare>,
}

impl VirtualServer {
    pub fn new(config: VirtualServerConfig, pool: &mut ServerPool) -> VirtualServer {
        let members = config.members.iter().map(|&m| pool.intern(m)).collect();
        VirtualServer {
            vip: config.vip.octets(),
            load_share: load_share::build(config.algorithm, &config.params),
            members,
            config,
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
                    .any(|v| v.serves(protocol, sport) && v.members.contains(&m))
            }),
            View::ClientSide => self
                .list
                .iter()
                .any(|v| v.vip == src && v.serves(protocol, sport)),
        }
    }
}
