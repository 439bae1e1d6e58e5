//! Capture time. The engine never reads a clock: every instant it sees is a capture timestamp.

use std::fmt;

/// A capture timestamp: nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

/// A span of capture time in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub u64);

impl Timestamp {
    /// Nanoseconds since the epoch.
    pub const fn nanos(self) -> u64 {
        self.0
    }
    /// `self + d`, saturating.
    pub const fn add(self, d: Span) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }
    /// `self - earlier`, zero when `earlier` is later.
    pub const fn since(self, earlier: Timestamp) -> Span {
        Span(self.0.saturating_sub(earlier.0))
    }
    /// Seconds as a float (for JSON, Zeek-style `ts`).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl fmt::Display for Timestamp {
    /// `seconds.nanoseconds`, exact.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

impl Span {
    /// A span of whole seconds.
    pub const fn from_secs(s: u64) -> Span {
        Span(s.saturating_mul(1_000_000_000))
    }
    /// A span of milliseconds.
    pub const fn from_millis(ms: u64) -> Span {
        Span(ms.saturating_mul(1_000_000))
    }
    /// Seconds as a float.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    /// Parses `90`, `90s`, `1.5s`, `250ms`, `2m`, `24h`, `1d`, `2h4m`: a bare whole number is
    /// seconds; each number with a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`/`min`, `h`, `d`) may
    /// have a fraction, read exactly (decimal, not floating point) and rounded to the nearest
    /// nanosecond, half up. A total beyond `u64::MAX` ns (about 584 years) is "too long",
    /// however it is written; every value [`Span`]'s `Display` prints parses back to itself.
    /// A number with a minus sign (`-1s`) is refused as negative.
    pub fn parse(text: &str) -> Result<Span, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("empty duration".into());
        }
        if t.strip_prefix('-')
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit() || c == '.'))
        {
            return Err(format!("`{text}`: a duration cannot be negative"));
        }
        let too_long = || format!("`{text}`: too long (at most {})", Span(u64::MAX));
        let scaled = |num: &str, scale: u64| match scaled_ns(num, scale) {
            Ok(ns) => Ok(ns),
            Err(Overflow) => Err(too_long()),
        };
        if t.bytes().all(|b| b.is_ascii_digit()) {
            return u64::try_from(scaled(t, 1_000_000_000)?)
                .map(Span)
                .map_err(|_| too_long());
        }
        let mut total: u128 = 0;
        let mut rest = t;
        while !rest.is_empty() {
            let num_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| {
                    format!("`{text}`: `{rest}` has no unit (each number needs its own: 1h30m)")
                })?;
            if num_end == 0 {
                return Err(format!("`{text}`: expected a number"));
            }
            let num = &rest[..num_end];
            if num.matches('.').count() > 1 || num == "." {
                return Err(format!("`{text}`: bad number"));
            }
            let after = &rest[num_end..];
            let unit_end = after
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after.len());
            let scale: u64 = match &after[..unit_end] {
                "ns" => 1,
                "us" | "µs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" | "min" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                "d" => 86_400_000_000_000,
                u if u.contains(char::is_whitespace) => {
                    let joined: String = t.split_whitespace().collect();
                    return Err(format!(
                        "`{text}`: no space between a number and its unit (`{joined}`)"
                    ));
                }
                u => {
                    return Err(format!(
                        "`{text}`: unknown unit `{u}` (use ns, us or µs, ms, s, m or min, h, d)"
                    ));
                }
            };
            total = total
                .checked_add(scaled(num, scale)?)
                .filter(|&n| n <= u128::from(u64::MAX))
                .ok_or_else(too_long)?;
            rest = &after[unit_end..];
        }
        u64::try_from(total).map(Span).map_err(|_| too_long())
    }
}

/// A number too large to be a [`Span`].
struct Overflow;

/// `num` (digits with at most one `.`, not only a `.`) × `scale` ns, exactly, rounded to the
/// nearest nanosecond (half up); more than `u64::MAX` is an [`Overflow`].
fn scaled_ns(num: &str, scale: u64) -> Result<u128, Overflow> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let mut whole: u128 = 0;
    for d in int.bytes() {
        whole = whole * 10 + u128::from(d - b'0');
        if whole > u128::from(u64::MAX) {
            return Err(Overflow);
        }
    }
    // The fraction times `scale`, by long multiplication from its last digit: `carry` ends as
    // its whole nanoseconds, `first` as the first decimal digit after them (for rounding).
    let mut carry: u128 = 0;
    let mut first: u128 = 0;
    for d in frac.bytes().rev() {
        let x = u128::from(d - b'0') * u128::from(scale) + carry;
        first = x % 10;
        carry = x / 10;
    }
    let ns = whole * u128::from(scale) + carry + u128::from(first >= 5);
    if ns > u128::from(u64::MAX) {
        return Err(Overflow);
    }
    Ok(ns)
}

