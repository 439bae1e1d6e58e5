//! Compliance of a policy's timeouts with the published floors: one verdict per requirement,
//! with its level and the numbers (table in `../shared/reference/peers.md` §5.7).
//!
//! - RFC 5382 REQ-5 (TCP, BCP 142): established idle timeout MUST NOT be less than 2 h 4 min;
//!   transitory (opening or closing) MUST NOT be less than 4 min.
//! - RFC 4787 REQ-5 (UDP, BCP 127): a mapping timer MUST NOT expire in less than 2 min;
//!   REQ-5c: a default of 5 min or more is RECOMMENDED.
//! - RFC 5508 REQ-2 (ICMP, BCP 148): an ICMP query session timer MUST NOT expire in less than
//!   60 s.
//! - RFC 7857 §2.1: after an RST, state SHOULD be kept 4 min; separate configurable opening and
//!   closing timeouts SHOULD exist, with a RECOMMENDED default of at least 4 min.
//! - RFC 2391 §2.4 (informational): TCP "say, 24 hours", non-TCP "say, 1 minute", "a couple of
//!   seconds" after the FINs are acknowledged or an RST.

use crate::engine::Timeouts;
use crate::time::Span;

/// How binding a requirement is (RFC 2119).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// MUST / MUST NOT.
    Must,
    /// SHOULD / RECOMMENDED.
    Should,
    /// A default the draft suggests ("say, ..."): reported, never failed.
    Info,
}

impl Level {
    /// As written in the RFCs.
    pub fn name(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::Info => "INFO",
        }
    }
}

/// One requirement's verdict on one policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Short stable id (`rfc5382-req5-established`).
    pub id: &'static str,
    /// The requirement, with its source.
    pub rule: &'static str,
    /// MUST, SHOULD or INFO.
    pub level: Level,
    /// The floor (or the draft's default), when it is a number.
    pub required: Option<Span>,
    /// The policy's value.
    pub value: Span,
    /// Met (for INFO: equal to the draft's default).
    pub pass: bool,
}

impl Check {
    /// `pass`, `FAIL`, or for INFO `same` / `differs`.
    pub fn verdict(&self) -> &'static str {
        match (self.level, self.pass) {
            (Level::Info, true) => "same",
            (Level::Info, false) => "differs",
            (_, true) => "pass",
            (_, false) => "FAIL",
        }
    }
}

fn at_least(id: &'static str, rule: &'static str, level: Level, floor: u64, value: Span) -> Check {
    let required = Span::from_secs(floor);
    Check {
        id,
        rule,
        level,
        required: Some(required),
        value,
        pass: value >= required,
    }
}

fn equals(id: &'static str, rule: &'static str, default: u64, value: Span) -> Check {
    let required = Span::from_secs(default);
    Check {
        id,
        rule,
        level: Level::Info,
        required: Some(required),
        value,
        pass: value == required,
    }
}

/// Every requirement's verdict on `t`, in report order.
pub fn evaluate(t: &Timeouts) -> Vec<Check> {
    use Level::*;
    vec![
        at_least(
            "rfc5382-req5-established",
            "RFC 5382 REQ-5: established TCP idle ≥ 2h4m",
            Must,
            7440,
            t.tcp,
        ),
        at_least(
            "rfc5382-req5-opening",
            "RFC 5382 REQ-5: transitory TCP (opening) ≥ 4m",
            Must,
            240,
            t.opening(),
        ),
        at_least(
            "rfc5382-req5-closing",
            "RFC 5382 REQ-5: transitory TCP (closing) ≥ 4m",
            Must,
            240,
            t.closing(),
        ),
        at_least(
            "rfc4787-req5",
            "RFC 4787 REQ-5: UDP mapping ≥ 2m",
            Must,
            120,
            t.udp,
        ),
        at_least(
            "rfc4787-req5c",
            "RFC 4787 REQ-5c: UDP default ≥ 5m (RECOMMENDED)",
            Should,
            300,
            t.udp,
        ),
        at_least(
            "rfc5508-req2",
            "RFC 5508 REQ-2: ICMP query session ≥ 60s",
            Must,
            60,
            t.icmp,
        ),
        at_least(
            "rfc7857-rst",
            "RFC 7857 §2.1: state kept ≥ 4m after an RST",
            Should,
            240,
            t.rst(),
        ),
        Check {
            id: "rfc7857-transitory-separate",
            rule: "RFC 7857 §2.1: separate configurable opening and closing timeouts",
            level: Should,
            required: None,
            // lsnat has both (`tcp_opening`, `tcp_closing`); the value shown is the shorter.
            value: t.opening().min(t.closing()),
            pass: true,
        },
        at_least(
            "rfc7857-transitory-default",
            "RFC 7857 §2.1: transitory default ≥ 4m (RECOMMENDED)",
            Should,
            240,
            t.opening().min(t.closing()),
        ),
        equals(
            "rfc2391-tcp",
            "RFC 2391 §2.4: TCP idle \"say, 24 hours\"",
            86400,
            t.tcp,
        ),
        equals(
            "rfc2391-non-tcp",
            "RFC 2391 §2.4: non-TCP idle \"say, 1 minute\" (UDP)",
            60,
            t.udp,
        ),
        Check {
            id: "rfc2391-close",
            rule: "RFC 2391 §2.4: \"a couple of seconds\" after FIN/RST",
            level: Info,
            required: Some(Span::from_secs(2)),
            value: t.tcp_close_grace.max(t.rst()),
            pass: t.tcp_close_grace.max(t.rst()) <= Span::from_secs(5),
        },
    ]
}

/// Whether every MUST-level requirement is met.
pub fn meets_musts(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.level != Level::Must || c.pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::policy::preset;

    fn musts_failed(name: &str) -> Vec<&'static str> {
        evaluate(&preset(name).unwrap().timeouts)
            .into_iter()
            .filter(|c| c.level == Level::Must && !c.pass)
            .map(|c| c.id)
            .collect()
    }

    /// peers.md §5.7: which defaults meet which floors.
    #[test]
    fn presets_against_the_floors() {
        assert!(musts_failed("rfc-minimum").is_empty());
        assert!(musts_failed("rfc-recommended").is_empty());
        // the draft: 24 h passes; 1 min UDP < 2 min; one TCP timeout of 24 h for transitory
        assert_eq!(musts_failed("rfc2391"), ["rfc4787-req5"]);
        // IPVS 900 s fails the established floor; SYN_RECV 60 and FIN_WAIT 120 < 4 min
        assert_eq!(
            musts_failed("ipvs"),
            [
                "rfc5382-req5-established",
                "rfc5382-req5-opening",
                "rfc5382-req5-closing"
            ]
        );
        // conntrack: transitory 120 s, ICMP 30 s
        assert_eq!(
            musts_failed("linux-conntrack"),
            [
                "rfc5382-req5-opening",
                "rfc5382-req5-closing",
                "rfc5508-req2"
            ]
        );
        let rec = evaluate(&preset("rfc-minimum").unwrap().timeouts);
        let c = rec.iter().find(|c| c.id == "rfc4787-req5c").unwrap();
        assert_eq!(c.verdict(), "FAIL");
        assert_eq!(c.level, Level::Should);
    }
}
