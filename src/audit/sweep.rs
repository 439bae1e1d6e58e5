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

/// Rounds a point: to whole seconds from 10 s up, to milliseconds below.
fn round(ns: f64) -> Span {
    let unit = if ns >= 10e9 { 1e9 } else { 1e6 };
    Span(((ns / unit).round() * unit).max(unit) as u64)
}

impl Sweep {
    /// Parses `KEY=LO..HI[:STEPS]` on top of `base`. Points are geometric (equal ratios) from LO
    /// to HI, rounded to whole seconds (ms below 10 s).
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
                    round(lo.0 as f64 * ratio.powf(i as f64 / (steps - 1) as f64))
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
    }
}
