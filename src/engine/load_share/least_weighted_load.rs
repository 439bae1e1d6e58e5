//! Least weighted load first (RFC 2391 §5.1 (4)): "The sum of all session loads by weight
//! assigned to a server, divided by weight of server would be evaluated to select the server
//! with least weighted load". Session weights come from each virtual server's
//! `session_weight` (the service's weight, e.g. FTP 5, telnet 1); member weights from the pool.
//! Figure: Σ session weights ÷ member weight (a member of weight 0 takes no new sessions).
//! Ties go to the member configured first.

use super::{Candidate, LoadShare, Request, Scratch, least_by};

/// Smallest weighted load wins.
#[derive(Debug, Default)]
pub struct LeastWeightedLoad;

impl LoadShare for LeastWeightedLoad {
    fn select(
        &mut self,
        _: &Request,
        candidates: &[Candidate],
        out: &mut Scratch,
    ) -> Option<usize> {
        least_by(candidates, out, |c| match c.weight {
            0 => f64::INFINITY,
            w => c.weighted_load as f64 / f64::from(w),
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

    /// The worked example of RFC 2391 §5.1 (4): FTP weighs 5x, telnet x; S3 is three times as
    /// resourceful as S1. S1 carries 1 FTP + 1 telnet = 6x; S3 carries 2 FTP + 5 telnet = 15x,
    /// divided by 3 = 5x. The new telnet session goes to S3.
    #[test]
    fn rfc2391_section_5_1_example() {
        const FTP: u64 = 5;
        const TELNET: u64 = 1;
        let c = members(2, |i, c| {
            if i == 0 {
                c.weight = 1; // S1
                c.weighted_load = FTP + TELNET;
                c.bound = 2;
            } else {
                c.weight = 3; // S3
                c.weighted_load = 2 * FTP + 5 * TELNET;
                c.bound = 7;
            }
        });
        assert_eq!(pick(&mut LeastWeightedLoad, &c), (Some(1), vec![6.0, 5.0]));
    }

    #[test]
    fn weight_zero_never_and_ties_first() {
        let c = members(3, |i, c| {
            c.weight = [0, 2, 1][i];
            c.weighted_load = [0, 4, 2][i];
        });
        assert_eq!(
            pick(&mut LeastWeightedLoad, &c),
            (Some(1), vec![f64::INFINITY, 2.0, 2.0])
        );
        let none = members(2, |_, c| c.weight = 0);
        assert_eq!(pick(&mut LeastWeightedLoad, &none).0, None);
    }
}
