//! Static mappings (RFC 2391 §3, §4.1): "a server, that needs to be upgraded is statically
//! mapped to a backup server on the inbound. Subsequent to this mapping, new session requests
//! to the original server would be redirected by LSNAT to the backup server. As an extension,
//! it is also possible to statically map a specific TU port service on a server to that of
//! backup server." Applied at binding: the load-share algorithm chooses among the configured
//! members as usual, then a mapping of the chosen member replaces it by its backup. Sessions
//! already bound keep their member.

use super::config::StaticMapping;
use super::server_pool::ServerPool;
use super::virtual_server::VirtualServer;
use crate::wire::proto;

/// One mapping with its addresses resolved.
#[derive(Clone, Copy, Debug)]
struct Mapping {
    member: [u8; 4],
    port: Option<u16>,
    backup: usize,
    backup_addr: [u8; 4],
    backup_port: Option<u16>,
}

/// Every static mapping of the router.
#[derive(Clone, Debug, Default)]
pub(crate) struct StaticMappings {
    list: Vec<Mapping>,
}

/// Where a session chosen for a member actually goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// Pool index.
    pub member: usize,
    /// Address.
    pub addr: [u8; 4],
    /// Service port at the target.
    pub port: u16,
}

impl StaticMappings {
    /// Resolves the mappings; backups join the pool (so their load is counted and reported)
    /// without joining any virtual server's load-share candidates.
    pub fn new(list: &[StaticMapping], pool: &mut ServerPool) -> StaticMappings {
        StaticMappings {
            list: list
                .iter()
                .map(|m| Mapping {
                    member: m.member.octets(),
                    port: m.port,
                    backup: pool.intern(m.backup),
                    backup_addr: m.backup.octets(),
                    backup_port: m.backup_port,
                })
                .collect(),
        }
    }

    /// Records in `v` the backups of its member at `addr`: a whole-member backup for all its
    /// services, a one-port backup (TCP/UDP) where that port is one of `v`'s services, with
    /// its own port for it.
    pub fn register_backups(&self, v: &mut VirtualServer, addr: [u8; 4]) {
        let tu = matches!(v.config.protocol, proto::TCP | proto::UDP);
        for m in self.list.iter().filter(|m| m.member == addr) {
            match m.port {
                None => v.add_backup(m.backup, None),
                Some(p) if tu && v.serves(v.config.protocol, p) => {
                    v.add_backup(m.backup, Some((p, m.backup_port.unwrap_or(p))));
                }
                Some(_) => {}
            }
        }
    }

    /// Applies the mapping of `chosen` for a session to service `port` (`has_ports`: TCP or
    /// UDP). A port-specific mapping wins over a whole-member one.
    pub fn apply(&self, chosen: Target, port: u16, has_ports: bool) -> Target {
        if self.list.is_empty() {
            return chosen;
        }
        let specific = self
            .list
            .iter()
            .find(|m| has_ports && m.member == chosen.addr && m.port == Some(port));
        let any = || {
            self.list
                .iter()
                .find(|m| m.member == chosen.addr && m.port.is_none())
        };
        match specific.or_else(any) {
            Some(m) => Target {
                member: m.backup,
                addr: m.backup_addr,
                port: if has_ports {
                    m.backup_port.unwrap_or(port)
                } else {
                    port
                },
            },
            None => chosen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn target(pool: &ServerPool, a: [u8; 4], port: u16) -> Target {
        Target {
            member: pool.find(a).unwrap(),
            addr: a,
            port,
        }
    }

    #[test]
    fn whole_member_and_port_specific_mappings() {
        let mut pool = ServerPool::default();
        for m in [1, 2, 3] {
            pool.intern(Ipv4Addr::new(203, 0, 113, m));
        }
        let maps = [
            StaticMapping {
                member: Ipv4Addr::new(203, 0, 113, 2),
                port: None,
                backup: Ipv4Addr::new(203, 0, 113, 9),
                backup_port: None,
            },
            StaticMapping {
                member: Ipv4Addr::new(203, 0, 113, 1),
                port: Some(23),
                backup: Ipv4Addr::new(203, 0, 113, 3),
                backup_port: Some(2323),
            },
        ];
        let s = StaticMappings::new(&maps, &mut pool);
        // the backup joined the pool
        let b9 = pool.find([203, 0, 113, 9]).unwrap();
        assert_eq!(b9, 3);
        // member 2: every service, ports kept
        let t = s.apply(target(&pool, [203, 0, 113, 2], 80), 80, true);
        assert_eq!((t.member, t.addr, t.port), (b9, [203, 0, 113, 9], 80));
        let t = s.apply(target(&pool, [203, 0, 113, 2], 0), 0, false);
        assert_eq!(t.addr, [203, 0, 113, 9]);
        // member 1: only its port 23, to the backup's port 2323
        let t = s.apply(target(&pool, [203, 0, 113, 1], 23), 23, true);
        assert_eq!((t.addr, t.port), ([203, 0, 113, 3], 2323));
        let same = target(&pool, [203, 0, 113, 1], 80);
        assert_eq!(s.apply(same, 80, true), same);
        // ICMP / other protocols have no port: a port mapping does not apply
        let icmp = target(&pool, [203, 0, 113, 1], 0);
        assert_eq!(s.apply(icmp, 23, false), icmp);
        // an unmapped member
        let m3 = target(&pool, [203, 0, 113, 3], 80);
        assert_eq!(s.apply(m3, 80, true), m3);
    }
}
