//! Round-robin (RFC 2391 §5.1 (1)): "a host is selected simply on round robin basis, without
//! regard to load on the host". One cursor per virtual server, as nftables' `numgen inc` keeps
//! one counter per rule.

use super::{Candidate, LoadShare};

/// Cycles through the candidates in configured order.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: usize,
}

impl LoadShare for RoundRobin {
    fn select(&mut self, candidates: &[Candidate]) -> usize {
        let i = self.next % candidates.len();
        self.next = (i + 1) % candidates.len();
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_in_order() {
        let c: Vec<Candidate> = (0..3)
            .map(|m| Candidate {
                member: m,
                bound: 9,
            })
            .collect();
        let mut rr = RoundRobin::default();
        let picks: Vec<usize> = (0..7).map(|_| rr.select(&c)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
    }
}
