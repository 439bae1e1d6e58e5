//! Client affinity (RSerPool requirements, RFC 3237 §5; IPVS "persistence"): a client address,
//! masked to a configured prefix, goes back to the member it used last while that member can
//! take new sessions, as long as the client has a session bound there or the affinity timeout
//! has not passed since its last session there was bound or ended (as IPVS persistence
//! templates outlive their connections by the timeout; it has passed at `end + timeout`, as
//! an idle timeout has at `last + timeout`). The table is keyed by (virtual server, masked client) and grows with the
//! distinct clients seen; an entry is checked lazily when that client binds again.

use super::config::AffinityConfig;
use crate::time::Timestamp;
use rustc_hash::FxHashMap;

/// What the table remembers about a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remembered {
    /// Pool index of the member it used last.
    pub member: usize,
    /// When its last session was bound or ended.
    pub last: Timestamp,
    /// Its sessions bound to that member now.
    pub live: u32,
}

/// The affinity table of all virtual servers.
#[derive(Debug, Default)]
pub struct AffinityTable {
    map: FxHashMap<(u32, u32), Remembered>,
}

/// The client address masked to `prefix` bits.
pub fn masked(addr: [u8; 4], prefix: u8) -> u32 {
    let a = u32::from_be_bytes(addr);
    match prefix {
        0 => 0,
        p if p >= 32 => a,
        p => a & (u32::MAX << (32 - u32::from(p))),
    }
}

impl AffinityTable {
    /// What is remembered for `client` on virtual server `vs`, and whether it has timed out.
    pub fn lookup(
        &self,
        vs: usize,
        cfg: &AffinityConfig,
        client: [u8; 4],
        now: Timestamp,
    ) -> Option<(Remembered, bool)> {
        let r = *self.map.get(&(vs as u32, masked(client, cfg.prefix)))?;
        let expired = r.live == 0 && now.since(r.last) >= cfg.timeout;
        Some((r, expired))
    }

    /// Remembers that `client` now uses `member` (at binding).
    pub fn remember(
        &mut self,
        vs: usize,
        cfg: &AffinityConfig,
        client: [u8; 4],
        member: usize,
        now: Timestamp,
    ) {
        let e = self
            .map
            .entry((vs as u32, masked(client, cfg.prefix)))
            .or_insert(Remembered {
                member,
                last: now,
                live: 0,
            });
        if e.member != member {
            // Broken affinity: the client's sessions on the old member no longer count.
            e.member = member;
            e.live = 0;
        }
        e.live += 1;
        e.last = now;
    }

    /// A session of `client` on `member` ended at `at`: the timeout counts from here.
    pub fn touch(
        &mut self,
        vs: usize,
        cfg: &AffinityConfig,
        client: [u8; 4],
        member: usize,
        at: Timestamp,
    ) {
        if let Some(r) = self.map.get_mut(&(vs as u32, masked(client, cfg.prefix)))
            && r.member == member
        {
            r.live = r.live.saturating_sub(1);
            r.last = r.last.max(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Span;

    #[test]
    fn prefix_and_timeout() {
        assert_eq!(
            masked([192, 0, 2, 77], 24),
            u32::from_be_bytes([192, 0, 2, 0])
        );
        assert_eq!(
            masked([192, 0, 2, 77], 32),
            u32::from_be_bytes([192, 0, 2, 77])
        );
        assert_eq!(masked([192, 0, 2, 77], 0), 0);
        let cfg = AffinityConfig {
            prefix: 24,
            timeout: Span::from_secs(60),
        };
        let s = |x: u64| Timestamp(x * 1_000_000_000);
        let mut t = AffinityTable::default();
        t.remember(0, &cfg, [192, 0, 2, 1], 2, s(0));
        // While a session is bound there, affinity holds however long ago it was bound.
        assert_eq!(
            t.lookup(0, &cfg, [192, 0, 2, 9], s(500)).map(|r| r.1),
            Some(false)
        );
        // Another address of the same /24 shares the affinity; the timeout runs from the end
        // and, like an idle timeout, has passed at `end + timeout`.
        t.touch(0, &cfg, [192, 0, 2, 1], 2, s(30));
        assert_eq!(
            t.lookup(0, &cfg, [192, 0, 2, 9], Timestamp(s(90).0 - 1)),
            Some((
                Remembered {
                    member: 2,
                    last: s(30),
                    live: 0
                },
                false
            ))
        );
        assert_eq!(
            t.lookup(0, &cfg, [192, 0, 2, 9], s(90)).map(|r| r.1),
            Some(true)
        );
        assert_eq!(t.lookup(1, &cfg, [192, 0, 2, 9], s(1)), None);
        // Moved to member 1: sessions ending on member 2 no longer touch it.
        t.remember(0, &cfg, [192, 0, 2, 1], 2, s(100));
        t.remember(0, &cfg, [192, 0, 2, 1], 1, s(200));
        t.touch(0, &cfg, [192, 0, 2, 1], 2, s(210));
        let r = t.lookup(0, &cfg, [192, 0, 2, 1], s(210)).unwrap().0;
        assert_eq!((r.member, r.live, r.last), (1, 1, s(200)));
    }
}
