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
    /// their own, but their packets from its services are this virtual server's; a backup for
    /// one service port (`Some((service port, its own port for it))`) serves that port only.
    pub backups: Vec<(usize, Option<(u16, u16)>)>,
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

    /// The service port of this virtual server a packet from member `m`'s `(protocol, port)`
    /// answers for, if it comes from one: `port` itself when `m` is in its member list (in the
    /// pool now or not) or a whole-member backup of one of them and `port` is a service port;
    /// the service port a one-port backup stands in for, when `port` is its own port for it.
    /// (ICMP and other protocols: any port, as they have none.)
    #[inline]
    pub fn service_port_of(&self, m: usize, protocol: u8, port: u16) -> Option<u16> {
        if self.config.protocol != protocol {
            return None;
        }
        let service = self.serves(protocol, port);
        if service && self.members.contains(&m) {
            return Some(port);
        }
        self.backups.iter().find_map(|&(b, p)| match p {
            _ if b != m => None,
            None => service.then_some(port),
            Some((service_port, own)) => (own == port).then_some(service_port),
        })
    }

    /// Whether a packet from member `m`'s `(protocol, port)` comes from this virtual server's
    /// service ([`VirtualServer::service_port_of`]).
    #[inline]
    pub fn is_service_packet_of(&self, m: usize, protocol: u8, port: u16) -> bool {
        self.service_port_of(m, protocol, port).is_some()
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

    /// Records `b` as a backup of a member of this virtual server: for every service
    /// (`None`), or for one, `Some((service port, the backup's own port for it))`.
    pub fn add_backup(&mut self, b: usize, port: Option<(u16, u16)>) {
        if !self.backups.contains(&(b, port)) {
            self.backups.push((b, port));
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

    /// Whether `port` of `addr` is a load-shared TCP/UDP service: LS-NAPT and NAPT never hand
    /// it out as a translated port (RFC 2391 §3.2, §3.3), since packets to it start sessions.
    #[inline]
    pub fn is_tu_service(&self, addr: [u8; 4], protocol: u8, port: u16) -> bool {
        matches!(protocol, proto::TCP | proto::UDP) && self.inbound(addr, protocol, port).is_some()
    }

    /// Whether a packet from `src` with `(protocol, sport)` comes from a load-shared service:
    /// from a pool member (router view) or from the VIP (client-side view).
    #[inline]
    pub fn outbound(&self, pool: &ServerPool, src: [u8; 4], protocol: u8, sport: u16) -> bool {
        match self.view {
            View::Router => pool.find(src).is_some_and(|m| {
                self.list
                    .iter()
                    .any(|v| v.is_service_packet_of(m, protocol, sport))
            }),
            View::ClientSide => self
                .list
                .iter()
                .any(|v| v.vip == src && v.serves(protocol, sport)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::VirtualServerConfig;
    use std::net::Ipv4Addr;

    /// Whose packets are a virtual server's: its members' from its service ports, a
    /// whole-member backup's from them too, a one-port backup's from its own port for it only.
    #[test]
    fn packets_from_members_and_backups_of_its_services() {
        let mut pool = ServerPool::default();
        let mut v = VirtualServer::new(
            VirtualServerConfig {
                vip: Ipv4Addr::new(198, 18, 0, 100),
                protocol: proto::TCP,
                ports: vec![80, 23],
                members: vec![Ipv4Addr::new(203, 0, 113, 1), Ipv4Addr::new(203, 0, 113, 2)],
                ..VirtualServerConfig::default()
            },
            &mut pool,
        );
        let whole = pool.intern(Ipv4Addr::new(203, 0, 113, 8));
        let one_port = pool.intern(Ipv4Addr::new(203, 0, 113, 9));
        v.add_backup(whole, None);
        v.add_backup(one_port, Some((23, 2323)));
        assert_eq!(v.service_port_of(one_port, proto::TCP, 2323), Some(23));
        assert_eq!(v.service_port_of(whole, proto::TCP, 80), Some(80));
        assert!(v.is_service_packet_of(0, proto::TCP, 80));
        assert!(v.is_service_packet_of(1, proto::TCP, 23));
        assert!(!v.is_service_packet_of(0, proto::TCP, 8080));
        assert!(!v.is_service_packet_of(0, proto::UDP, 80));
        assert!(v.is_service_packet_of(whole, proto::TCP, 23));
        assert!(!v.is_service_packet_of(whole, proto::TCP, 2323));
        assert!(v.is_service_packet_of(one_port, proto::TCP, 2323));
        assert!(!v.is_service_packet_of(one_port, proto::TCP, 80));
        assert!(!v.is_service_packet_of(one_port, proto::UDP, 2323));
        // Leaving the pool keeps a member's packets the virtual server's (its sessions go on).
        v.leave(1);
        assert!(v.is_service_packet_of(1, proto::TCP, 80));
    }
}
