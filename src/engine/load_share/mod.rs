//! Load-share algorithms (RFC 2391 §5): choose the pool member for a new session.
//!
//! One trait, one file per algorithm, one configuration name each ([`super::config::Algorithm`]).
//! Every algorithm is deterministic: it reads only the figures in its [`Candidate`]s (kept by
//! [`super::server_pool`] in capture time) and the session key, and breaks ties by the
//! members' configured order (the order of `candidates`). Each writes the figure it compared
//! for every candidate into [`Scratch::figures`], so every decision can be explained in the
//! report.
//!
//! A new policy is one new file here, one variant in `Algorithm` and one arm in [`build`].

mod cost_least_load;
mod cost_least_traffic;
mod least_load;
mod least_traffic;
mod least_weighted_load;
mod maglev;
mod most_responsive;
mod reported_capacity;
mod round_robin;
mod source_hash;
mod weighted_round_robin;

use super::config::{Algorithm, AlgorithmParams, HashKey, TrafficMeasure};
use super::event::Tuple;
use crate::time::Timestamp;
pub use cost_least_load::CostLeastLoad;
pub use cost_least_traffic::CostLeastTraffic;
pub use least_load::LeastLoad;
pub use least_traffic::LeastTraffic;
pub use least_weighted_load::LeastWeightedLoad;
pub use maglev::Maglev;
pub use most_responsive::MostResponsive;
pub use reported_capacity::ReportedCapacity;
pub use round_robin::RoundRobin;
pub use source_hash::SourceHash;
pub use weighted_round_robin::WeightedRoundRobin;

/// A member the algorithm may choose, with the load figures it may compare.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Pool index of the member.
    pub member: usize,
    /// Its place in the virtual server's member list (configured order, members added by the
    /// pool timeline after them); stable for the whole replay.
    pub rank: usize,
    /// Its address (what the hashing algorithms hash to build their tables).
    pub addr: [u8; 4],
    /// Sessions bound to it now (§5.1 (2)).
    pub bound: u64,
    /// Sum of the session weights bound to it now (§5.1 (4)).
    pub weighted_load: u64,
    /// Packets to and from it over the traffic window (§5.1 (3)).
    pub traffic_packets: u64,
    /// IP bytes to and from it over the traffic window.
    pub traffic_bytes: u64,
    /// Smoothed first-reply time in ns (§5.1 (5)); `None`: not measured yet.
    pub response_ns: Option<f64>,
    /// Last reported capacity (§5.1 active category); `None`: never reported.
    pub capacity: Option<f64>,
    /// Member weight (§5.1 (4)).
    pub weight: u32,
    /// Access cost (§5.2); infinity: unreachable.
    pub cost: f64,
}

impl Candidate {
    /// A candidate with no load, weight 1 and cost 1 (for tests and hand-made states).
    pub fn idle(member: usize) -> Candidate {
        Candidate {
            member,
            rank: member,
            addr: [203, 0, 113, member as u8],
            bound: 0,
            weighted_load: 0,
            traffic_packets: 0,
            traffic_bytes: 0,
            response_ns: None,
            capacity: None,
            weight: 1,
            cost: 1.0,
        }
    }

    /// Traffic over the window, in the configured measure.
    pub fn traffic(&self, measure: TrafficMeasure) -> u64 {
        match measure {
            TrafficMeasure::Bytes => self.traffic_bytes,
            TrafficMeasure::Packets => self.traffic_packets,
        }
    }
}

/// What the algorithm knows about the new session.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    /// The session key (client → VIP).
    pub key: Tuple,
    /// Capture time.
    pub now: Timestamp,
}

/// Where an algorithm writes what it compared; reused across sessions (no allocation).
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    /// One figure per candidate, pre-filled with NaN ("not compared"); infinity: excluded.
    pub figures: Vec<f64>,
    /// For the hashing algorithms: the hash of the key.
    pub hash: Option<u64>,
}

impl Scratch {
    /// Clears for `n` candidates.
    pub fn reset(&mut self, n: usize) {
        self.figures.clear();
        self.figures.resize(n, f64::NAN);
        self.hash = None;
    }
}

/// A load-share algorithm.
pub trait LoadShare: Send {
    /// Chooses among `candidates` (in configured order, never empty): returns an index into it,
    /// or `None` when none can take a new session. Writes the compared figures into `out`
    /// (`out.figures.len() == candidates.len()`).
    fn select(
        &mut self,
        request: &Request,
        candidates: &[Candidate],
        out: &mut Scratch,
    ) -> Option<usize>;

    /// Whether this algorithm could ever choose `c`, whatever the other candidates and its
    /// own state (a weight or a capacity of 0: never). Lets binding know, without choosing,
    /// that a new session would be refused, so that a full table retires nothing for it
    /// (RFC 2391 §2.4: "when it becomes necessary").
    fn may_choose(&self, _c: &Candidate) -> bool {
        true
    }
}

/// The candidates' weights divided by their greatest common divisor (written into `out`):
/// what the hashing algorithms share by, so that weights scaled alike (2, 2, 2 or 1, 1, 1)
/// share alike.
pub fn relative_weights(candidates: &[Candidate], out: &mut Vec<u32>) {
    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let g = candidates.iter().map(|c| c.weight).fold(0, gcd).max(1);
    out.clear();
    out.extend(candidates.iter().map(|c| c.weight / g));
}

/// Marks the candidates of weight 0 excluded (figure infinity) for the hashing algorithms,
/// which compare no figure: they never choose them.
pub fn exclude_weight_0(candidates: &[Candidate], out: &mut Scratch) {
    for (f, c) in out.figures.iter_mut().zip(candidates) {
        if c.weight == 0 {
            *f = f64::INFINITY;
        }
    }
}

