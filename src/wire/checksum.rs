//! Internet checksum arithmetic: the RFC 1071 sum and the RFC 1624 incremental update.
//!
//! Every header the engine rewrites gets its checksum updated with RFC 1624 eqn. 3,
//! `HC' = ~(~HC + ~m + m')`, never recomputed. A checksum that was wrong on input therefore
//! stays wrong by exactly the same amount, which is what a conformance tool must show.

/// One's-complement sum of `data` as big-endian 16-bit words (odd tail padded with zero),
/// folded to 16 bits, not complemented (RFC 1071).
pub fn sum(data: &[u8]) -> u16 {
    fold(sum_words(data, 0))
}

/// Accumulates `data` into a partial sum of big-endian 16-bit words (fold with [`fold`]).
///
/// RFC 1071 §2: the one's-complement sum is independent of byte order, and the sum of
/// 32-bit words with end-around carry (§2 (C)) folds to the same 16 bits as the sum of
/// 16-bit words (2^32 ≡ 1 modulo 2^16 − 1). So whole 4-byte words are added as native
/// numbers into a 64-bit total (no carry is lost: a packet has far fewer than 2^32 words),
/// which the compiler turns into vector adds; the folded result is byte-swapped once to
/// network order, and the tail (at an even offset) is added word by word. Where the CPU has
/// AVX2 the same loop is compiled for it as well and chosen at run time.
pub fn sum_words(data: &[u8], acc: u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { sum_words_avx2(data, acc) };
    }
    sum_words_any(data, acc)
}

/// [`sum_words`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sum_words_avx2(data: &[u8], acc: u64) -> u64 {
    sum_words_any(data, acc)
}

/// [`sum_words`] for any CPU (inlined into each variant, so each is vectorised for its own).
#[inline(always)]
fn sum_words_any(data: &[u8], acc: u64) -> u64 {
    let mut words = data.chunks_exact(4);
    let mut sum = 0u64;
    for w in &mut words {
        sum += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    let folded = fold(sum);
    let mut acc = acc
        + u64::from(if cfg!(target_endian = "little") {
            folded.swap_bytes()
        } else {
            folded
        });
    let rest = words.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a partial sum to 16 bits with end-around carry.
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// RFC 1624 eqn. 3 for one 16-bit field: `HC' = ~(~HC + ~m + m')`.
#[inline]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let acc = u32::from(!hc) + u32::from(!old) + u32::from(new);
    !fold32(acc)
}

/// RFC 1624 eqn. 3 for a 32-bit field (an IPv4 address), as two 16-bit words.
#[inline]
pub fn update32(hc: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    let acc = u32::from(!hc)
        + u32::from(!u16::from_be_bytes([old[0], old[1]]))
        + u32::from(!u16::from_be_bytes([old[2], old[3]]))
        + u32::from(u16::from_be_bytes([new[0], new[1]]))
        + u32::from(u16::from_be_bytes([new[2], new[3]]));
    !fold32(acc)
}

/// One's complement addition of two 16-bit words (RFC 1071).
#[inline]
pub fn ones_add(a: u16, b: u16) -> u16 {
    fold32(u32::from(a) + u32::from(b))
}

#[inline]
fn fold32(mut acc: u32) -> u16 {
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// The RFC 768 rule for a UDP checksum after an update: zero on input means "no checksum" and
/// stays zero (the caller must not update it); a computed zero is transmitted as all ones.
#[inline]
pub fn udp_nonzero(c: u16) -> u16 {
    if c == 0 { 0xffff } else { c }
}

/// The sum of the IPv4 pseudo-header (RFC 793 / RFC 768): source, destination, zero+protocol,
/// transport length.
pub fn pseudo_header(src: [u8; 4], dst: [u8; 4], protocol: u8, len: u16) -> u64 {
    u64::from(u16::from_be_bytes([src[0], src[1]]))
        + u64::from(u16::from_be_bytes([src[2], src[3]]))
        + u64::from(u16::from_be_bytes([dst[0], dst[1]]))
        + u64::from(u16::from_be_bytes([dst[2], dst[3]]))
        + u64::from(protocol)
        + u64::from(len)
}

/// The difference between the checksum a header carries and the one it should carry, as a
/// one's-complement amount: 0 when the checksum is right. A rewrite must preserve it.
///
/// `field_sum` is the folded sum over the covered bytes *including* the checksum field. A
/// correct checksum makes that sum 0xffff (or, for a zero-valued computation, 0x0000 ≡ -0).
pub fn error_of(field_sum: u16) -> u16 {
    if field_sum == 0xffff || field_sum == 0 {
        0
    } else {
        !field_sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(data: &[u8]) -> u16 {
        !sum(data)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn wide_sum_equals_word_by_word_sum() {
        let mut seed = 0x2545f4914f6cdd1du64;
        for len in (0..300usize).chain([1480, 1500, 9000, 65_535]) {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect();
            let mut naive: u64 = 0;
            for w in data.chunks(2) {
                naive += u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
            }
            assert_eq!(sum(&data), fold(naive), "length {len}");
            // The portable loop too, where `sum` chose the AVX2 one.
            assert_eq!(fold(sum_words_any(&data, 0)), fold(naive), "length {len}");
        }
        // All-ones words exercise the end-around carry, up to the largest IPv4 datagram.
        assert_eq!(sum(&[0xff; 64]), 0xffff);
        assert_eq!(sum(&[0xff; 65_534]), 0xffff);
        assert_eq!(fold(sum_words_any(&[0xff; 65_534], 0)), 0xffff);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn incremental_equals_full_recompute() {
        // A 20-byte IPv4 header; rewrite the destination address and compare.
        let mut h: [u8; 20] = [
            0x45, 0, 0, 60, 0x1c, 0x46, 0x40, 0, 64, 6, 0, 0, 198, 51, 100, 7, 198, 18, 0, 100,
        ];
        let c = full(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        let mut seed = 0x9e3779b97f4a7c15u64;
        for _ in 0..10_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let new = (seed as u32).to_be_bytes();
            let old: [u8; 4] = h[16..20].try_into().unwrap();
            let hc = u16::from_be_bytes([h[10], h[11]]);
            h[16..20].copy_from_slice(&new);
            h[10..12].copy_from_slice(&update32(hc, old, new).to_be_bytes());
            assert_eq!(sum(&h), 0xffff, "header must still verify");
            let mut z = h;
            z[10] = 0;
            z[11] = 0;
            assert_eq!(u16::from_be_bytes([h[10], h[11]]), full(&z));
        }
    }

    #[test]
    fn wrong_checksum_stays_wrong_by_the_same_amount() {
        let mut h: [u8; 20] = [
            0x45, 0, 0, 60, 0x1c, 0x46, 0x40, 0, 64, 6, 0, 0, 198, 51, 100, 7, 198, 18, 0, 100,
        ];
        let good = full(&h);
        let bad = good.wrapping_add(0x1234);
        h[10..12].copy_from_slice(&bad.to_be_bytes());
        let before = error_of(sum(&h));
        assert_ne!(before, 0);
        let old: [u8; 4] = h[16..20].try_into().unwrap();
        h[16..20].copy_from_slice(&[203, 0, 113, 1]);
        let c = update32(bad, old, [203, 0, 113, 1]);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(error_of(sum(&h)), before);
    }

    #[test]
    fn update16_matches_rfc1624_example() {
        // RFC 1624 section 4: HC = 0xDD2F, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000.
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }
}
