//! Session-timeout policies (RFC 2391 §2.4: idle timeouts "should optionally be made user
//! configurable"): named presets, custom policies written on the command line
//! (`tcp=2h,tcp-transitory=4m,udp=5m`) or as `[[policy]]` tables in the configuration file.
//!
//! Preset numbers and their sources are in `../shared/reference/peers.md` §1.3 (IPVS), §2.1 and
//! §2.3 (Linux conntrack), §5 (RFC floors); each is cited where it is defined below.

use crate::engine::Timeouts;
use crate::time::Span;
use serde::Deserialize;
use std::path::Path;

/// One policy: a set of timeouts (and optionally a session-table limit) to replay with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Its name (a preset name, a `[[policy]]` name, `config`, or the spec as written).
    pub name: String,
    /// Where it came from: `preset`, `config`, `command line`, `config [[policy]]`, `sweep`.
    pub source: &'static str,
    /// The timeouts.
    pub timeouts: Timeouts,
    /// Session-table limit (RFC 2391 §2.4: retire the longest idle session when full).
    pub max_sessions: Option<usize>,
}

/// The preset names, in report order.
pub const PRESETS: &[&str] = &[
    "rfc2391",
    "linux-conntrack",
    "ipvs",
    "rfc-minimum",
    "rfc-recommended",
];

const fn s(secs: u64) -> Span {
    Span::from_secs(secs)
}

/// One line describing a preset and its sources (README's presets table says the same).
pub fn preset_source(name: &str) -> &'static str {
    match name {
        "rfc2391" => {
            "RFC 2391 §2.4 (draft-srisuresh-lsnat-02): TCP 24 h, non-TCP 1 min, \"a couple of seconds\" after FIN/RST"
        }
        "linux-conntrack" => {
            "nf_conntrack_proto_tcp.c tcp_timeouts[]: ESTABLISHED 5 d, SYN_SENT 120 s, FIN_WAIT 120 s, TIME_WAIT 120 s, CLOSE 10 s; UDP stream 120 s; ICMP 30 s; generic 600 s"
        }
        "ipvs" => {
            "ip_vs_proto_tcp.c tcp_timeouts[] (ipvsadm --set 900 120 300): ESTABLISHED 900 s, SYN_RECV 60 s, FIN_WAIT 120 s, TIME_WAIT 120 s, CLOSE 10 s; UDP 300 s; ICMP/other not load-balanced (60 s)"
        }
        "rfc-minimum" => {
            "floors: RFC 5382 REQ-5 (2 h 4 min, transitory 4 min), RFC 4787 REQ-5 (UDP 2 min), RFC 5508 REQ-2 (ICMP 60 s), RFC 7857 §2.1 (4 min after RST)"
        }
        "rfc-recommended" => {
            "rfc-minimum with RFC 4787 REQ-5c's recommended UDP 5 min (other protocols likewise)"
        }
        _ => "",
    }
}

