//! Most responsive member (RFC 2391 §5.1 (5)): "measure the response time to determine how busy
//! the hosts really are". The response time is measured from the capture itself: the time from
//! a session's first packet to the member's first reply (TCP: SYN to SYN-ACK), smoothed by an
//! EWMA in [`crate::engine::server_pool`]. Figure: smoothed response time in ms (NaN: not
//! measured yet). Members not measured yet are tried first (fewest sessions bound among them,
//! then configured order); otherwise the smallest response time wins, ties to the one with fewer
//! sessions bound, then configured order.

use super::{Candidate, LoadShare, Request, Scratch};

/// Fastest first reply wins.
#[derive(Debug, Default)]
pub struct MostResponsive;

impl LoadShare for MostResponsive {
    fn select(
        &mut self,
        _: &Request,
        candidates: &[Candidate],
        out: &mut Scratch,
    ) -> Option<usize> {
        let mut best: Option<(usize, (bool, f64, u64))> = None;
        for (i, (f, c)) in out.figures.iter_mut().zip(candidates).enumerate() {
            *f = c.response_ns.map_or(f64::NAN, |ns| ns / 1e6);
            // Rank: unmeasured first, then response time, then bound sessions.
            let rank = (
                c.response_ns.is_some(),
                c.response_ns.unwrap_or(0.0),
                c.bound,
            );
            let better = match best {
                None => true,
                Some((_, b)) => {
                    (rank.0, rank.1) < (b.0, b.1)
                        || ((rank.0, rank.1) == (b.0, b.1) && rank.2 < b.2)
                }
            };
            if better {
                best = Some((i, rank));
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn unmeasured_first_then_fastest() {
        let c = members(3, |i, c| {
            c.response_ns = [Some(2e6), None, Some(1e6)][i];
            c.bound = [0, 5, 0][i];
        });
        let (p, f) = pick(&mut MostResponsive, &c);
        assert_eq!(p, Some(1));
        assert_eq!((f[0], f[2]), (2.0, 1.0));
        assert!(f[1].is_nan());
        let c = members(3, |i, c| {
            c.response_ns = Some([3e6, 1e6, 1e6][i]);
            c.bound = [0, 4, 2][i];
        });
        assert_eq!(pick(&mut MostResponsive, &c).0, Some(2));
        let c = members(3, |i, c| c.bound = [3, 1, 1][i]);
        assert_eq!(pick(&mut MostResponsive, &c).0, Some(1));
    }
}
