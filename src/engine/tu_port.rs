//! TU port allocation for LS-NAPT and NAPT (RFC 2391 §2.1, §3.3; RFC 3022 §2.2).
//!
//! An LS-NAPT router replaces the client's address and TU port with its own address and a TU
//! port it assigns; NAPT does the same for sessions inside hosts start. Ports come from a pool
//! per (router address, peer, protocol): the peer is the member for LS-NAPT and the outside
//! host for NAPT. RFC 2391 §3.3 sets 0–1023 aside as well-known service ports, leaving
//! 1024–65535 ("63K TCP client ports and 63K of UDP client ports ... to communicate with each
//! load-share server"); ICMP query identifiers are drawn the same way.
//!
//! Policy (deterministic): keep the session's own port when it is ≥ 1024 and free (what Linux
//! masquerade does when nothing clashes), else take the next free port upward from it,
//! wrapping from 65535 to 1024. A port is never handed out twice while a session holds it;
//! when a pool is exhausted the new session is refused.

use rustc_hash::FxHashMap;

/// The lowest port handed out (RFC 2391 §3.3: 0–1023 are well-known service ports).
pub const FIRST: u16 = 1024;
/// The highest port handed out.
pub const LAST: u16 = 65535;

/// Which pool a port comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    /// The router's address the sessions leave with.
    pub addr: [u8; 4],
    /// The member (LS-NAPT) or outside host (NAPT) on the other side.
    pub peer: [u8; 4],
    /// IP protocol (TCP, UDP, ICMP have separate port spaces).
    pub protocol: u8,
}

/// One pool: a bit per port, set while held.
struct Pool {
    bits: Box<[u64; 1024]>,
    held: u32,
}

impl Pool {
    fn is_held(&self, p: u16) -> bool {
        self.bits[usize::from(p) / 64] & (1 << (p % 64)) != 0
    }

    fn set(&mut self, p: u16, on: bool) {
        let w = &mut self.bits[usize::from(p) / 64];
        if on {
            *w |= 1 << (p % 64);
        } else {
            *w &= !(1 << (p % 64));
        }
    }

    /// The next free port at or after `from` (within FIRST..=LAST) that `avoid` does not
    /// refuse, wrapping once.
    fn next_free(&self, from: u16, avoid: impl Fn(u16) -> bool) -> Option<u16> {
        if self.held > u32::from(LAST - FIRST) {
            return None;
        }
        let from = from.max(FIRST);
        self.first_free_not(from, LAST, &avoid)
            .or_else(|| (from > FIRST).then(|| self.first_free_not(FIRST, from - 1, &avoid))?)
    }

    /// The lowest free port in `lo..=hi` that `avoid` does not refuse.
    fn first_free_not(&self, mut lo: u16, hi: u16, avoid: &impl Fn(u16) -> bool) -> Option<u16> {
        loop {
            let p = self.first_free(lo, hi)?;
            if !avoid(p) {
                return Some(p);
            }
            if p == hi {
                return None;
            }
            lo = p + 1;
        }
    }

    /// The lowest free port in `lo..=hi`, a 64-bit word at a time.
    fn first_free(&self, lo: u16, hi: u16) -> Option<u16> {
        let (lo, hi) = (usize::from(lo), usize::from(hi));
        for w in lo / 64..=hi / 64 {
            let mut free = !self.bits[w];
            if w == lo / 64 {
                free &= u64::MAX << (lo % 64);
            }
            if w == hi / 64 && hi % 64 != 63 {
                free &= (1u64 << (hi % 64 + 1)) - 1;
            }
            if free != 0 {
                return Some((w * 64 + free.trailing_zeros() as usize) as u16);
            }
        }
        None
    }
}

/// Every pool of the router. Pools are created on first use and dropped when empty.
#[derive(Default)]
pub(crate) struct TuPorts {
    pools: FxHashMap<PoolKey, Pool>,
}

impl TuPorts {
    /// Allocates a port for a session whose own port is `wanted`; `None` when the pool is
    /// exhausted (all 64,512 ports held). (LS-NAPT and NAPT use
    /// [`TuPorts::allocate_avoiding`]: never a service port.)
    #[cfg(test)]
    pub fn allocate(&mut self, key: PoolKey, wanted: u16) -> Option<u16> {
        self.allocate_avoiding(key, wanted, |_| false)
    }

    /// Allocates a port for a session whose own port is `wanted`, as `allocate` (tests) does,
    /// never handing out a port `avoid` refuses (NAPT: the load-shared services of the router
    /// address, RFC 2391 §3.2); `None` when no other port is free.
    pub fn allocate_avoiding(
        &mut self,
        key: PoolKey,
        wanted: u16,
        avoid: impl Fn(u16) -> bool,
    ) -> Option<u16> {
        let pool = self.pools.entry(key).or_insert_with(|| Pool {
            bits: Box::new([0; 1024]),
            held: 0,
        });
        // An ICMP query identifier is no TU port: kept whatever its value when free, as
        // Linux keeps it; a TCP/UDP port below 1024 moves up (RFC 2391 §3.3: 1024–65535).
        let keeps = wanted >= FIRST || key.protocol == crate::wire::proto::ICMP;
        let port = if keeps && !pool.is_held(wanted) && !avoid(wanted) {
            wanted
        } else {
            match pool.next_free(wanted.saturating_add(1), avoid) {
                Some(p) => p,
                None => {
                    if pool.held == 0 {
                        self.pools.remove(&key);
                    }
                    return None;
                }
            }
        };
        pool.set(port, true);
        pool.held += 1;
        Some(port)
    }

