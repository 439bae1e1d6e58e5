//! The table address lookup searches (RFC 2391 §4.2): a session's key (§2.2) and its reply key
//! → the session's slot and which way the key's packets flow.
//!
//! Every packet of the replay is looked up here, so the table is built for the memory system
//! rather than for generality. Open addressing with linear probing, at most half full, and
//! deletion by backward shift (no tombstones). An entry is 8 bytes, the key's 32-bit hash
//! beside its slot and flow, so a cache line holds eight and a lookup almost always reads one
//! line; the key itself is not copied here but checked against the session the entry leads
//! to (`FlowKeys`), whose line the packet's translation reads next anyway.
//! `FlowTable::prefetch` lets the replay start a packet's cache miss a few packets before
//! the engine needs it. The hash is a fixed function of the key, so the same input lays the
//! table out the same way on every machine.

use super::event::{Flow, Tuple};

/// Where the keys live: the session (or NAPT entry) in `slot` has one key per flow.
pub(crate) trait FlowKeys {
    /// The key of `slot`'s session that packets flowing `flow` carry, if the slot is live.
    fn key_of(&self, slot: u32, flow: Flow) -> Option<&Tuple>;
}

/// Slots are below 2^30: the two bits above hold the flow.
const SLOT_BITS: u32 = 30;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;

/// The most slots a table can address.
pub(crate) const MAX_SLOTS: usize = 1 << SLOT_BITS;

fn flow_code(f: Flow) -> u64 {
    match f {
        Flow::None => 1,
        Flow::Inbound => 2,
        Flow::Outbound => 3,
    }
}

fn code_flow(c: u64) -> Flow {
    match c {
        2 => Flow::Inbound,
        3 => Flow::Outbound,
        _ => Flow::None,
    }
}

/// An entry: hash (upper 32 bits), flow code (2 bits, never 0), slot (30 bits); 0 is empty.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Entry(u64);

impl Entry {
    fn new(hash: u32, slot: u32, flow: Flow) -> Entry {
        debug_assert!(u64::from(slot) <= SLOT_MASK);
        Entry(u64::from(hash) << 32 | flow_code(flow) << SLOT_BITS | u64::from(slot))
    }
    fn is_empty(self) -> bool {
        self.0 == 0
    }
    fn hash(self) -> u32 {
        (self.0 >> 32) as u32
    }
    fn slot(self) -> u32 {
        (self.0 & SLOT_MASK) as u32
    }
    fn flow(self) -> Flow {
        code_flow(self.0 >> SLOT_BITS & 3)
    }
}

/// The key's hash: a multiply-xorshift mix of its 13 bytes, upper 32 bits kept. A fixed
/// function of the key alone, so it may be computed ahead, on another thread
/// ([`super::Precomputed`]).
pub(crate) fn hash(k: &Tuple) -> u32 {
    let a = u64::from(u32::from_ne_bytes(k.src)) << 32 | u64::from(u32::from_ne_bytes(k.dst));
    let b = u64::from(k.sport) << 24 | u64::from(k.dport) << 8 | u64::from(k.protocol);
    let mut h = (a ^ 0x243f_6a88_85a3_08d3).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= b.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (h >> 32) as u32
}

/// Keys → (slot, flow). See the module docs.
#[derive(Clone, Debug, Default)]
pub(crate) struct FlowTable {
    entries: Vec<Entry>,
    /// log2 of the capacity (0 while empty).
    bits: u32,
    len: usize,
}

impl FlowTable {
    /// Bytes the table holds per key at its fullest (an entry at half load).
    pub const BYTES_PER_KEY: usize = 2 * std::mem::size_of::<Entry>();

