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
    /// Parses `90`, `90s`, `1.5s`, `250ms`, `2m`, `24h`, `1d`, `2h4m`.
    pub fn parse(text: &str) -> Result<Span, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("empty duration".into());
        }
        if let Ok(secs) = t.parse::<u64>() {
            return Ok(Span::from_secs(secs));
        }
        let mut total: u128 = 0;
        let mut rest = t;
        while !rest.is_empty() {
            let num_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| format!("`{text}`: number without unit"))?;
            if num_end == 0 {
                return Err(format!("`{text}`: expected a number"));
            }
            let num: f64 = rest[..num_end]
                .parse()
                .map_err(|_| format!("`{text}`: bad number"))?;
            let after = &rest[num_end..];
            let unit_end = after
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after.len());
            let scale: f64 = match &after[..unit_end] {
                "ns" => 1.0,
                "us" | "µs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" | "min" => 60e9,
                "h" => 3600e9,
                "d" => 86400e9,
                u => return Err(format!("`{text}`: unknown unit `{u}` (use ms, s, m, h, d)")),
            };
            total += (num * scale).round() as u128;
            rest = &after[unit_end..];
        }
        u64::try_from(total)
            .map(Span)
            .map_err(|_| format!("`{text}`: too long"))
    }
}

impl fmt::Display for Span {
    /// Compact human form: `24h`, `2m`, `1.5s`, `250ms`.
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
        write!(f, "{}s", ns as f64 / S as f64)
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

    #[test]
    fn displays_compactly() {
        assert_eq!(Span::from_secs(86400).to_string(), "24h");
        assert_eq!(Span::from_secs(120).to_string(), "2m");
        assert_eq!(Span::from_millis(1500).to_string(), "1.5s");
        assert_eq!(Timestamp(1_000_000_001).to_string(), "1.000000001");
    }
}