/// Writes each candidate's `figure` into `out` and picks the smallest ([`least`]): the whole of
/// every "least figure wins" algorithm but its figure.
pub fn least_by(
    candidates: &[Candidate],
    out: &mut Scratch,
    figure: impl Fn(&Candidate) -> f64,
) -> Option<usize> {
    for (f, c) in out.figures.iter_mut().zip(candidates) {
        *f = figure(c);
    }
    least(&out.figures)
}

/// The index of the smallest figure; ties go to the first (configured order). Infinite and NaN
/// figures are never chosen.
pub fn least(figures: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &f) in figures.iter().enumerate() {
        if !f.is_finite() {
            continue;
        }
        if best.is_none_or(|b| f < figures[b]) {
            best = Some(i);
        }
    }
    best
}

/// `cost × x`, infinite when the cost is (an unreachable member: §5.2 "the cost of access is set
/// to infinity and hence no further load can be assigned to that server"), even when x = 0.
pub fn cost_times(cost: f64, x: f64) -> f64 {
    if cost.is_finite() && cost >= 0.0 {
        cost * x
    } else {
        f64::INFINITY
    }
}

/// A fixed 64-bit mixer (the SplitMix64 / MurmurHash3 finaliser): no seed, the same on every
/// machine and run.
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The hash of what a hashing algorithm hashes: the client address or the whole session key.
pub fn key_hash(key: &Tuple, what: HashKey) -> u64 {
    let src = u64::from(u32::from_be_bytes(key.src));
    match what {
        HashKey::Source => mix64(src ^ 0x5bd1_e995_0000_0000),
        HashKey::Session => {
            let a = (src << 32) | u64::from(u32::from_be_bytes(key.dst));
            let b = (u64::from(key.protocol) << 32)
                | (u64::from(key.sport) << 16)
                | u64::from(key.dport);
            mix64(mix64(a) ^ b.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15)
        }
    }
}

/// The algorithm for a configuration name, with its parameters.
pub fn build(algorithm: Algorithm, params: &AlgorithmParams) -> Box<dyn LoadShare> {
    match algorithm {
        Algorithm::RoundRobin => Box::new(RoundRobin::default()),
        Algorithm::LeastLoad => Box::new(LeastLoad),
        Algorithm::LeastTraffic => Box::new(LeastTraffic(params.traffic)),
        Algorithm::LeastWeightedLoad => Box::new(LeastWeightedLoad),
        Algorithm::MostResponsive => Box::new(MostResponsive),
        Algorithm::ReportedCapacity => Box::new(ReportedCapacity),
        Algorithm::CostLeastLoad => Box::new(CostLeastLoad),
        Algorithm::CostLeastTraffic => Box::new(CostLeastTraffic(params.traffic)),
        Algorithm::WeightedRoundRobin => Box::new(WeightedRoundRobin::default()),
        Algorithm::SourceHash => {
            Box::new(SourceHash::new(params.hash_key.unwrap_or(HashKey::Source)))
        }
        Algorithm::Maglev => Box::new(Maglev::new(params.hash_key.unwrap_or(HashKey::Session))),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Runs `alg` once on `candidates`; returns (pick, figures).
    pub fn pick(alg: &mut dyn LoadShare, candidates: &[Candidate]) -> (Option<usize>, Vec<f64>) {
        pick_key(alg, candidates, Tuple::default())
    }

    /// Same, for a given session key.
    pub fn pick_key(
        alg: &mut dyn LoadShare,
        candidates: &[Candidate],
        key: Tuple,
    ) -> (Option<usize>, Vec<f64>) {
        let mut s = Scratch::default();
        s.reset(candidates.len());
        let r = Request {
            key,
            now: Timestamp(0),
        };
        let p = alg.select(&r, candidates, &mut s);
        (p, s.figures)
    }

    /// Candidates 0..n with `f` applied to each.
    pub fn members(n: usize, f: impl Fn(usize, &mut Candidate)) -> Vec<Candidate> {
        (0..n)
            .map(|i| {
                let mut c = Candidate::idle(i);
                f(i, &mut c);
                c
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_skips_infinite_and_nan_and_prefers_the_first() {
        assert_eq!(least(&[2.0, 1.0, 1.0]), Some(1));
        assert_eq!(least(&[f64::INFINITY, f64::NAN, 3.0]), Some(2));
        assert_eq!(least(&[f64::INFINITY, f64::NAN]), None);
        assert_eq!(cost_times(f64::INFINITY, 0.0), f64::INFINITY);
        assert_eq!(cost_times(2.0, 3.0), 6.0);
    }

    #[test]
    fn hashes_are_fixed() {
        // Fixed values: a change here changes every hashing golden.
        assert_eq!(mix64(0), 0);
        assert_eq!(mix64(1), 0x5692_161d_100b_05e5);
        let k = Tuple {
            protocol: 6,
            src: [192, 0, 2, 1],
            sport: 1000,
            dst: [198, 18, 0, 100],
            dport: 80,
        };
        assert_ne!(
            key_hash(&k, HashKey::Source),
            key_hash(&k, HashKey::Session)
        );
        let k2 = Tuple { sport: 1001, ..k };
        assert_eq!(
            key_hash(&k, HashKey::Source),
            key_hash(&k2, HashKey::Source)
        );
        assert_ne!(
            key_hash(&k, HashKey::Session),
            key_hash(&k2, HashKey::Session)
        );
    }
}

#[cfg(test)]
mod engine_tests;
