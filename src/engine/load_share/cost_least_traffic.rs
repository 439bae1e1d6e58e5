//! Weighted least traffic by access cost (RFC 2391 §5.2 (2)): "the product of cost and traffic
//! load (over a fixed duration) for each server would be evaluated to select the server with
//! least weighted traffic load". Figure: cost × packets or bytes (configured) over the traffic
//! window (infinite cost: never chosen). Ties go to the member configured first.

use super::{Candidate, LoadShare, Request, Scratch, cost_times, least_by};
use crate::engine::config::TrafficMeasure;

/// Smallest cost × traffic wins.
#[derive(Debug)]
pub struct CostLeastTraffic(pub TrafficMeasure);

impl LoadShare for CostLeastTraffic {
    fn select(
        &mut self,
        _: &Request,
        candidates: &[Candidate],
        out: &mut Scratch,
    ) -> Option<usize> {
        least_by(candidates, out, |c| {
            cost_times(c.cost, c.traffic(self.0) as f64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn cost_times_traffic() {
        let c = members(3, |i, c| {
            c.cost = [3.0, 1.0, f64::INFINITY][i];
            c.traffic_bytes = [100, 400, 0][i];
            c.traffic_packets = [1, 4, 0][i];
        });
        assert_eq!(
            pick(&mut CostLeastTraffic(TrafficMeasure::Bytes), &c),
            (Some(0), vec![300.0, 400.0, f64::INFINITY])
        );
        assert_eq!(
            pick(&mut CostLeastTraffic(TrafficMeasure::Packets), &c),
            (Some(0), vec![3.0, 4.0, f64::INFINITY])
        );
    }
}
