//! Timestamp encodings: pcapng `if_tsresol` / `if_tsoffset` units to and from nanoseconds.

use crate::time::Timestamp;

const NS_PER_SEC: u128 = 1_000_000_000;

/// How a pcapng interface encodes packet timestamps: units of 10^-exp or 2^-exp seconds, plus a
/// whole-second offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TsParams {
    /// Units are 2^-exp seconds (otherwise 10^-exp).
    pub binary: bool,
    /// The exponent.
    pub exp: u8,
    /// `if_tsoffset`: seconds added to every timestamp.
    pub offset_secs: i64,
}

impl TsParams {
    /// Microseconds, no offset: the pcapng default.
    #[cfg(test)]
    pub const MICROS: TsParams = TsParams {
        binary: false,
        exp: 6,
        offset_secs: 0,
    };

    /// From the `if_tsresol` byte (bit 7: binary) and the `if_tsoffset` value.
    pub fn new(tsresol: u8, offset_secs: i64) -> Self {
        TsParams {
            binary: tsresol & 0x80 != 0,
            exp: tsresol & 0x7f,
            offset_secs,
        }
    }

    /// Nanoseconds since the epoch of a timestamp of `units`; `None` when it falls outside
    /// what a [`Timestamp`] holds (before 1970 or after 2554).
    ///
    /// Exact for resolutions up to 1 ns; binary units are rounded down.
    pub fn decode(&self, units: u64) -> Option<Timestamp> {
        let units = u128::from(units);
        let rel: u128 = if self.binary {
            (units * NS_PER_SEC)
                .checked_shr(u32::from(self.exp))
                .unwrap_or(0)
        } else if self.exp <= 9 {
            units * pow10(9 - self.exp)?
        } else {
            units / pow10(self.exp - 9).unwrap_or(u128::MAX)
        };
        let abs = i128::try_from(rel)
            .ok()?
            .checked_add(i128::from(self.offset_secs) * NS_PER_SEC as i128)?;
        u64::try_from(abs).ok().map(Timestamp)
    }

    /// The units that [`TsParams::decode`] turns into `ts`; `None` when `ts` cannot be
    /// expressed (before the interface's offset, or too large for 64 bits).
    ///
    /// A time between two units is written as the earlier (rounded down, never after `ts`).
    /// `encode(decode(u)) == u` for every resolution from 1 s to 1 ns and for binary ones up to
    /// 2^-29 s.
    pub fn encode(&self, ts: Timestamp) -> Option<u64> {
        let rel = i128::from(ts.nanos()) - i128::from(self.offset_secs) * NS_PER_SEC as i128;
        let rel = u128::try_from(rel).ok()?;
        let units = if self.binary {
            // The last unit decode turns into `ts` or earlier: the unit `ts` was read from
            // (decode rounds down to the nanosecond), or the one before a time the resolution
            // cannot hold, so a packet the replay makes (a released fragment, stamped with its
            // first fragment's time) is never stamped after the packet that follows it.
            let scaled = (rel + 1)
                .checked_shl(u32::from(self.exp))
                .filter(|s| s >> self.exp == rel + 1)?;
            (scaled - 1) / NS_PER_SEC
        } else if self.exp <= 9 {
            rel / pow10(9 - self.exp)?
        } else {
            rel.checked_mul(pow10(self.exp - 9)?)?
        };
        u64::try_from(units).ok()
    }
}

/// 10^e, when it fits.
fn pow10(e: u8) -> Option<u128> {
    10u128.checked_pow(u32::from(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_binary_round_trip() {
        for resol in [0u8, 3, 6, 9, 0x80 | 10, 0x80 | 20, 0x80 | 29] {
            let p = TsParams::new(resol, 0);
            for units in [
                0u64,
                1,
                7,
                999_999,
                1_700_000_000_123_456,
                u64::from(u32::MAX) << 20,
            ] {
                if let Some(ts) = p.decode(units) {
                    assert_eq!(p.encode(ts), Some(units), "resol {resol:#x} units {units}");
                }
            }
        }
    }

    /// A time the resolution cannot hold is rounded down, never up past `ts` (a released
    /// fragment stamped .444613 s on a 2^-3 s interface is .375, not .5, after later packets).
    #[test]
    fn times_between_units_round_down() {
        let p = TsParams::new(0x80 | 3, 0);
        assert_eq!(p.encode(Timestamp(1_444_613_000)), Some(11));
        assert_eq!(p.encode(Timestamp(1_499_999_999)), Some(11));
        assert_eq!(p.encode(Timestamp(1_500_000_000)), Some(12));
        let d = TsParams::new(3, 0);
        assert_eq!(d.encode(Timestamp(1_444_613_000)), Some(1_444));
        let fine = TsParams::new(0x80 | 29, 0);
        for ts in [1u64, 999_999_999, 1_700_000_000_123_456_789] {
            let u = fine.encode(Timestamp(ts)).unwrap();
            assert!(fine.decode(u).unwrap().0 <= ts);
            assert!(fine.decode(u + 1).unwrap().0 > ts);
        }
    }

    #[test]
    fn offsets_apply_in_seconds() {
        let p = TsParams::new(6, 1_000);
        assert_eq!(p.decode(1_500_000), Some(Timestamp(1_001_500_000_000)));
        assert_eq!(p.encode(Timestamp(1_001_500_000_000)), Some(1_500_000));
        assert_eq!(p.encode(Timestamp(5)), None, "before the offset");
        let neg = TsParams::new(9, -10);
        assert_eq!(neg.decode(5), None, "before 1970");
        assert_eq!(neg.decode(11_000_000_000), Some(Timestamp(1_000_000_000)));
    }

    #[test]
    fn micro_default() {
        assert_eq!(
            TsParams::MICROS.decode(1_700_000_000_123_456),
            Some(Timestamp(1_700_000_000_123_456_000))
        );
        assert_eq!(
            TsParams::new(0x80 | 1, 0).decode(3),
            Some(Timestamp(1_500_000_000))
        );
    }
}
