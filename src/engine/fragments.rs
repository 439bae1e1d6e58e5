//! IPv4 fragments at the modelled router (RFC 791 §3.2 fragmentation and reassembly, RFC 3022
//! §4.1/§6.3 fragments at a NAT, RFC 1812 §5.2.6/§5.3.1).
//!
//! A NAT can only find the session of a fragmented datagram through its first fragment: only it
//! carries the transport ports. Two tables serve the later fragments:
//!
//! - `FragmentTable`: the fate the first fragment got (its translation, or passed or dropped
//!   as it was), keyed by the datagram's identity (source, destination, protocol,
//!   identification — RFC 791), kept for `fragment_timeout` so later fragments get the same.
//! - `FragmentHold`: later fragments that arrived *before* their first fragment, held in a
//!   bounded buffer (at most `fragment_hold_max` fragments and `fragment_hold_bytes` bytes)
//!   for at most `fragment_timeout` (RFC 791's reassembly timer plays the same part). When the
//!   first fragment comes they are released, in arrival order, with its fate; when the timer
//!   fires first they are dropped and reported. A fragment that does not fit is dropped at once
//!   (`fragment-hold-full`): like a reassembly queue over its memory threshold, the buffer never
//!   evicts what it already holds.
//!
//! Both tables reuse their storage: a held fragment's bytes go into a buffer taken from a spare
//! list and returned to it, so holding allocates only until the buffer has grown to its bound.

use super::event::{Flow, Verdict};
use crate::time::{Span, Timestamp};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;

/// Identifies the fragments of one datagram (RFC 791): source, destination, protocol, id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FragmentKey {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub protocol: u8,
    pub ident: u16,
}

impl FragmentKey {
    /// The key of the datagram `ip` is a fragment of, as it arrived from `src` to `dst` (its
    /// addresses before any rewrite).
    pub fn arrived(src: [u8; 4], dst: [u8; 4], ip: &crate::wire::Ipv4) -> FragmentKey {
        FragmentKey {
            src,
            dst,
            protocol: ip.protocol,
            ident: ip.ident,
        }
    }
}

/// What a first fragment got, kept for the later fragments of its datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FragmentFate {
    /// Translated for session `number`, in `slot`, on `flow`.
    Translated { slot: u32, number: u64, flow: Flow },
    /// Translated for NAPT session `number` (RFC 2391 §3.2), in `slot` of the NAPT table, on
    /// `flow`.
    Napt { slot: u32, number: u64, flow: Flow },
    /// Passed unchanged or dropped, with this verdict.
    Like(Verdict),
}

/// A first fragment's fate and when it stops applying.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FragmentEntry {
    pub fate: FragmentFate,
    pub expires: Timestamp,
}

/// First fragments' fates, expiring after a configurable time.
pub(crate) struct FragmentTable {
    timeout: Span,
    map: FxHashMap<FragmentKey, FragmentEntry>,
    order: VecDeque<(Timestamp, FragmentKey)>,
}

impl FragmentTable {
    pub fn new(timeout: Span) -> Self {
        FragmentTable {
            timeout,
            map: FxHashMap::default(),
            order: VecDeque::new(),
        }
    }

    pub fn insert(&mut self, now: Timestamp, key: FragmentKey, fate: FragmentFate) {
        let expires = now.add(self.timeout);
        self.map.insert(key, FragmentEntry { fate, expires });
        self.order.push_back((expires, key));
    }

    pub fn get(&self, key: &FragmentKey) -> Option<FragmentEntry> {
        self.map.get(key).copied()
    }

    pub fn expire(&mut self, now: Timestamp) {
        while let Some(&(t, key)) = self.order.front() {
            if t > now {
                break;
            }
            self.order.pop_front();
            if self.map.get(&key).is_some_and(|e| e.expires <= now) {
                self.map.remove(&key);
            }
        }
    }
}

/// Limits of the hold buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldLimits {
    /// Most fragments held at once (0 disables holding: such fragments are dropped at once).
    pub max_fragments: usize,
    /// Most bytes (IPv4 datagram bytes as captured) held at once.
    pub max_bytes: usize,
    /// How long a fragment waits for its first fragment.
    pub timeout: Span,
}

/// One held fragment.
pub(crate) struct Held {
    /// Hold number (1-based, in holding order), reported in [`super::Verdict::Held`].
    pub id: u64,
    pub key: FragmentKey,
    pub arrived: Timestamp,
    /// The IPv4 datagram as captured.
    pub data: Vec<u8>,
}

/// Why a fragment could not be held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HoldRefused {
    /// Holding is disabled (`fragment_hold_max = 0`).
    Disabled,
    /// The buffer is full (fragments or bytes).
    Full,
}

/// Later fragments waiting for their first fragment, in arrival order.
pub(crate) struct FragmentHold {
    limits: HoldLimits,
    held: VecDeque<Held>,
    bytes: usize,
    spare: Vec<Vec<u8>>,
    next_id: u64,
}