/// A preset by name.
pub fn preset(name: &str) -> Option<Policy> {
    let t = match name {
        // RFC 2391 §2.4: "say, 24 hours" for TCP, "say, 1 minute" for non-TCP, "a couple of
        // seconds" after the FINs are acknowledged or an RST. One TCP idle timeout: opening and
        // closing sessions use it too. This is the engine's default.
        "rfc2391" => Timeouts::default(),
        // Linux conntrack (peers.md §2.1, §2.3): ESTABLISHED 432000 s; opening = SYN_SENT 120 s
        // (SYN_RECV is 60 s once the SYN-ACK is seen); closing = FIN_WAIT 120 s (CLOSE_WAIT 60,
        // LAST_ACK 30); both FINs acknowledged = TIME_WAIT 120 s; RST = CLOSE 10 s; UDP "stream"
        // 120 s (30 s while unreplied); ICMP 30 s; generic 600 s.
        "linux-conntrack" => Timeouts {
            tcp: s(432_000),
            udp: s(120),
            icmp: s(30),
            other: s(600),
            tcp_close_grace: s(120),
            tcp_opening: Some(s(120)),
            tcp_closing: Some(s(120)),
            tcp_rst: Some(s(10)),
        },
        // IPVS (peers.md §1.3): `ipvsadm --set tcp tcpfin udp` defaults 900 120 300;
        // SYN_RECV 60 s (a client SYN seen, in NAT mode), TIME_WAIT 120 s, CLOSE 10 s. IPVS does
        // not load-balance ICMP queries or other protocols: the LSNAT draft's 60 s is kept.
        "ipvs" => Timeouts {
            tcp: s(900),
            udp: s(300),
            icmp: s(60),
            other: s(60),
            tcp_close_grace: s(120),
            tcp_opening: Some(s(60)),
            tcp_closing: Some(s(120)),
            tcp_rst: Some(s(10)),
        },
        // The MUST floors (peers.md §5): RFC 5382 REQ-5 established ≥ 2 h 4 min, transitory
        // ≥ 4 min; RFC 4787 REQ-5 UDP ≥ 2 min; RFC 5508 REQ-2 ICMP query ≥ 60 s; RFC 7857 §2.1
        // 4 min after an RST; a closed session as RFC 6146's TRANS state (4 min). Other
        // protocols have no floor: the UDP one is used.
        "rfc-minimum" => Timeouts {
            tcp: s(7440),
            udp: s(120),
            icmp: s(60),
            other: s(120),
            tcp_close_grace: s(240),
            tcp_opening: Some(s(240)),
            tcp_closing: Some(s(240)),
            tcp_rst: Some(s(240)),
        },
        // rfc-minimum with RFC 4787 REQ-5c: UDP default ≥ 5 min RECOMMENDED (other likewise).
        "rfc-recommended" => Timeouts {
            tcp: s(7440),
            udp: s(300),
            icmp: s(60),
            other: s(300),
            tcp_close_grace: s(240),
            tcp_opening: Some(s(240)),
            tcp_closing: Some(s(240)),
            tcp_rst: Some(s(240)),
        },
        _ => return None,
    };
    Some(Policy {
        name: name.to_string(),
        source: "preset",
        timeouts: t,
        max_sessions: None,
    })
}

/// The keys a policy spec (or a `[[policy]]` table, with `_` for `-`) may set.
pub const KEYS: &[&str] = &[
    "base",
    "tcp",
    "tcp-established",
    "tcp-opening",
    "tcp-closing",
    "tcp-transitory",
    "tcp-fin",
    "tcp-close-grace",
    "tcp-rst",
    "udp",
    "icmp",
    "other",
    "max-sessions",
];

/// Sets one timeout of `t` by its spec key (not `base` or `max-sessions`).
pub fn set_timeout(t: &mut Timeouts, key: &str, v: Span) -> Result<(), String> {
    match key {
        "tcp" | "tcp-established" => t.tcp = v,
        "tcp-opening" => t.tcp_opening = Some(v),
        "tcp-closing" => t.tcp_closing = Some(v),
        "tcp-transitory" => {
            t.tcp_opening = Some(v);
            t.tcp_closing = Some(v);
        }
        "tcp-fin" | "tcp-close-grace" => t.tcp_close_grace = v,
        "tcp-rst" => t.tcp_rst = Some(v),
        "udp" => t.udp = v,
        "icmp" => t.icmp = v,
        "other" => t.other = v,
        _ => {
            return Err(format!(
                "unknown timeout `{key}` (expected one of: {})",
                KEYS.join(", ")
            ));
        }
    }
    Ok(())
}

/// The settings a policy key sets, one bit each (see [`set_timeout`]): keys that set one
/// of the same settings may not both be given, so a policy means the same whatever order its
/// keys come in (a `[[policy]]` table's keys come in no order of the file's).
fn settings_of(key: &str) -> u16 {
    match key {
        "tcp" | "tcp-established" => 1,
        "tcp-opening" => 2,
        "tcp-closing" => 4,
        "tcp-transitory" => 2 | 4,
        "tcp-fin" | "tcp-close-grace" => 8,
        "tcp-rst" => 16,
        "udp" => 32,
        "icmp" => 64,
        "other" => 128,
        "max-sessions" => 256,
        _ => 0,
    }
}

