//! Member-reported capacity (RFC 2391 §5.1, the active category: "An agent software on each node
//! would notify the monitoring agent on resource availability"). Reports are a time series of
//! (timestamp, member, capacity) replayed in capture time; the capacity acts as a dynamic weight:
//! figure = sessions bound ÷ last reported capacity (a member that never reported counts as
//! capacity 1; capacity 0 takes no new sessions). Smallest wins, ties to the member configured
//! first.

use super::{Candidate, LoadShare, Request, Scratch, least};

/// Most spare capacity per bound session wins.
#[derive(Debug, Default)]
pub struct ReportedCapacity;

impl LoadShare for ReportedCapacity {
    fn select(
        &mut self,
        _: &Request,
        candidates: &[Candidate],
        out: &mut Scratch,
    ) -> Option<usize> {
        for (f, c) in out.figures.iter_mut().zip(candidates) {
            let cap = c.capacity.unwrap_or(1.0);
            *f = if cap > 0.0 && cap.is_finite() {
                c.bound as f64 / cap
            } else {
                f64::INFINITY
            };
        }
        least(&out.figures)
    }

    fn may_choose(&self, c: &Candidate) -> bool {
        c.capacity.unwrap_or(1.0) > 0.0 && c.capacity.unwrap_or(1.0).is_finite()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn load_per_capacity() {
        let c = members(3, |i, c| {
            c.capacity = [Some(0.5), Some(1.0), Some(0.0)][i];
            c.bound = [1, 3, 0][i];
        });
        assert_eq!(
            pick(&mut ReportedCapacity, &c),
            (Some(0), vec![2.0, 3.0, f64::INFINITY])
        );
        let c = members(2, |i, c| {
            c.capacity = [None, Some(2.0)][i];
            c.bound = [1, 2][i];
        });
        assert_eq!(pick(&mut ReportedCapacity, &c), (Some(0), vec![1.0, 1.0]));
    }
}