impl FragmentHold {
    pub fn new(limits: HoldLimits) -> Self {
        FragmentHold {
            limits,
            held: VecDeque::new(),
            bytes: 0,
            spare: Vec::new(),
            next_id: 1,
        }
    }

    /// Fragments held now.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Holds a copy of `data` (a later fragment of datagram `key`), returning its hold number.
    pub fn hold(
        &mut self,
        now: Timestamp,
        key: FragmentKey,
        data: &[u8],
    ) -> Result<u64, HoldRefused> {
        if self.limits.max_fragments == 0 {
            return Err(HoldRefused::Disabled);
        }
        if self.held.len() >= self.limits.max_fragments
            || self.bytes + data.len() > self.limits.max_bytes
        {
            return Err(HoldRefused::Full);
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        let id = self.next_id;
        self.next_id += 1;
        self.bytes += data.len();
        self.held.push_back(Held {
            id,
            key,
            arrived: now,
            data: buf,
        });
        Ok(id)
    }

    /// Whether any fragment of datagram `key` is held.
    pub fn holds(&self, key: &FragmentKey) -> bool {
        !self.held.is_empty() && self.held.iter().any(|h| h.key == *key)
    }

    /// Takes out the oldest held fragment of datagram `key` (call until `None`: arrival order).
    pub fn take(&mut self, key: &FragmentKey) -> Option<Held> {
        let i = self.held.iter().position(|h| h.key == *key)?;
        let h = self.held.remove(i)?;
        self.bytes -= h.data.len();
        Some(h)
    }

    /// Takes out the oldest fragment whose wait ended at or before `now` (call until `None`),
    /// with the instant its wait ended.
    pub fn take_expired(&mut self, now: Timestamp) -> Option<(Held, Timestamp)> {
        let due = self.held.front()?.arrived.add(self.limits.timeout);
        if due > now {
            return None;
        }
        let h = self.held.pop_front()?;
        self.bytes -= h.data.len();
        Some((h, due))
    }

    /// Takes out the oldest held fragment whatever its age (end of the replay).
    pub fn take_any(&mut self) -> Option<Held> {
        let h = self.held.pop_front()?;
        self.bytes -= h.data.len();
        Some(h)
    }

    /// Returns a fragment's buffer for reuse.
    pub fn recycle(&mut self, data: Vec<u8>) {
        if self.spare.len() < self.limits.max_fragments {
            self.spare.push(data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ident: u16) -> FragmentKey {
        FragmentKey {
            src: [198, 51, 100, 7],
            dst: [198, 18, 0, 100],
            protocol: 17,
            ident,
        }
    }

    fn hold(max_fragments: usize, max_bytes: usize) -> FragmentHold {
        FragmentHold::new(HoldLimits {
            max_fragments,
            max_bytes,
            timeout: Span::from_secs(30),
        })
    }

    #[test]
    fn bounded_by_count_and_bytes() {
        let mut h = hold(2, 1000);
        let t = Timestamp(0);
        assert_eq!(h.hold(t, key(1), &[0; 400]), Ok(1));
        assert_eq!(h.hold(t, key(1), &[0; 700]), Err(HoldRefused::Full));
        assert_eq!(h.hold(t, key(2), &[0; 600]), Ok(2));
        assert_eq!(h.hold(t, key(3), &[0; 1]), Err(HoldRefused::Full));
        assert_eq!(h.len(), 2);
        let one = h.take(&key(1)).unwrap();
        h.recycle(one.data);
        assert_eq!(h.hold(t, key(3), &[0; 400]), Ok(3));
        assert_eq!(
            hold(0, 1000).hold(t, key(1), &[0]),
            Err(HoldRefused::Disabled)
        );
    }

    #[test]
    fn releases_in_arrival_order_per_datagram() {
        let mut h = hold(8, 10_000);
        for (i, k) in [5u16, 6, 5, 5].into_iter().enumerate() {
            h.hold(Timestamp(i as u64), key(k), &[i as u8]).unwrap();
        }
        assert!(h.holds(&key(5)) && !h.holds(&key(7)));
        let order: Vec<u64> = std::iter::from_fn(|| h.take(&key(5)).map(|x| x.id)).collect();
        assert_eq!(order, [1, 3, 4]);
        assert_eq!(h.len(), 1);
        assert_eq!(h.take(&key(6)).map(|x| x.data), Some(vec![1]));
    }

    #[test]
    fn times_out_oldest_first_at_the_deadline() {
        let mut h = hold(8, 10_000);
        let s = |n: u64| Timestamp(n * 1_000_000_000);
        h.hold(s(1), key(1), &[1]).unwrap();
        h.hold(s(10), key(2), &[2]).unwrap();
        assert!(h.take_expired(s(30)).is_none());
        let (first, due) = h.take_expired(s(45)).unwrap();
        assert_eq!((first.id, due), (1, s(31)));
        let (second, due) = h.take_expired(s(45)).unwrap();
        assert_eq!((second.id, due), (2, s(40)));
        assert!(h.take_expired(s(45)).is_none());
    }
}
