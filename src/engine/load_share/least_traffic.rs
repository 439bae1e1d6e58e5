//! Least traffic first (RFC 2391 §5.1 (3)): "measure system load by tracking packet count or
//! byte count directed from or to each of the member hosts over a period of time". Figure: the
//! packets or bytes (configured) to and from the member over the sliding window kept by
//! [`crate::engine::server_pool::TrafficWindow`]. Ties go to the member configured first.

use super::{Candidate, LoadShare, Request, Scratch, least_by};
use crate::engine::config::TrafficMeasure;

/// Least traffic over the window wins.
#[derive(Debug)]
pub struct LeastTraffic(pub TrafficMeasure);

impl LoadShare for LeastTraffic {
    fn select(
        &mut self,
        _: &Request,
        candidates: &[Candidate],
        out: &mut Scratch,
    ) -> Option<usize> {
        least_by(candidates, out, |c| c.traffic(self.0) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn least_bytes_or_packets() {
        let c = members(3, |i, c| {
            c.traffic_packets = [10, 50, 10][i];
            c.traffic_bytes = [9000, 3000, 8000][i];
            c.bound = [0, 9, 9][i];
        });
        let mut by_bytes = LeastTraffic(TrafficMeasure::Bytes);
        assert_eq!(
            pick(&mut by_bytes, &c),
            (Some(1), vec![9000.0, 3000.0, 8000.0])
        );
        let mut by_packets = LeastTraffic(TrafficMeasure::Packets);
        // 0 and 2 tie on packets: the first configured wins, sessions bound do not matter.
        assert_eq!(pick(&mut by_packets, &c).0, Some(0));
    }
}