/// Applies `key=value` pairs to `base` (a `base=PRESET` pair, first, starts from a preset).
/// Each setting is given once: two keys that set the same one are refused.
fn apply<'a>(
    mut p: Policy,
    pairs: impl IntoIterator<Item = (String, &'a str)>,
) -> Result<Policy, String> {
    let mut given: Vec<(String, u16)> = Vec::new();
    for (i, (key, value)) in pairs.into_iter().enumerate() {
        let key = key.trim().replace('_', "-");
        let value = value.trim();
        let sets = settings_of(&key);
        if let Some((earlier, _)) = given.iter().find(|(_, b)| b & sets != 0) {
            return Err(match *earlier == key {
                true => format!("`{key}` is given twice"),
                false => format!("`{key}` and `{earlier}` set the same timeout: give one"),
            });
        }
        given.push((key.clone(), sets));
        match key.as_str() {
            "base" => {
                if i != 0 {
                    return Err("`base` must come first".into());
                }
                let b = preset(value).ok_or_else(|| {
                    format!(
                        "unknown preset `{value}` (expected one of: {})",
                        PRESETS.join(", ")
                    )
                })?;
                p.timeouts = b.timeouts;
                p.max_sessions = None;
            }
            "max-sessions" => {
                let n: usize = value
                    .parse()
                    .map_err(|_| format!("max-sessions: `{value}` is not a number"))?;
                p.max_sessions = (n > 0).then_some(n);
            }
            _ => {
                let v = Span::parse(value).map_err(|e| format!("{key}: {e}"))?;
                // As in the config file: an idle timeout of 0 is refused; the grace after a
                // close may be 0 (state dropped at the close).
                if v.0 == 0 && !matches!(key.as_str(), "tcp-fin" | "tcp-close-grace" | "tcp-rst") {
                    return Err(format!("{key}: an idle timeout must be longer than zero"));
                }
                set_timeout(&mut p.timeouts, &key, v)?;
            }
        }
    }
    Ok(p)
}

/// Parses a command-line policy `tcp=2h,tcp-transitory=4m,udp=5m` on top of `base` (the
/// capture configuration's timeouts; `base=PRESET` first starts from a preset instead).
pub fn parse_spec(spec: &str, base: &Policy) -> Result<Policy, String> {
    let mut pairs = Vec::new();
    for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: expected KEY=VALUE"))?;
        pairs.push((k.to_string(), v));
    }
    if pairs.is_empty() {
        return Err(format!("`{spec}`: empty policy"));
    }
    let p = Policy {
        name: spec.to_string(),
        source: "command line",
        ..base.clone()
    };
    apply(p, pairs).map_err(|e| format!("policy `{spec}`: {e}"))
}

#[derive(Deserialize)]
struct PoliciesFile {
    #[serde(default)]
    policy: Vec<toml::Spanned<toml::Table>>,
}

/// The `[[policy]]` tables of a configuration file (each: `name`, optional `base`, and any of
/// the spec keys with `_`: `tcp = "2h"`, `tcp_transitory = "4m"`, `udp = 300`, ...), each on top
/// of `base` (the file's own `[timeouts]`).
pub fn from_config_file(path: &Path, text: &str, base: &Policy) -> Result<Vec<Policy>, String> {
    let f: PoliciesFile = toml::from_str(text).map_err(|e| {
        format!(
            "{}: {}",
            path.display(),
            e.message().trim().replace('\n', " ")
        )
    })?;
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut out = Vec::new();
    for (i, t) in f.policy.iter().enumerate() {
        let at = format!("{}:{}", path.display(), line_of(t.span().start));
        let table = t.get_ref();
        let name = match table.get("name") {
            Some(toml::Value::String(n)) if !n.is_empty() => n.clone(),
            _ => {
                return Err(format!(
                    "{at}: field `policy[{i}].name`: each [[policy]] needs a name"
                ));
            }
        };
        if name == "config" || preset(&name).is_some() {
            return Err(format!(
                "{at}: field `policy[{i}].name`: `{name}` is already a built-in policy; give this one another name"
            ));
        }
        if out.iter().any(|p: &Policy| p.name == name) {
            return Err(format!(
                "{at}: field `policy[{i}].name`: a [[policy]] named `{name}` comes earlier in the file"
            ));
        }
        if name.contains('=') {
            return Err(format!(
                "{at}: field `policy[{i}].name`: `{name}`: a name may not hold `=` (that is how KEY=VALUE policies are written)"
            ));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(b) = table.get("base") {
            let Some(b) = b.as_str() else {
                return Err(format!(
                    "{at}: field `policy[{i}].base`: expected a preset's name (one of: {})",
                    PRESETS.join(", ")
                ));
            };
            pairs.push(("base".into(), b.to_string()));
        }
        for (k, v) in table {
            if k == "name" || k == "base" {
                continue;
            }
            let v = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) if *n >= 0 => n.to_string(),
                _ => {
                    return Err(format!(
                        "{at}: field `policy[{i}].{k}`: expected a duration (\"5m\" or seconds)"
                    ));
                }
            };
            pairs.push((k.clone(), v));
        }
        let p = Policy {
            name: name.clone(),
            source: "config [[policy]]",
            ..base.clone()
        };
        let p = apply(p, pairs.iter().map(|(k, v)| (k.clone(), v.as_str())))
            .map_err(|e| format!("{at}: field `policy[{i}]` ({name}): {e}"))?;
        out.push(p);
    }
    Ok(out)
}

