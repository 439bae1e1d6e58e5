//! Weighted least load by access cost (RFC 2391 §5.2 (1)): "The product of cost and session load
//! for each server would be evaluated to select the server with least weighted load ... When a
//! server is not accessible due to network failure, the cost of access is set to infinity and
//! hence no further load can be assigned to that server". Figure: cost × sessions bound
//! (infinite cost: never chosen, even with no session). Ties go to the member configured first.

use super::{Candidate, LoadShare, Request, Scratch, cost_times, least_by};

/// Smallest cost × bound sessions wins.
#[derive(Debug, Default)]
pub struct CostLeastLoad;

impl LoadShare for CostLeastLoad {
    fn select(
        &mut self,
        _: &Request,
        candidates: &[Candidate],
        out: &mut Scratch,
    ) -> Option<usize> {
        least_by(candidates, out, |c| cost_times(c.cost, c.bound as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn cost_times_load_and_unreachable() {
        let c = members(3, |i, c| {
            c.cost = [2.0, 1.0, f64::INFINITY][i];
            c.bound = [2, 3, 0][i];
        });
        assert_eq!(
            pick(&mut CostLeastLoad, &c),
            (Some(1), vec![4.0, 3.0, f64::INFINITY])
        );
        let all_down = members(2, |_, c| c.cost = f64::INFINITY);
        assert_eq!(pick(&mut CostLeastLoad, &all_down).0, None);
        // Over a run, a member costing twice as much carries half the sessions.
        let mut c = members(2, |i, c| c.cost = [2.0, 1.0][i]);
        for _ in 0..30 {
            let p = pick(&mut CostLeastLoad, &c).0.unwrap();
            c[p].bound += 1;
        }
        assert_eq!((c[0].bound, c[1].bound), (10, 20));
    }
}
