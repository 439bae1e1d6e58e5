//! Client affinity (RSerPool requirements, RFC 3237 §5; IPVS "persistence"): a client address,
//! masked to a configured prefix, goes back to the member it used last while that member can
//! take new sessions, until the affinity timeout has passed since the client's last session was
//! bound or ended. The table is keyed by (virtual server, masked client) and grows with the
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
        let expired = now.since(r.last) > cfg.timeout;
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
        self.map.insert(
            (vs as u32, masked(client, cfg.prefix)),
            Remembered { member, last: now },
        );
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
            && at > r.last
        {
            r.last = at;
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
        let mut t = AffinityTable::default();
        t.remember(0, &cfg, [192, 0, 2, 1], 2, Timestamp(0));
        let s = |x: u64| Timestamp(x * 1_000_000_000);
        // Another address of the same /24 shares the affinity.
        assert_eq!(
            t.lookup(0, &cfg, [192, 0, 2, 9], s(60)),
            Some((
                Remembered {
                    member: 2,
                    last: s(0)
                },
                false
            ))
        );
        assert_eq!(
            t.lookup(0, &cfg, [192, 0, 2, 9], s(61)).map(|r| r.1),
            Some(true)
        );
        t.touch(0, &cfg, [192, 0, 2, 1], 2, s(30));
        assert_eq!(
            t.lookup(0, &cfg, [192, 0, 2, 9], s(61)).map(|r| r.1),
            Some(false)
        );
        assert_eq!(t.lookup(1, &cfg, [192, 0, 2, 9], s(1)), None);
    }
}
