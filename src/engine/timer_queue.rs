//! The queue session timers wait in (RFC 2391 §4.3, §2.4: sessions are unbound in capture-time
//! order, ties broken by session number).
//!
//! A priority queue that exploits how the engine arms timers: nearly every entry is "now plus
//! one of a few fixed spans" (the protocol's idle timeout, the TCP close grace), and capture
//! time only moves forward, so the entries armed with one span arrive already sorted. Entries
//! are appended to sorted runs (the run with the greatest last entry not above the new one, as
//! in patience sorting), and an entry that fits no run, once [`MAX_RUNS`] exist, goes to a
//! binary heap. The smallest entry is the least of the runs' heads and the heap's top. Pushing
//! and popping touch a run's end instead of a path through a heap of millions of entries.
//! Entries come out in exactly the order a single binary heap would give.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Sorted runs kept at most; more distinct spans than this spill into the heap.
const MAX_RUNS: usize = 8;

/// A min-queue of `T` (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct TimerQueue<T: Ord + Copy> {
    runs: Vec<VecDeque<T>>,
    spill: BinaryHeap<Reverse<T>>,
    len: usize,
    /// The smallest entry and where it is (as [`TimerQueue::min_at`] finds it), kept up to
    /// date by every change: the engine peeks once per packet and pops far less often.
    min: Option<(T, Option<usize>)>,
}

impl<T: Ord + Copy> Default for TimerQueue<T> {
    fn default() -> Self {
        TimerQueue {
            runs: Vec::new(),
            spill: BinaryHeap::new(),
            len: 0,
            min: None,
        }
    }
}

impl<T: Ord + Copy> TimerQueue<T> {
    /// Adds an entry.
    pub fn push(&mut self, e: T) {
        self.len += 1;
        let mut best: Option<usize> = None;
        for (i, run) in self.runs.iter().enumerate() {
            match run.back() {
                // An empty run counts as lower than any entry.
                Some(&last)
                    if last <= e
                        && best.is_none_or(|b| self.runs[b].back().is_none_or(|&l| l < last)) =>
                {
                    best = Some(i);
                }
                None => {
                    best.get_or_insert(i);
                }
                _ => {}
            }
        }
        let at = match best {
            Some(i) => {
                self.runs[i].push_back(e);
                Some(i)
            }
            None if self.runs.len() < MAX_RUNS => {
                self.runs.push(VecDeque::from([e]));
                Some(self.runs.len() - 1)
            }
            None => {
                self.spill.push(Reverse(e));
                None
            }
        };
        // An entry equal to the smallest may sit anywhere: equal entries are interchangeable.
        if self.min.is_none_or(|(m, _)| e < m) {
            self.min = Some((e, at));
        }
    }

    /// Where the smallest entry is: a run's index, or `None` for the heap.
    fn min_at(&self) -> Option<(T, Option<usize>)> {
        let mut min = self.spill.peek().map(|r| (r.0, None));
        for (i, run) in self.runs.iter().enumerate() {
            if let Some(&h) = run.front()
                && min.is_none_or(|(m, _)| h < m)
            {
                min = Some((h, Some(i)));
            }
        }
        min
    }

    /// The smallest entry.
    pub fn peek(&self) -> Option<T> {
        self.min.map(|(e, _)| e)
    }

    /// Removes and returns the smallest entry.
    pub fn pop(&mut self) -> Option<T> {
        let (e, at) = self.min?;
        match at {
            Some(i) => {
                self.runs[i].pop_front();
            }
            None => {
                self.spill.pop();
            }
        }
        self.len -= 1;
        self.min = self.min_at();
        Some(e)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.runs.clear();
        self.spill.clear();
        self.len = 0;
        self.min = None;
    }

    /// Replaces the contents with `entries` (in any order).
    pub fn rebuild(&mut self, mut entries: Vec<T>) {
        entries.sort_unstable();
        self.clear();
        self.len = entries.len();
        self.runs.push(VecDeque::from(entries));
        self.min = self.min_at();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded SplitMix64.
    fn rng(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn pops_in_the_order_a_binary_heap_gives() {
        // Timers as the engine arms them: now (moving forward) plus one of a few spans, some
        // re-armed from an older base, with session numbers as tie-breakers.
        for spans in [
            &[60u64][..],
            &[2, 60, 86_400],
            &[1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144],
        ] {
            let mut q = TimerQueue::default();
            let mut heap = BinaryHeap::new();
            let mut s = 3u64;
            let mut now = 0u64;
            for number in 0..50_000u64 {
                now += rng(&mut s) % 3;
                let base = if rng(&mut s).is_multiple_of(10) {
                    now.saturating_sub(rng(&mut s) % 50)
                } else {
                    now
                };
                let e = (
                    base + spans[(rng(&mut s) % spans.len() as u64) as usize],
                    number,
                );
                q.push(e);
                heap.push(Reverse(e));
                assert_eq!(q.peek(), heap.peek().map(|r| r.0));
                while rng(&mut s).is_multiple_of(2)
                    && let Some(Reverse(top)) = heap.peek().copied()
                    && top.0 <= now
                {
                    assert_eq!(q.peek(), Some(top));
                    assert_eq!(q.pop(), heap.pop().map(|r| r.0));
                }
                assert_eq!(q.len(), heap.len());
            }
            while let Some(Reverse(top)) = heap.pop() {
                assert_eq!(q.pop(), Some(top));
            }
            assert_eq!(q.pop(), None);
            assert_eq!(q.len(), 0);
        }
    }

    #[test]
    fn rebuild_keeps_every_entry_in_order() {
        let mut q = TimerQueue::default();
        q.push((5, 1));
        q.rebuild(vec![(9, 2), (3, 7), (3, 4)]);
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop(), Some((3, 4)));
        q.push((4, 0));
        assert_eq!(q.pop(), Some((3, 7)));
        assert_eq!(q.pop(), Some((4, 0)));
        assert_eq!(q.pop(), Some((9, 2)));
        assert_eq!(q.pop(), None);
    }
}