    fn home(&self, h: u32) -> usize {
        (u64::from(h) >> (32 - self.bits)) as usize
    }

    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    /// The position of the first entry of hash `h`'s probe run that `hit` accepts.
    fn probe(&self, h: u32, hit: impl Fn(Entry) -> bool) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(h);
        loop {
            let e = self.entries[i];
            if e.is_empty() {
                return None;
            }
            if hit(e) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The first empty position of hash `h`'s probe run (the table is never full).
    fn first_empty(&self, h: u32) -> usize {
        let mask = self.mask();
        let mut i = self.home(h);
        while !self.entries[i].is_empty() {
            i = (i + 1) & mask;
        }
        i
    }

    /// The position of `k`'s entry, if it has one.
    fn find(&self, h: u32, k: &Tuple, keys: &(impl FlowKeys + ?Sized)) -> Option<usize> {
        self.probe(h, |e| {
            e.hash() == h && keys.key_of(e.slot(), e.flow()) == Some(k)
        })
    }

    /// The slot and flow `k` leads to.
    #[inline]
    pub fn get(&self, k: &Tuple, keys: &(impl FlowKeys + ?Sized)) -> Option<(u32, Flow)> {
        self.find(hash(k), k, keys).map(|i| {
            let e = self.entries[i];
            (e.slot(), e.flow())
        })
    }

    /// The slot of the first entry with hash `h` (a key's [`hash`]), without checking the
    /// key: where that key's session most likely is (for prefetching only).
    #[inline]
    pub fn likely_slot(&self, h: u32) -> Option<u32> {
        self.probe(h, |e| e.hash() == h)
            .map(|i| self.entries[i].slot())
    }

    /// Starts loading the cache line the lookup of a key with hash `h` will read first. A
    /// hint only: it changes nothing, and does nothing on targets without a prefetch
    /// instruction.
    #[inline]
    pub fn prefetch(&self, h: u32) {
        if self.len == 0 {
            return;
        }
        let i = self.home(h);
        super::prefetch_lines(&self.entries[i]);
    }

    /// Sets what `k` leads to (replacing what it led to before). `keys` must already hold
    /// the keys of every slot in the table (the new slot's may be absent).
    pub fn insert(&mut self, k: Tuple, slot: u32, flow: Flow, keys: &(impl FlowKeys + ?Sized)) {
        if 2 * (self.len + 1) > self.entries.len() {
            self.grow();
        }
        let h = hash(&k);
        let i = match self.find(h, &k, keys) {
            Some(i) => i,
            None => {
                self.len += 1;
                self.first_empty(h)
            }
        };
        self.entries[i] = Entry::new(h, slot, flow);
    }

    /// Makes `k` lead to `slot` and `flow` unless it already leads somewhere: then nothing
    /// changes and what it leads to is returned. One probe, as [`FlowTable::insert`].
    pub fn insert_new(
        &mut self,
        k: Tuple,
        slot: u32,
        flow: Flow,
        keys: &(impl FlowKeys + ?Sized),
    ) -> Result<(), (u32, Flow)> {
        if 2 * (self.len + 1) > self.entries.len() {
            self.grow();
        }
        let h = hash(&k);
        if let Some(i) = self.find(h, &k, keys) {
            return Err((self.entries[i].slot(), self.entries[i].flow()));
        }
        self.len += 1;
        let i = self.first_empty(h);
        self.entries[i] = Entry::new(h, slot, flow);
        Ok(())
    }

    /// Removes the entry of `k` that leads to `slot` and `flow`, if there is one (a key a
    /// later session took over stays). Reads no keys: a slot has one key per flow.
    pub fn remove(&mut self, k: &Tuple, slot: u32, flow: Flow) {
        let want = Entry::new(hash(k), slot, flow);
        if let Some(i) = self.probe(want.hash(), |e| e == want) {
            self.remove_at(i);
        }
    }

    /// Empties position `hole` and shifts later entries of its probe run back into it, so
    /// every entry stays reachable from its home slot without tombstones.
    fn remove_at(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut j = (hole + 1) & mask;
        loop {
            let e = self.entries[j];
            if e.is_empty() {
                break;
            }
            let home = self.home(e.hash());
            // `e` may move back to the hole unless its home lies cyclically in (hole, j].
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.entries[hole] = e;
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.entries[hole] = Entry::default();
        self.len -= 1;
    }

    fn grow(&mut self) {
        let bits = (self.bits + 1).max(10);
        let old = std::mem::replace(&mut self.entries, vec![Entry::default(); 1 << bits]);
        self.bits = bits;
        for e in old.into_iter().filter(|e| !e.is_empty()) {
            let i = self.first_empty(e.hash());
            self.entries[i] = e;
        }
    }

    /// Keys held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn key(n: u64) -> Tuple {
        Tuple {
            protocol: [6, 17, 1][(n % 3) as usize],
            src: ((n >> 2) as u32).to_be_bytes(),
            sport: (n as u16).wrapping_mul(7919),
            dst: [203, 0, 113, (n % 5) as u8],
            dport: [80, 53, 0][(n % 3) as usize],
        }
    }

    /// A seeded SplitMix64.
    fn rng(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Sessions as the engine keeps them: slot → (inbound key, outbound key).
    #[derive(Default)]
    struct Slots(Vec<Option<[Tuple; 2]>>);

    impl FlowKeys for Slots {
        fn key_of(&self, slot: u32, flow: Flow) -> Option<&Tuple> {
            let keys = self.0.get(slot as usize)?.as_ref()?;
            match flow {
                Flow::Inbound => Some(&keys[0]),
                Flow::Outbound => Some(&keys[1]),
                Flow::None => None,
            }
        }
    }

    #[test]
    fn agrees_with_a_hash_map_as_sessions_come_and_go() {
        let mut t = FlowTable::default();
        let mut slots = Slots::default();
        let mut m: HashMap<Tuple, (u32, Flow)> = HashMap::new();
        let mut free: Vec<u32> = Vec::new();
        let mut live: Vec<u32> = Vec::new();
        let mut s = 7u64;
        for step in 0..100_000u32 {
            if live.is_empty() || rng(&mut s).is_multiple_of(2) {
                // Bind a session with two fresh keys (one may repeat a live key: replaced).
                let keys = [
                    key(rng(&mut s) % 20_000),
                    key(20_000 + rng(&mut s) % 20_000),
                ];
                let slot = free.pop().unwrap_or_else(|| {
                    slots.0.push(None);
                    (slots.0.len() - 1) as u32
                });
                t.insert(keys[0], slot, Flow::Inbound, &slots);
                t.insert(keys[1], slot, Flow::Outbound, &slots);
                m.insert(keys[0], (slot, Flow::Inbound));
                m.insert(keys[1], (slot, Flow::Outbound));
                slots.0[slot as usize] = Some(keys);
                live.push(slot);
            } else {
                // Unbind one: its keys go unless a later session took them over.
                let at = (rng(&mut s) % live.len() as u64) as usize;
                let slot = live.swap_remove(at);
                let keys = slots.0[slot as usize].unwrap();
                for (k, flow) in [(keys[0], Flow::Inbound), (keys[1], Flow::Outbound)] {
                    t.remove(&k, slot, flow);
                    if m.get(&k) == Some(&(slot, flow)) {
                        m.remove(&k);
                    }
                }
                slots.0[slot as usize] = None;
                free.push(slot);
            }
            assert_eq!(t.len(), m.len(), "step {step}");
            let probe = key(rng(&mut s) % 40_000);
            assert_eq!(t.get(&probe, &slots), m.get(&probe).copied(), "step {step}");
        }
        for (k, v) in &m {
            assert_eq!(t.get(k, &slots), Some(*v));
            assert!(t.likely_slot(hash(k)).is_some());
        }
    }

    /// `insert_new` on a key in use changes nothing, however often: no entry is added (a
    /// refused session leaves the table as it was; its slot's key is not there to compare).
    #[test]
    fn insert_new_leaves_a_key_in_use_alone() {
        let mut t = FlowTable::default();
        let mut slots = Slots::default();
        slots.0.push(Some([key(1), key(2)]));
        t.insert(key(2), 0, Flow::Outbound, &slots);
        for n in 1..=1000u32 {
            slots.0.push(None);
            assert_eq!(
                t.insert_new(key(2), n, Flow::Outbound, &slots),
                Err((0, Flow::Outbound))
            );
        }
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(&key(2), &slots), Some((0, Flow::Outbound)));
        assert_eq!(t.insert_new(key(1), 0, Flow::Inbound, &slots), Ok(()));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn keys_differing_in_one_field_are_different_keys() {
        let mut t = FlowTable::default();
        let k = key(42);
        let mut slots = Slots::default();
        slots.0.push(Some([k, key(43)]));
        t.insert(k, 0, Flow::Inbound, &slots);
        for other in [
            Tuple { protocol: 99, ..k },
            Tuple {
                sport: k.sport ^ 1,
                ..k
            },
            Tuple {
                dport: k.dport ^ 1,
                ..k
            },
            Tuple {
                src: [1, 2, 3, 4],
                ..k
            },
            Tuple {
                dst: [1, 2, 3, 4],
                ..k
            },
        ] {
            assert_eq!(t.get(&other, &slots), None);
        }
        assert_eq!(t.get(&k, &slots), Some((0, Flow::Inbound)));
        t.remove(&k, 0, Flow::Outbound);
        t.remove(&k, 1, Flow::Inbound);
        assert_eq!(t.get(&k, &slots), Some((0, Flow::Inbound)));
        t.prefetch(hash(&k));
        t.remove(&k, 0, Flow::Inbound);
        assert_eq!(t.get(&k, &slots), None);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn stays_at_most_half_full() {
        let mut t = FlowTable::default();
        let slots = Slots::default();
        for n in 0..100_000 {
            t.insert(key(n), n as u32, Flow::Inbound, &slots);
            assert!(2 * t.len() <= t.entries.len());
        }
        assert_eq!(std::mem::size_of::<Entry>(), 8);
    }
}