impl fmt::Display for Span {
    /// Compact human form: `24h`, `2m`, `1.5s`, `250ms`, `0.000316s`; exact (the decimal
    /// fraction of a second to the nanosecond), so it parses back to the same span.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        const S: u64 = 1_000_000_000;
        if ns == 0 {
            return write!(f, "0s");
        }
        if ns.is_multiple_of(3600 * S) {
            return write!(f, "{}h", ns / (3600 * S));
        }
        if ns.is_multiple_of(60 * S) {
            return write!(f, "{}m", ns / (60 * S));
        }
        if ns.is_multiple_of(S) {
            return write!(f, "{}s", ns / S);
        }
        if ns.is_multiple_of(1_000_000) && ns < S {
            return write!(f, "{}ms", ns / 1_000_000);
        }
        let frac = format!("{:09}", ns % S);
        write!(f, "{}.{}s", ns / S, frac.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(Span::parse("24h").unwrap(), Span::from_secs(86400));
        assert_eq!(Span::parse("2h4m").unwrap(), Span::from_secs(7440));
        assert_eq!(Span::parse("1.5s").unwrap(), Span::from_millis(1500));
        assert_eq!(Span::parse("60").unwrap(), Span::from_secs(60));
        assert_eq!(Span::parse("250ms").unwrap(), Span::from_millis(250));
        assert!(Span::parse("5 parsecs").is_err());
        assert!(Span::parse("").is_err());
    }

    /// Every too-large duration is the same "too long" error, however it is written; every
    /// accepted one prints a name that parses back to it (sweep point names, `udp=…` policies).
    /// The two slips a person makes most, each told how to write it: a last number without
    /// its unit, and a space before a unit.
    #[test]
    fn a_missing_unit_or_a_space_says_how_to_write_it() {
        assert_eq!(
            Span::parse("1h30"),
            Err("`1h30`: `30` has no unit (each number needs its own: 1h30m)".into())
        );
        assert_eq!(
            Span::parse("30 s"),
            Err("`30 s`: no space between a number and its unit (`30s`)".into())
        );
        assert_eq!(
            Span::parse("5 min"),
            Err("`5 min`: no space between a number and its unit (`5min`)".into())
        );
        assert_eq!(Span::parse("5min"), Ok(Span(300_000_000_000)));
    }

    #[test]
    fn too_long_is_one_error_and_names_parse_back() {
        for t in [
            "18446744074",          // whole seconds: used to saturate silently
            "99999999999999999999", // 20 digits: used to say "number without unit"
            "600000000d",
            "18446744073.709551616s",
            "18446744073s709551616ns",
            "213503982335d1s",
            "1e3s",
        ] {
            let e = Span::parse(t).unwrap_err();
            if t == "1e3s" {
                assert!(!e.contains("too long"), "{t}: {e}");
                continue;
            }
            assert!(e.contains("too long"), "{t}: {e}");
            assert!(!e.contains('\n'), "{t}: {e}");
        }
        assert_eq!(
            Span::parse("18446744073").unwrap(),
            Span::from_secs(18446744073)
        );
        assert_eq!(
            Span::parse("18446744073.709551615s").unwrap(),
            Span(u64::MAX)
        );
        assert_eq!(Span(u64::MAX).to_string(), "18446744073.709551615s");
        for ns in [
            1,
            999,
            1_000_001,
            316_000,
            1_500_000_000,
            1_000_000_001,
            123_456_789_123_456_789,
            9_007_199_254_740_993, // 2^53 + 1: not a double
            u64::MAX,
            u64::MAX - 1,
            86_400_000_000_000 * 5 + 1,
        ] {
            let name = Span(ns).to_string();
            assert_eq!(Span::parse(&name), Ok(Span(ns)), "{name}");
        }
        // fractions are read exactly and rounded half up to the nanosecond
        assert_eq!(Span::parse("0.0000000015s").unwrap(), Span(2));
        assert_eq!(Span::parse("0.0000000014999999999999s").unwrap(), Span(1));
        assert_eq!(Span::parse("1.5ns").unwrap(), Span(2));
        assert_eq!(Span::parse("0.1m").unwrap(), Span::from_secs(6));
        assert_eq!(Span::parse(".5s").unwrap(), Span::from_millis(500));
        assert_eq!(Span::parse("1.000000001s").unwrap(), Span(1_000_000_001));
        for bad in ["1..5s", ".s", "1.2.3s", "1.5", "s"] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn displays_compactly() {
        assert_eq!(Span::from_secs(86400).to_string(), "24h");
        assert_eq!(Span::from_secs(120).to_string(), "2m");
        assert_eq!(Span::from_millis(1500).to_string(), "1.5s");
        assert_eq!(Timestamp(1_000_000_001).to_string(), "1.000000001");
    }
}