/// The effective timeouts, in report order, as (key, value).
pub fn effective(t: &Timeouts) -> [(&'static str, Span); 8] {
    [
        ("tcp-established", t.tcp),
        ("tcp-opening", t.opening()),
        ("tcp-closing", t.closing()),
        ("tcp-fin", t.tcp_close_grace),
        ("tcp-rst", t.rst()),
        ("udp", t.udp),
        ("icmp", t.icmp),
        ("other", t.other),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Policy {
        Policy {
            name: "config".into(),
            source: "config",
            timeouts: Timeouts::default(),
            max_sessions: None,
        }
    }

    #[test]
    fn specs_set_timeouts_on_the_base() {
        let p = parse_spec("tcp=2h,tcp-transitory=4m,udp=5m", &base()).unwrap();
        assert_eq!(p.timeouts.tcp, s(7200));
        assert_eq!(p.timeouts.opening(), s(240));
        assert_eq!(p.timeouts.closing(), s(240));
        assert_eq!(p.timeouts.udp, s(300));
        assert_eq!(p.timeouts.icmp, s(60));
        let p = parse_spec("base=ipvs,udp=10s,max-sessions=5", &base()).unwrap();
        assert_eq!(p.timeouts.tcp, s(900));
        assert_eq!(p.timeouts.udp, s(10));
        assert_eq!(p.max_sessions, Some(5));
        assert!(parse_spec("udp=5m,base=ipvs", &base()).is_err());
        assert!(parse_spec("tcp=forever", &base()).is_err());
        assert!(parse_spec("tcp_opening=0", &base()).is_err());
        let e = parse_spec("sctp=5m", &base()).unwrap_err();
        assert!(e.contains("unknown timeout `sctp`"), "{e}");
    }

    #[test]
    fn every_preset_exists_and_rfc2391_is_the_default() {
        for n in PRESETS {
            assert!(preset(n).is_some(), "{n}");
            assert!(!preset_source(n).is_empty());
        }
        assert_eq!(preset("rfc2391").unwrap().timeouts, Timeouts::default());
        assert_eq!(preset("ipvs").unwrap().timeouts.tcp, s(900));
    }

    #[test]
    fn config_file_policies() {
        let text = "[timeouts]\nudp = \"60s\"\n[[policy]]\nname = \"short\"\nbase = \"rfc-minimum\"\nudp = 30\ntcp_transitory = \"1m\"\n";
        let v = from_config_file(Path::new("x.toml"), text, &base()).unwrap();
        assert_eq!(v[0].name, "short");
        assert_eq!(v[0].timeouts.udp, s(30));
        assert_eq!(v[0].timeouts.opening(), s(60));
        assert_eq!(v[0].timeouts.tcp, s(7440));
        let bad = "[[policy]]\nname = \"x\"\nudp = \"soon\"\n";
        let e = from_config_file(Path::new("x.toml"), bad, &base()).unwrap_err();
        assert!(
            e.starts_with("x.toml:1: field `policy[0]` (x): udp:"),
            "{e}"
        );
        // A name is one policy's only: not a built-in one's, not an earlier [[policy]]'s.
        let shadow = "[[policy]]\nname = \"ipvs\"\nudp = 30\n";
        let e = from_config_file(Path::new("x.toml"), shadow, &base()).unwrap_err();
        assert!(e.contains("`ipvs` is already a built-in policy"), "{e}");
        let twice = "[[policy]]\nname = \"a\"\nudp = 30\n[[policy]]\nname = \"a\"\nudp = 40\n";
        let e = from_config_file(Path::new("x.toml"), twice, &base()).unwrap_err();
        assert!(e.starts_with("x.toml:4: field `policy[1].name`"), "{e}");
    }
}
