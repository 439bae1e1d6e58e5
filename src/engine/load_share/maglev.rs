//! Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network
//! Load Balancer", NSDI 2016, §3.4): a lookup table of a prime number of slots, filled by letting
//! each member claim slots in the order of its own permutation (offset and skip derived from its
//! address with a fixed hash, no random seed). A key goes to the member owning slot
//! `hash(key) mod M`. When a member leaves, only about its share of keys move. The table is
//! rebuilt whenever the candidate set changes. No figure is compared: the decision records the
//! key's hash.
//!
//! Weights as IPVS `mh` takes them: in each round of the filling a member claims as many
//! slots as its weight divided by the weights' greatest common divisor, so its share of the
//! table follows its weight; a member of weight 0 claims none and is never chosen.

use super::{
    Candidate, LoadShare, Request, Scratch, exclude_weight_0, key_hash, mix64, relative_weights,
};
use crate::engine::config::HashKey;

/// Table size: a prime well above 100 × the largest pool (the paper's guidance); the paper's
/// small table size.
pub const TABLE_SIZE: usize = 65_537;

/// Maglev lookup.
#[derive(Debug)]
pub struct Maglev {
    hash_key: HashKey,
    /// Pool indices and weights of the members the table was built for, in candidate order.
    built_for: Vec<(usize, u32)>,
    /// Slot → position in `built_for`.
    table: Vec<u16>,
}

impl Maglev {
    /// An empty table (built on first use).
    pub fn new(hash_key: HashKey) -> Maglev {
        Maglev {
            hash_key,
            built_for: Vec::new(),
            table: Vec::new(),
        }
    }

    fn build(&mut self, candidates: &[Candidate]) {
        let m = TABLE_SIZE as u64;
        let n = candidates.len();
        self.built_for.clear();
        self.built_for
            .extend(candidates.iter().map(|c| (c.member, c.weight)));
        // Slots each member claims per round: its weight over the weights' gcd.
        let mut turns = Vec::new();
        relative_weights(candidates, &mut turns);
        if turns.iter().all(|&t| t == 0) {
            self.table.clear();
            return;
        }
        let perm: Vec<(u64, u64)> = candidates
            .iter()
            .map(|c| {
                let a = u64::from(u32::from_be_bytes(c.addr));
                let offset = mix64(a ^ 0x6d61_676c_6576_0001) % m;
                let skip = mix64(a ^ 0x6d61_676c_6576_0002) % (m - 1) + 1;
                (offset, skip)
            })
            .collect();
        let mut next = vec![0u64; n];
        self.table.clear();
        self.table.resize(TABLE_SIZE, u16::MAX);
        let mut filled = 0;
        'fill: loop {
            for i in 0..n {
                let (offset, skip) = perm[i];
                for _ in 0..turns[i] {
                    let mut slot = ((offset + next[i] * skip) % m) as usize;
                    while self.table[slot] != u16::MAX {
                        next[i] += 1;
                        slot = ((offset + next[i] * skip) % m) as usize;
                    }
                    self.table[slot] = i as u16;
                    next[i] += 1;
                    filled += 1;
                    if filled == TABLE_SIZE {
                        break 'fill;
                    }
                }
            }
        }
    }
}

impl LoadShare for Maglev {
    fn select(
        &mut self,
        r: &Request,
        candidates: &[Candidate],
        out: &mut Scratch,
    ) -> Option<usize> {
        let same = self.built_for.len() == candidates.len()
            && self
                .built_for
                .iter()
                .zip(candidates)
                .all(|(&b, c)| b == (c.member, c.weight));
        if !same {
            self.build(candidates);
        }
        let h = key_hash(&r.key, self.hash_key);
        out.hash = Some(h);
        exclude_weight_0(candidates, out);
        let slot = self.table.get((h % TABLE_SIZE as u64) as usize)?;
        Some(usize::from(*slot))
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

    fn keys() -> Vec<Tuple> {
        (0..20_000u32)
            .map(|i| Tuple {
                protocol: 6,
                src: [192, 0, 2, (i % 251) as u8],
                sport: 1024 + (i / 251) as u16,
                dst: [198, 18, 0, 100],
                dport: 80,
            })
            .collect()
    }

    fn assign(m: &mut Maglev, c: &[Candidate]) -> Vec<usize> {
        keys()
            .iter()
            .map(|&k| c[pick_key(m, c, k).0.unwrap()].member)
            .collect()
    }

    #[test]
    fn balanced_and_minimal_disruption() {
        let five = members(5, |_, _| {});
        let mut m = Maglev::new(HashKey::Session);
        let before = assign(&mut m, &five);
        let mut share = [0usize; 5];
        for &b in &before {
            share[b] += 1;
        }
        // Each member gets 20 % ± 1.5 points of the 20,000 keys.
        assert!(
            share.iter().all(|&s| (3700..=4300).contains(&s)),
            "{share:?}"
        );
        // Member 2 leaves: its keys must move; of the others' keys, almost none do.
        let four: Vec<Candidate> = five.iter().copied().filter(|c| c.member != 2).collect();
        let after = assign(&mut m, &four);
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        let forced = share[2];
        let extra = moved - forced;
        assert!(
            before
                .iter()
                .zip(&after)
                .all(|(&b, &a)| b == 2 || b == a || a != 2)
        );
        let frac = moved as f64 / before.len() as f64;
        assert!((0.185..=0.23).contains(&frac), "moved {frac}");
        assert!(extra as f64 / before.len() as f64 <= 0.03, "extra {extra}");
        // Rebuilt back: the same table as before (no hidden state).
        assert_eq!(assign(&mut m, &five), before);
    }

    /// Weights 1, 2 and 0 (IPVS `mh`): about a third and two thirds of the keys, none for the
    /// member of weight 0; weights 2, 2, 2 build the table weights 1, 1, 1 do.
    #[test]
    fn weights_share_the_table() {
        let mut m = Maglev::new(HashKey::Session);
        let weighted = members(3, |i, c| c.weight = [1, 2, 0][i]);
        let mut share = [0usize; 3];
        for b in assign(&mut m, &weighted) {
            share[b] += 1;
        }
        assert_eq!(share[2], 0, "{share:?}");
        assert!((6000..=7300).contains(&share[0]), "{share:?}");
        assert!(!m.may_choose(&weighted[2]) && m.may_choose(&weighted[0]));
        let ones = assign(&mut m, &members(3, |_, _| {}));
        assert_eq!(assign(&mut m, &members(3, |_, c| c.weight = 2)), ones);
        let none = members(2, |_, c| c.weight = 0);
        assert_eq!(pick_key(&mut m, &none, keys()[0]).0, None);
    }

    #[test]
    fn table_is_fixed_across_runs() {
        let three = members(3, |_, _| {});
        let mut a = Maglev::new(HashKey::Session);
        let mut b = Maglev::new(HashKey::Session);
        assert_eq!(assign(&mut a, &three), assign(&mut b, &three));
    }
}
