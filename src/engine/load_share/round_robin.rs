//! Round-robin (RFC 2391 §5.1 (1)): "a host is selected simply on round robin basis, without
//! regard to load on the host". One cursor per virtual server, as nftables' `numgen inc` keeps
//! one counter per rule. The cursor is the member chosen last (its place in the configured
//! list), not a position among today's candidates: when a member drops out (dead, draining) or
//! comes back, the turn still passes to the member after the last one chosen, as IPVS `rr`
//! moves on from its last destination. Figure: turns until each candidate's turn (0 = chosen).

use super::{Candidate, LoadShare, Request, Scratch};

/// Cycles through the candidates in configured order.
#[derive(Debug, Default)]
pub struct RoundRobin {
    /// Rank of the member chosen last.
    last: Option<usize>,
}

impl LoadShare for RoundRobin {
    fn select(
        &mut self,
        _: &Request,
        candidates: &[Candidate],
        out: &mut Scratch,
    ) -> Option<usize> {
        let n = candidates.len();
        // The first candidate after the last one chosen, in configured order, else the first.
        let i = self
            .last
            .and_then(|last| candidates.iter().position(|c| c.rank > last))
            .unwrap_or(0);
        self.last = Some(candidates[i].rank);
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

    /// The turn passes to the member after the last one chosen, whatever dropped out or came
    /// back in between.
    #[test]
    fn the_turn_follows_the_last_member_chosen() {
        let all = members(4, |_, _| {});
        let without = |gone: usize| -> Vec<Candidate> {
            all.iter().filter(|c| c.rank != gone).copied().collect()
        };
        let mut rr = RoundRobin::default();
        let member = |rr: &mut RoundRobin, c: &[Candidate]| c[pick(rr, c).0.unwrap()].member;
        assert_eq!(member(&mut rr, &all), 0);
        assert_eq!(member(&mut rr, &all), 1);
        // Member 2 drops out: 3 is next, not 0 (3's position in the shorter list is 2).
        assert_eq!(member(&mut rr, &without(2)), 3);
        assert_eq!(member(&mut rr, &without(2)), 0);
        // Member 1 drops out after 0 was chosen: 2 is next.
        assert_eq!(member(&mut rr, &without(1)), 2);
        // The member chosen last drops out: the turn still moves on from it.
        assert_eq!(member(&mut rr, &without(2)), 3);
        assert_eq!(member(&mut rr, &all), 0);
    }
}