    /// Gives back the port of a session translated to `t` (its new source and port, toward
    /// `t.dst`), when it ends or is refused.
    pub fn release_translated(&mut self, t: &super::event::Tuple) {
        let key = PoolKey {
            addr: t.src,
            peer: t.dst,
            protocol: t.protocol,
        };
        self.release(key, t.sport);
    }

    /// Gives `port` back when its session is unbound.
    pub fn release(&mut self, key: PoolKey, port: u16) {
        if let Some(pool) = self.pools.get_mut(&key)
            && pool.is_held(port)
        {
            pool.set(port, false);
            pool.held -= 1;
            if pool.held == 0 {
                self.pools.remove(&key);
            }
        }
    }

    /// Ports held in a pool.
    #[cfg(test)]
    pub fn held(&self, key: PoolKey) -> u32 {
        self.pools.get(&key).map_or(0, |p| p.held)
    }
}

impl super::Engine {
    /// A TU port of `pool` for a translation the router makes (NAPT's sessions, §3.2; an FTP
    /// announcement in LS-NAPT, §3.3): `wanted` when free, never a load-shared service port
    /// of the router's address. `None` when the pool is exhausted.
    pub(crate) fn allocate_tu_port(&mut self, pool: PoolKey, wanted: u16) -> Option<u16> {
        let vss = &self.vss;
        self.ports.allocate_avoiding(pool, wanted, |p| {
            vss.is_tu_service(pool.addr, pool.protocol, p)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: PoolKey = PoolKey {
        addr: [203, 0, 113, 254],
        peer: [203, 0, 113, 1],
        protocol: 6,
    };

    /// ICMP query identifiers are no TU ports: one below 1024 is kept when free.
    #[test]
    fn icmp_identifiers_below_1024_are_kept() {
        let mut t = TuPorts::default();
        let icmp = PoolKey { protocol: 1, ..K };
        assert_eq!(t.allocate(icmp, 7), Some(7));
        assert_eq!(t.allocate(icmp, 7), Some(1024), "a clash moves up");
        assert_eq!(
            t.allocate(K, 7),
            Some(1024),
            "a TCP port below 1024 moves up"
        );
    }

    #[test]
    fn keeps_a_free_client_port_and_moves_up_on_a_clash() {
        let mut t = TuPorts::default();
        assert_eq!(t.allocate(K, 40000), Some(40000));
        // A second client with the same port toward the same member: the next one up.
        assert_eq!(t.allocate(K, 40000), Some(40001));
        assert_eq!(t.allocate(K, 40000), Some(40002));
        // Another member, another protocol: separate pools.
        let other = PoolKey {
            peer: [203, 0, 113, 2],
            ..K
        };
        assert_eq!(t.allocate(other, 40000), Some(40000));
        assert_eq!(
            t.allocate(PoolKey { protocol: 17, ..K }, 40000),
            Some(40000)
        );
    }

    #[test]
    fn well_known_client_ports_are_not_kept_and_the_search_wraps() {
        let mut t = TuPorts::default();
        assert_eq!(t.allocate(K, 80), Some(1024));
        assert_eq!(t.allocate(K, 0), Some(1025));
        assert_eq!(t.allocate(K, 65535), Some(65535));
        // 65535 held: wraps to the lowest free port.
        assert_eq!(t.allocate(K, 65535), Some(1026));
    }

    #[test]
    fn no_reuse_while_held_and_release_on_unbind() {
        let mut t = TuPorts::default();
        assert_eq!(t.allocate(K, 5000), Some(5000));
        assert_eq!(t.allocate(K, 5000), Some(5001));
        t.release(K, 5000);
        assert_eq!(t.held(K), 1);
        assert_eq!(t.allocate(K, 5000), Some(5000));
        t.release(K, 5000);
        t.release(K, 5001);
        t.release(K, 5001); // twice: harmless
        assert_eq!(t.held(K), 0);
    }

    #[test]
    fn avoided_ports_are_never_handed_out() {
        let mut t = TuPorts::default();
        let service = |p: u16| p == 9999 || p == 10000 || p == 1024;
        // The wanted port is a service: the next one up that is not.
        assert_eq!(t.allocate_avoiding(K, 9999, service), Some(10001));
        assert_eq!(t.allocate_avoiding(K, 9998, service), Some(9998));
        assert_eq!(t.allocate_avoiding(K, 9998, service), Some(10002));
        // Well-known ports move up, past an avoided 1024.
        assert_eq!(t.allocate_avoiding(K, 80, service), Some(1025));
        // Wrapping from the top skips them too.
        assert_eq!(t.allocate_avoiding(K, 65535, service), Some(65535));
        assert_eq!(t.allocate_avoiding(K, 65535, service), Some(1026));
        // Only avoided ports left: refused, and an empty pool is not kept.
        let other = PoolKey { protocol: 17, ..K };
        assert_eq!(t.allocate_avoiding(other, 5000, |_| true), None);
        assert_eq!(t.held(other), 0);
        assert!(!t.pools.contains_key(&other));
    }

    #[test]
    fn exhaustion_refuses_then_a_release_frees_exactly_one() {
        let mut t = TuPorts::default();
        let n = u32::from(LAST - FIRST) + 1;
        for i in 0..n {
            assert!(t.allocate(K, 30000).is_some(), "allocation {i}");
        }
        assert_eq!(t.held(K), 64_512);
        assert_eq!(t.allocate(K, 30000), None);
        assert_eq!(t.allocate(K, 80), None);
        t.release(K, 4242);
        assert_eq!(t.allocate(K, 30000), Some(4242));
        assert_eq!(t.allocate(K, 30000), None);
    }
}
