//! Round-robin (RFC 2391 §5.1 (1)): "a host is selected simply on round robin basis, without
//! regard to load on the host". One cursor per virtual server, as nftables' `numgen inc` keeps
//! one counter per rule. Figure: turns until each candidate's turn (0 = chosen).

use super::{Candidate, LoadShare, Request, Scratch};

/// Cycles through the candidates in configured order.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: usize,
}

impl LoadShare for RoundRobin {
    fn select(
        &mut self,
        _: &Request,
        candidates: &[Candidate],
        out: &mut Scratch,
    ) -> Option<usize> {
        let n = candidates.len();
        let i = self.next % n;
        self.next = (i + 1) % n;
        for (j, f) in out.figures.iter_mut().enumerate() {
            *f = ((j + n - i) % n) as f64;
        }
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn cycles_in_order() {
        let c = members(3, |_, c| c.bound = 9);
        let mut rr = RoundRobin::default();
        let picks: Vec<usize> = (0..7).map(|_| pick(&mut rr, &c).0.unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(pick(&mut rr, &c).1, [2.0, 0.0, 1.0]);
    }
}
