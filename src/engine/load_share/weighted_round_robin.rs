//! Weighted round-robin, the smooth variant nginx uses (and IPVS `wrr` in spirit): each member
//! gains its weight in credit at every selection, the one with the most credit is chosen and
//! pays back the total weight. Over any run of Σ weights selections each member is chosen
//! exactly `weight` times, interleaved rather than in bursts. Figure: the credit compared
//! (weight 0: never chosen). Ties go to the member configured first. Credit is kept per pool
//! member, so a candidate set that changes (a member drained or dead) keeps the others' credit.

use super::{Candidate, LoadShare, Request, Scratch};

/// Smooth weighted round-robin.
#[derive(Debug, Default)]
pub struct WeightedRoundRobin {
    /// Credit per pool member index.
    credit: Vec<i64>,
}

impl LoadShare for WeightedRoundRobin {
    fn select(
        &mut self,
        _: &Request,
        candidates: &[Candidate],
        out: &mut Scratch,
    ) -> Option<usize> {
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, c) in candidates.iter().enumerate() {
            if c.weight == 0 {
                out.figures[i] = f64::INFINITY;
                continue;
            }
            if self.credit.len() <= c.member {
                self.credit.resize(c.member + 1, 0);
            }
            let w = i64::from(c.weight);
            self.credit[c.member] += w;
            total += w;
            out.figures[i] = self.credit[c.member] as f64;
            if best.is_none_or(|b| self.credit[c.member] > self.credit[candidates[b].member]) {
                best = Some(i);
            }
        }
        if let Some(b) = best {
            self.credit[candidates[b].member] -= total;
        }
        best
    }

    fn may_choose(&self, c: &Candidate) -> bool {
        c.weight > 0
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn smooth_interleaving_by_weight() {
        let c = members(3, |i, c| c.weight = [5, 1, 1][i]);
        let mut w = WeightedRoundRobin::default();
        let picks: Vec<usize> = (0..7).map(|_| pick(&mut w, &c).0.unwrap()).collect();
        // nginx's documented sequence for weights 5, 1, 1: a a b a c a a
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
        let none = members(2, |_, c| c.weight = 0);
        assert_eq!(pick(&mut WeightedRoundRobin::default(), &none).0, None);
    }
}
