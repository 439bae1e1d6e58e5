//! Least load first (RFC 2391 §5.1 (2)): "the host with least number of sessions bound to it is
//! selected". Ties go to the member configured first.

use super::{Candidate, LoadShare};

/// Fewest bound sessions wins.
#[derive(Debug, Default)]
pub struct LeastLoad;

impl LoadShare for LeastLoad {
    fn select(&mut self, candidates: &[Candidate]) -> usize {
        let mut best = 0;
        for (i, c) in candidates.iter().enumerate() {
            if c.bound < candidates[best].bound {
                best = i;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewest_bound_then_first_configured() {
        let c = |loads: &[u64]| -> Vec<Candidate> {
            loads
                .iter()
                .enumerate()
                .map(|(member, &bound)| Candidate { member, bound })
                .collect()
        };
        assert_eq!(LeastLoad.select(&c(&[3, 1, 2])), 1);
        assert_eq!(LeastLoad.select(&c(&[2, 1, 1])), 1);
        assert_eq!(LeastLoad.select(&c(&[0, 0, 0])), 0);
    }
}
