//! Source-address hashing (IPVS `sh`): the client address (or the whole session key,
//! `hash_key = "session"`) hashed with a fixed function, modulo the number of candidates. The
//! same client goes to the same member while the candidate set is unchanged; when it changes,
//! most clients move (compare [`super::Maglev`]). No figure is compared: the decision records
//! the hash.

use super::{Candidate, LoadShare, Request, Scratch, key_hash};
use crate::engine::config::HashKey;

/// hash(key) mod candidates.
#[derive(Debug)]
pub struct SourceHash(pub HashKey);

impl LoadShare for SourceHash {
    fn select(
        &mut self,
        r: &Request,
        candidates: &[Candidate],
        out: &mut Scratch,
    ) -> Option<usize> {
        let h = key_hash(&r.key, self.0);
        out.hash = Some(h);
        Some((h % candidates.len() as u64) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::engine::event::Tuple;

    #[test]
    fn same_client_same_member() {
        let c = members(3, |_, _| {});
        let mut sh = SourceHash(HashKey::Source);
        let key = |src: [u8; 4], sport| Tuple {
            protocol: 6,
            src,
            sport,
            dst: [198, 18, 0, 100],
            dport: 80,
        };
        let a = pick_key(&mut sh, &c, key([192, 0, 2, 1], 1000)).0;
        let b = pick_key(&mut sh, &c, key([192, 0, 2, 1], 2000)).0;
        assert_eq!(a, b);
        let mut spread = [0; 3];
        for i in 0..=255u8 {
            spread[pick_key(&mut sh, &c, key([192, 0, 2, i], 1)).0.unwrap()] += 1;
        }
        assert!(spread.iter().all(|&n| n > 60), "{spread:?}");
    }
}
