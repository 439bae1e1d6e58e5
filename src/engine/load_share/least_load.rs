//! Least load first (RFC 2391 §5.1 (2)): "the host with least number of sessions bound to it is
//! selected". Figure: sessions bound. Ties go to the member configured first.

use super::{Candidate, LoadShare, Request, Scratch, least_by};

/// Fewest bound sessions wins.
#[derive(Debug, Default)]
pub struct LeastLoad;

impl LoadShare for LeastLoad {
    fn select(
        &mut self,
        _: &Request,
        candidates: &[Candidate],
        out: &mut Scratch,
    ) -> Option<usize> {
        least_by(candidates, out, |c| c.bound as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn fewest_bound_then_first_configured() {
        let c = |loads: &'static [u64]| members(loads.len(), |i, c| c.bound = loads[i]);
        assert_eq!(pick(&mut LeastLoad, &c(&[3, 1, 2])).0, Some(1));
        assert_eq!(pick(&mut LeastLoad, &c(&[2, 1, 1])).0, Some(1));
        assert_eq!(pick(&mut LeastLoad, &c(&[0, 0, 0])).0, Some(0));
        assert_eq!(pick(&mut LeastLoad, &c(&[3, 1, 2])).1, [3.0, 1.0, 2.0]);
    }
}
