//! Source-address hashing (IPVS `sh`): the client address (or the whole session key,
//! `hash_key = "session"`) hashed with a fixed function, modulo the candidates' total weight,
//! each candidate owning as many consecutive values as its weight (IPVS gives a server as many
//! buckets as its weight; a weight of 0 gets none: never chosen), weights divided by their
//! greatest common divisor first, so that weights scaled alike share alike. The same client goes to the
//! same member while the candidate set and weights are unchanged; when they change, most
//! clients move (compare [`super::Maglev`]). No figure is compared: the decision records the
//! hash.

use super::{Candidate, LoadShare, Request, Scratch, exclude_weight_0, key_hash, relative_weights};
use crate::engine::config::HashKey;

/// hash(key) mod Σ weights, each candidate owning `weight` consecutive values.
#[derive(Debug)]
pub struct SourceHash {
    hash_key: HashKey,
    /// The candidates' relative weights, kept for reuse.
    weights: Vec<u32>,
}

impl SourceHash {
    /// Hashing `hash_key`.
    pub fn new(hash_key: HashKey) -> SourceHash {
        SourceHash {
            hash_key,
            weights: Vec::new(),
        }
    }
}

impl LoadShare for SourceHash {
    fn select(
        &mut self,
        r: &Request,
        candidates: &[Candidate],
        out: &mut Scratch,
    ) -> Option<usize> {
        let h = key_hash(&r.key, self.hash_key);
        out.hash = Some(h);
        exclude_weight_0(candidates, out);
        relative_weights(candidates, &mut self.weights);
        let total: u64 = self.weights.iter().map(|&w| u64::from(w)).sum();
        if total == 0 {
            return None;
        }
        let mut at = h % total;
        self.weights.iter().position(|&w| {
            let w = u64::from(w);
            if at < w {
                return true;
            }
            at -= w;
            false
        })
    }

    fn may_choose(&self, c: &Candidate) -> bool {
        c.weight > 0
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
        let mut sh = SourceHash::new(HashKey::Source);
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

    /// Weights share the clients as IPVS `sh` shares its buckets: weights 1, 3 and 0 give
    /// about a quarter and three quarters, and none to the member of weight 0; equal weights
    /// give what weight 1 gives.
    #[test]
    fn weights_share_the_clients() {
        let weighted = members(3, |i, c| c.weight = [1, 3, 0][i]);
        let mut sh = SourceHash::new(HashKey::Source);
        let key = |i: u32| Tuple {
            protocol: 6,
            src: (0xC612_0000 + i).to_be_bytes(),
            sport: 1,
            dst: [198, 18, 0, 100],
            dport: 80,
        };
        let mut spread = [0; 3];
        for i in 0..4000 {
            spread[pick_key(&mut sh, &weighted, key(i)).0.unwrap()] += 1;
        }
        assert_eq!(spread[2], 0, "{spread:?}");
        assert!((850..=1150).contains(&spread[0]), "{spread:?}");
        assert!(!sh.may_choose(&weighted[2]) && sh.may_choose(&weighted[0]));
        let figures = pick_key(&mut sh, &weighted, key(0)).1;
        assert!(
            figures[0].is_nan() && figures[2] == f64::INFINITY,
            "{figures:?}"
        );
        let ones = members(3, |_, _| {});
        let twos = members(3, |_, c| c.weight = 2);
        for i in 0..300 {
            let one = pick_key(&mut sh, &ones, key(i)).0;
            assert_eq!(one, pick_key(&mut sh, &ones, key(i)).0);
            // Weight 1 each: the plain modulo of the hash.
            let h = crate::engine::load_share::key_hash(&key(i), HashKey::Source);
            assert_eq!(one, Some((h % 3) as usize));
            // Weights scaled alike share alike.
            assert_eq!(pick_key(&mut sh, &twos, key(i)).0, one);
        }
        assert_eq!(
            pick_key(&mut sh, &members(2, |_, c| c.weight = 0), key(1)).0,
            None
        );
    }
}
