//! Why a session went where it went: the algorithm, the figure it compared for each candidate,
//! the member chosen, and what client affinity did (RFC 2391 §5, RSerPool requirements §5).
//! Fixed size and `Copy`: carried by [`super::Event::Bound`] without allocation.

use super::config::Algorithm;

/// At most this many candidates are listed in a decision (all are counted).
pub const DECISION_LIST: usize = 16;

/// One candidate as the algorithm saw it.
#[derive(Clone, Copy, Debug, Default)]
pub struct DecisionEntry {
    /// Pool index of the member.
    pub member: u32,
    /// Its address.
    pub addr: [u8; 4],
    /// The figure compared (see [`Algorithm::figure`]); NaN: not compared or not measured;
    /// infinity: excluded (unreachable, weight 0, capacity 0).
    pub figure: f64,
    /// Sessions bound to it at the time (saturating at u32::MAX).
    pub bound: u32,
}

/// Why client affinity could not be kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AffinityBreak {
    /// The affinity timeout passed since the client's last session.
    Timeout,
    /// The member is no longer in the virtual server's pool.
    Removed,
    /// The member is draining (takes no new sessions).
    Draining,
    /// The member was declared dead (RFC 2391 §6).
    Dead,
    /// The member's access cost is infinite (RFC 2391 §5.2: unreachable).
    Unreachable,
}

impl AffinityBreak {
    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            AffinityBreak::Timeout => "timeout",
            AffinityBreak::Removed => "member-removed",
            AffinityBreak::Draining => "member-draining",
            AffinityBreak::Dead => "member-dead",
            AffinityBreak::Unreachable => "member-unreachable",
        }
    }
}

/// What client affinity did for a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum AffinityOutcome {
    /// Affinity is not configured for this virtual server.
    #[default]
    Off,
    /// The client had no live affinity: chosen by the algorithm, remembered from now.
    New,
    /// The client went back to the member it used last (the algorithm was not asked).
    Kept,
    /// The client's member could not take it; chosen by the algorithm.
    Broken(AffinityBreak),
}

impl AffinityOutcome {
    /// Stable name (`broken` for every [`AffinityOutcome::Broken`]).
    pub fn name(self) -> &'static str {
        match self {
            AffinityOutcome::Off => "off",
            AffinityOutcome::New => "new",
            AffinityOutcome::Kept => "kept",
            AffinityOutcome::Broken(_) => "broken",
        }
    }
}

/// A binding decision.
#[derive(Clone, Copy, Debug)]
pub struct Decision {
    /// The algorithm asked (also set when affinity kept the member and it was not asked).
    pub algorithm: Algorithm,
    /// Pool index of the chosen member.
    pub chosen: u32,
    /// Its address.
    pub chosen_addr: [u8; 4],
    /// How many members were considered (candidates plus excluded ones).
    pub considered: u32,
    /// How many of them are in `entries`.
    pub listed: u8,
    /// The first [`DECISION_LIST`] candidates, in configured order.
    pub entries: [DecisionEntry; DECISION_LIST],
    /// The key's hash, for the hashing algorithms.
    pub hash: Option<u64>,
    /// What affinity did.
    pub affinity: AffinityOutcome,
}

impl Decision {
    /// An empty decision for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Decision {
        Decision {
            algorithm,
            chosen: 0,
            chosen_addr: [0; 4],
            considered: 0,
            listed: 0,
            entries: [DecisionEntry::default(); DECISION_LIST],
            hash: None,
            affinity: AffinityOutcome::Off,
        }
    }

    /// Adds a candidate (kept only if there is room; always counted).
    pub fn push(&mut self, member: usize, addr: [u8; 4], figure: f64, bound: u64) {
        if usize::from(self.listed) < DECISION_LIST {
            self.entries[usize::from(self.listed)] = DecisionEntry {
                member: member as u32,
                addr,
                figure,
                bound: u32::try_from(bound).unwrap_or(u32::MAX),
            };
            self.listed += 1;
        }
        self.considered += 1;
    }

    /// The listed candidates.
    pub fn entries(&self) -> &[DecisionEntry] {
        &self.entries[..usize::from(self.listed)]
    }
}

impl PartialEq for Decision {
    fn eq(&self, o: &Self) -> bool {
        self.algorithm == o.algorithm
            && self.chosen == o.chosen
            && self.chosen_addr == o.chosen_addr
            && self.considered == o.considered
            && self.hash == o.hash
            && self.affinity == o.affinity
            && self.entries().len() == o.entries().len()
            && self.entries().iter().zip(o.entries()).all(|(a, b)| {
                a.member == b.member
                    && a.addr == b.addr
                    && a.bound == b.bound
                    && a.figure.to_bits() == b.figure.to_bits()
            })
    }
}

impl Eq for Decision {}
