//! Load-share algorithms (RFC 2391 §5): choose the pool member for a new session.
//!
//! One trait, one file per algorithm, one configuration name each ([`super::config::Algorithm`]).
//! Every algorithm is deterministic and breaks ties by the members' configured order.

mod least_load;
mod round_robin;

use super::config::Algorithm;
pub use least_load::LeastLoad;
pub use round_robin::RoundRobin;

/// A member the algorithm may choose, with the load figures it may compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Pool index of the member.
    pub member: usize,
    /// Sessions bound to it now (§5.1 (2)).
    pub bound: u64,
}

/// A load-share algorithm.
pub trait LoadShare: Send {
    /// Chooses among `candidates` (in configured order, never empty): returns an index into it.
    fn select(&mut self, candidates: &[Candidate]) -> usize;
}

/// The algorithm for a configuration name.
pub fn build(algorithm: Algorithm) -> Box<dyn LoadShare> {
    match algorithm {
        Algorithm::RoundRobin => Box::new(RoundRobin::default()),
        Algorithm::LeastLoad => Box::new(LeastLoad),
    }
}
