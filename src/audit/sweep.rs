//! A sweep: one timeout varied over a range (`udp=10s..10m[:STEPS]`), every other setting from a
//! base policy. Each point is an ordinary policy (`udp=…` on that base), replayed exactly like
//! `--policy`, so a point and the same policy given alone give the same numbers.

use super::policy::{self, Policy};
use crate::time::Span;

/// Default number of points.
pub const DEFAULT_STEPS: usize = 10;

/// A parsed `--sweep`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sweep {
    /// The timeout varied (a policy key: `udp`, `tcp`, `tcp-transitory`, ...).
    pub key: String,
    /// The policy the other timeouts come from.
    pub base: Policy,
    /// The values, ascending, distinct.
    pub values: Vec<Span>,
}

/// Rounds a point to two or more significant digits of a plain unit: whole seconds from 10 s
/// up, milliseconds from 10 ms, microseconds from 10 µs, nanoseconds below.
fn round(ns: f64) -> Span {
    let unit = [1e9, 1e6, 1e3]
        .into_iter()
        .find(|&u| ns >= 10.0 * u)
        .unwrap_or(1.0);
    Span(((ns / unit).round() * unit).max(1.0) as u64)
}

impl Sweep {
    /// Parses `KEY=LO..HI[:STEPS]` on top of `base`. Points are geometric (equal ratios) from LO
    /// to HI, rounded to whole seconds (ms below 10 s, µs below 10 ms, ns below 10 µs), never
    /// outside LO..HI; points that round to the same value count once.
    pub fn parse(text: &str, base: &Policy) -> Result<Sweep, String> {
        let bad = |m: &str| format!("--sweep `{text}`: {m}");
        let (key, range) = text
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=LO..HI[:STEPS], e.g. udp=10s..10m"))?;
        let key = key.trim().replace('_', "-");
        if matches!(key.as_str(), "base" | "max-sessions") {
            return Err(bad("only a timeout can be swept"));
        }
        let mut probe = base.timeouts;
        policy::set_timeout(&mut probe, &key, Span(1)).map_err(|e| bad(&e))?;
        let (range, steps) = match range.split_once(':') {
            Some((r, s)) => (
                r,
                s.trim()
                    .parse::<usize>()
                    .map_err(|_| bad("STEPS must be a number"))?,
            ),
            None => (range, DEFAULT_STEPS),
        };
        if !(2..=200).contains(&steps) {
            return Err(bad("STEPS must be between 2 and 200"));
        }
        let (lo, hi) = range
            .split_once("..")
            .ok_or_else(|| bad("expected LO..HI"))?;
        let lo = Span::parse(lo).map_err(|e| bad(&e))?;
        let hi = Span::parse(hi).map_err(|e| bad(&e))?;
        if lo.0 == 0 || hi <= lo {
            return Err(bad("need 0 < LO < HI"));
        }
        let ratio = hi.0 as f64 / lo.0 as f64;
        let mut values: Vec<Span> = (0..steps)
            .map(|i| {
                if i == 0 {
                    lo
                } else if i == steps - 1 {
                    hi
                } else {
                    round(lo.0 as f64 * ratio.powf(i as f64 / (steps - 1) as f64)).clamp(lo, hi)
                }
            })
            .collect();
        values.sort();
        values.dedup();
        Ok(Sweep {
            key,
            base: base.clone(),
            values,
        })
    }

    /// The point for `value`: the base with the swept timeout set, named `KEY=VALUE`.
    pub fn point(&self, value: Span) -> Policy {
        let mut p = self.base.clone();
        policy::set_timeout(&mut p.timeouts, &self.key, value).expect("key checked at parse");
        p.name = format!("{}={}", self.key, value);
        p.source = "sweep";
        p
    }

    /// Every point, ascending.
    pub fn policies(&self) -> Vec<Policy> {
        self.values.iter().map(|&v| self.point(v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::policy::preset;

    #[test]
    fn geometric_points_rounded() {
        let base = preset("rfc2391").unwrap();
        let s = Sweep::parse("udp=10s..10m:5", &base).unwrap();
        let secs: Vec<u64> = s.values.iter().map(|v| v.0 / 1_000_000_000).collect();
        assert_eq!(secs, [10, 28, 77, 216, 600]);
        assert_eq!(s.point(s.values[1]).name, "udp=28s");
        assert_eq!(s.point(s.values[1]).timeouts.udp, Span::from_secs(28));
        assert_eq!(s.point(s.values[1]).timeouts.tcp, base.timeouts.tcp);
        assert!(Sweep::parse("udp=10m..10s", &base).is_err());
        assert!(Sweep::parse("bogus=1s..2s", &base).is_err());
        assert!(Sweep::parse("udp=1s..2s:1", &base).is_err());
        let s = Sweep::parse("tcp-transitory=1s..2s:3", &base).unwrap();
        assert_eq!(
            s.values,
            [
                Span::from_secs(1),
                Span::from_millis(1414),
                Span::from_secs(2)
            ]
        );
        // Short ranges round finer, and no point leaves LO..HI: 1 ns..2 ns has two values.
        let s = Sweep::parse("udp=1ns..2ns:5", &base).unwrap();
        assert_eq!(s.values, [Span(1), Span(2)]);
        let s = Sweep::parse("udp=100us..1ms:3", &base).unwrap();
        assert_eq!(s.values, [Span(100_000), Span(316_000), Span(1_000_000)]);
    }
}
