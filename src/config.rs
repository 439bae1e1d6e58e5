//! The replay configuration file (TOML): virtual servers, their pools and algorithms, timeouts,
//! TTL behaviour and the input view. Validated here into an [`EngineConfig`]; every error names
//! the file, the line and the field.
//!
//! ```toml
//! view = "router"                 # or "client-side"
//! [router]
//! ttl_decrement = true
//! [timeouts]                      # RFC 2391 §2.4 defaults
//! tcp = "24h"
//! udp = "60s"
//! icmp = "60s"
//! other = "60s"
//! tcp_close_grace = "2s"
//! max_sessions = 0                # 0: no limit
//! [[virtual_server]]
//! name = "web"
//! vip = "172.87.0.100"
//! protocol = "tcp"
//! ports = [80, 23]
//! algorithm = "round-robin"
//! members = ["172.85.0.1", "172.85.0.2", "172.85.0.3"]
//! # or members as tables: { addr = "172.85.0.3", weight = 3, cost = 2.0 } (cost "inf" allowed)
//! session_weight = 1              # weight of one session of this service (RFC 2391 §5.1 (4))
//! window = "10s"                  # traffic window (same for every virtual server that sets it)
//! traffic = "bytes"               # or "packets"
//! smoothing = 0.3                 # response-time EWMA factor (same for all)
//! capacity_file = "caps.jsonl"    # member-reported capacities, relative to this file
//! hash_key = "source"             # or "session", for source-hash and maglev
//! [virtual_server.affinity]
//! prefix = 32
//! timeout = "5m"
//! ```

use crate::engine::{
    AffinityConfig, Algorithm, AlgorithmParams, EngineConfig, HashKey, MemberSettings, Timeouts,
    TrafficMeasure, View, VirtualServerConfig,
};
use crate::time::Span;
use crate::wire::proto;
use serde::Deserialize;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// An invalid configuration: file, line, field and cause on one line.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field, when known (`virtual_server[1].vip`).
    pub field: Option<String>,
    /// What is wrong.
    pub cause: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.cause)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    view: Option<Spanned<String>>,
    #[serde(default)]
    router: Router,
    #[serde(default)]
    timeouts: TimeoutsFile,
    #[serde(default)]
    virtual_server: Vec<VirtualServerFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Router {
    ttl_decrement: Option<bool>,
    fragment_timeout: Option<Spanned<DurationValue>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TimeoutsFile {
    tcp: Option<Spanned<DurationValue>>,
    udp: Option<Spanned<DurationValue>>,
    icmp: Option<Spanned<DurationValue>>,
    other: Option<Spanned<DurationValue>>,
    tcp_close_grace: Option<Spanned<DurationValue>>,
    max_sessions: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Seconds(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VirtualServerFile {
    name: Option<String>,
    vip: Spanned<String>,
    protocol: Spanned<String>,
    #[serde(default = "no_ports")]
    ports: Spanned<Vec<i64>>,
    #[serde(default = "default_algorithm")]
    algorithm: Spanned<String>,
    members: Spanned<Vec<Spanned<toml::Value>>>,
    session_weight: Option<Spanned<i64>>,
    window: Option<Spanned<DurationValue>>,
    traffic: Option<Spanned<String>>,
    smoothing: Option<Spanned<f64>>,
    capacity_file: Option<Spanned<String>>,
    hash_key: Option<Spanned<String>>,
    affinity: Option<Spanned<AffinityFile>>,
}

/// A member: `"203.0.113.1"` or `{ addr = "203.0.113.3", weight = 3, cost = 2.0 }`.
fn member_entry(v: &toml::Value) -> Result<(String, Option<i64>, Option<f64>), String> {
    match v {
        toml::Value::String(s) => Ok((s.clone(), None, None)),
        toml::Value::Table(t) => {
            if let Some(k) = t
                .keys()
                .find(|k| !matches!(k.as_str(), "addr" | "weight" | "cost"))
            {
                return Err(format!(
                    "unknown member field `{k}` (expected addr, weight, cost)"
                ));
            }
            let addr = match t.get("addr") {
                Some(toml::Value::String(s)) => s.clone(),
                _ => return Err("a member table needs `addr = \"IPv4 address\"`".into()),
            };
            let weight = match t.get("weight") {
                None => None,
                Some(toml::Value::Integer(w)) => Some(*w),
                Some(o) => return Err(format!("member {addr}: weight {o} is not an integer")),
            };
            let cost = match t.get("cost") {
                None => None,
                Some(toml::Value::Integer(n)) => Some(*n as f64),
                Some(toml::Value::Float(f)) => Some(*f),
                Some(toml::Value::String(s)) if matches!(s.as_str(), "inf" | "infinity") => {
                    Some(f64::INFINITY)
                }
                Some(o) => {
                    return Err(format!(
                        "member {addr}: cost {o} is not a number or \"inf\""
                    ));
                }
            };
            Ok((addr, weight, cost))
        }
        o => Err(format!(
            "member {o} is neither an address string nor a table {{ addr, weight, cost }}"
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AffinityFile {
    prefix: Option<i64>,
    timeout: Option<DurationValue>,
}

fn no_ports() -> Spanned<Vec<i64>> {
    Spanned::new(0..0, Vec::new())
}

fn default_algorithm() -> Spanned<String> {
    Spanned::new(0..0, "round-robin".to_string())
}

/// The configuration file conventionally beside a capture: `X.pcap` → `X.toml`.
pub fn beside(capture: &Path) -> PathBuf {
    capture.with_extension("toml")
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<EngineConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.into(),
        line: None,
        field: None,
        cause: format!("cannot read configuration: {e}"),
    })?;
    parse(path, &text)
}

/// Validates configuration text (`path` is only used in errors).
pub fn parse(path: &Path, text: &str) -> Result<EngineConfig, ConfigError> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let err = |span: Option<std::ops::Range<usize>>, field: &str, cause: String| ConfigError {
        path: path.into(),
        line: span.filter(|s| s.end > 0).map(|s| line_of(s.start)),
        field: (!field.is_empty()).then(|| field.to_string()),
        cause,
    };
    let file: File = toml::from_str(text).map_err(|e| {
        let msg = e.message().trim().replace('\n', " ");
        err(e.span(), "", msg)
    })?;
    let mut cfg = EngineConfig::default();
    if let Some(v) = &file.view {
        cfg.view = match v.get_ref().as_str() {
            "router" => View::Router,
            "client-side" => View::ClientSide,
            other => {
                return Err(err(
                    Some(v.span()),
                    "view",
                    format!("unknown view `{other}` (expected `router` or `client-side`)"),
                ));
            }
        };
    }
    if let Some(b) = file.router.ttl_decrement {
        cfg.ttl_decrement = b;
    }
    let duration = |d: &Option<Spanned<DurationValue>>, field: &str, default: Span| match d {
        None => Ok(default),
        Some(s) => match s.get_ref() {
            DurationValue::Seconds(n) if *n >= 0 => Ok(Span::from_secs(*n as u64)),
            DurationValue::Seconds(n) => {
                Err(err(Some(s.span()), field, format!("negative duration {n}")))
            }
            DurationValue::Text(t) => Span::parse(t).map_err(|m| err(Some(s.span()), field, m)),
        },
    };
    cfg.fragment_timeout = duration(
        &file.router.fragment_timeout,
        "router.fragment_timeout",
        cfg.fragment_timeout,
    )?;
    let d = Timeouts::default();
    let t = &file.timeouts;
    cfg.timeouts = Timeouts {
        tcp: duration(&t.tcp, "timeouts.tcp", d.tcp)?,
        udp: duration(&t.udp, "timeouts.udp", d.udp)?,
        icmp: duration(&t.icmp, "timeouts.icmp", d.icmp)?,
        other: duration(&t.other, "timeouts.other", d.other)?,
        tcp_close_grace: duration(
            &t.tcp_close_grace,
            "timeouts.tcp_close_grace",
            d.tcp_close_grace,
        )?,
    };
    if let Some(m) = &t.max_sessions {
        cfg.max_sessions = match *m.get_ref() {
            0 => None,
            n if n > 0 => Some(n as usize),
            n => {
                return Err(err(
                    Some(m.span()),
                    "timeouts.max_sessions",
                    format!("must be 0 (no limit) or positive, not {n}"),
                ));
            }
        };
    }
    if file.virtual_server.is_empty() {
        return Err(err(
            None,
            "virtual_server",
            "no [[virtual_server]] defined: nothing to load-share".into(),
        ));
    }
    let mut window: Option<(Span, String)> = None;
    let mut smoothing: Option<(f64, String)> = None;
    let mut settings: Vec<(MemberSettings, String)> = Vec::new();
    for (i, v) in file.virtual_server.iter().enumerate() {
        let field = |f: &str| format!("virtual_server[{i}].{f}");
        let addr = |s: &Spanned<String>, f: &str| {
            s.get_ref().trim().parse::<Ipv4Addr>().map_err(|_| {
                err(
                    Some(s.span()),
                    &field(f),
                    format!("`{}` is not an IPv4 address", s.get_ref()),
                )
            })
        };
        let vip = addr(&v.vip, "vip")?;
        let protocol = proto::parse(v.protocol.get_ref()).ok_or_else(|| {
            err(
                Some(v.protocol.span()),
                &field("protocol"),
                format!(
                    "unknown protocol `{}` (tcp, udp, icmp, gre, esp, or a number 0-255)",
                    v.protocol.get_ref()
                ),
            )
        })?;
        let mut ports = Vec::new();
        for &p in v.ports.get_ref() {
            let p = u16::try_from(p).map_err(|_| {
                err(
                    Some(v.ports.span()),
                    &field("ports"),
                    format!("port {p} is out of range 0-65535"),
                )
            })?;
            ports.push(p);
        }
        if matches!(protocol, proto::TCP | proto::UDP) && ports.is_empty() {
            return Err(err(
                Some(v.protocol.span()),
                &field("ports"),
                "a TCP or UDP virtual server needs its service ports".into(),
            ));
        }
        let algorithm = Algorithm::parse(v.algorithm.get_ref()).ok_or_else(|| {
            err(
                Some(v.algorithm.span()),
                &field("algorithm"),
                format!(
                    "unknown algorithm `{}` (expected one of: {})",
                    v.algorithm.get_ref(),
                    Algorithm::NAMES.join(", ")
                ),
            )
        })?;
        let mut members = Vec::new();
        for m in v.members.get_ref() {
            let (text, weight, cost) = member_entry(m.get_ref())
                .map_err(|cause| err(Some(m.span()), &field("members"), cause))?;
            let a = addr(&Spanned::new(m.span(), text), "members")?;
            if weight.is_some() || cost.is_some() {
                let bad = |cause: String| err(Some(m.span()), &field("members"), cause);
                let weight = match weight {
                    None => 1,
                    Some(w) => u32::try_from(w)
                        .map_err(|_| bad(format!("member {a}: weight {w} is not 0 or more")))?,
                };
                let cost = cost.unwrap_or(1.0);
                if cost.is_nan() || cost < 0.0 {
                    return Err(bad(format!("member {a}: cost must be 0 or more")));
                }
                let s = MemberSettings {
                    addr: a,
                    weight,
                    cost,
                };
                match settings.iter().find(|(o, _)| o.addr == a) {
                    Some((o, where_)) if *o != s => {
                        return Err(bad(format!(
                            "member {a}: weight/cost differ from {where_} (a member is one server)"
                        )));
                    }
                    Some(_) => {}
                    None => settings.push((s, field("members"))),
                }
            }
            if members.contains(&a) {
                return Err(err(
                    Some(m.span()),
                    &field("members"),
                    format!("member {a} is listed twice"),
                ));
            }
            members.push(a);
        }
        if members.is_empty() {
            return Err(err(
                Some(v.members.span()),
                &field("members"),
                "the server pool is empty".into(),
            ));
        }
        let session_weight = match &v.session_weight {
            None => 1,
            Some(w) => u32::try_from(*w.get_ref()).map_err(|_| {
                err(
                    Some(w.span()),
                    &field("session_weight"),
                    format!("must be 0 or more, not {}", w.get_ref()),
                )
            })?,
        };
        let mut params = AlgorithmParams::default();
        if let Some(t) = &v.traffic {
            params.traffic = match t.get_ref().as_str() {
                "bytes" => TrafficMeasure::Bytes,
                "packets" => TrafficMeasure::Packets,
                o => {
                    return Err(err(
                        Some(t.span()),
                        &field("traffic"),
                        format!("`{o}` (expected `bytes` or `packets`)"),
                    ));
                }
            };
        }
        if let Some(h) = &v.hash_key {
            params.hash_key = Some(match h.get_ref().as_str() {
                "source" => HashKey::Source,
                "session" => HashKey::Session,
                o => {
                    return Err(err(
                        Some(h.span()),
                        &field("hash_key"),
                        format!("`{o}` (expected `source` or `session`)"),
                    ));
                }
            });
        }
        if let Some(w) = &v.window {
            let span = duration(
                &Some(Spanned::new(w.span(), clone_duration(w.get_ref()))),
                &field("window"),
                Span(0),
            )?;
            if span.0 == 0 {
                return Err(err(
                    Some(w.span()),
                    &field("window"),
                    "must be longer than 0".into(),
                ));
            }
            match &window {
                Some((o, where_)) if *o != span => {
                    return Err(err(
                        Some(w.span()),
                        &field("window"),
                        format!(
                            "differs from {where_}: members' traffic is counted once for all virtual servers"
                        ),
                    ));
                }
                Some(_) => {}
                None => window = Some((span, field("window"))),
            }
        }
        if let Some(a) = &v.smoothing {
            let x = *a.get_ref();
            if !(x > 0.0 && x <= 1.0) {
                return Err(err(
                    Some(a.span()),
                    &field("smoothing"),
                    format!("{x} is not in (0, 1]"),
                ));
            }
            match &smoothing {
                Some((o, where_)) if *o != x => {
                    return Err(err(
                        Some(a.span()),
                        &field("smoothing"),
                        format!(
                            "differs from {where_}: members' response times are smoothed once for all virtual servers"
                        ),
                    ));
                }
                Some(_) => {}
                None => smoothing = Some((x, field("smoothing"))),
            }
        }
        if let Some(c) = &v.capacity_file {
            let p = path.parent().unwrap_or(Path::new("")).join(c.get_ref());
            let reports = crate::capacity::load(&p)
                .map_err(|e| err(Some(c.span()), &field("capacity_file"), e.to_string()))?;
            cfg.capacity_reports.extend(reports);
        }
        let affinity = match &v.affinity {
            None => None,
            Some(a) => {
                let prefix = a.get_ref().prefix.unwrap_or(32);
                if !(0..=32).contains(&prefix) {
                    return Err(err(
                        Some(a.span()),
                        &field("affinity.prefix"),
                        format!("{prefix} is not a prefix length 0-32"),
                    ));
                }
                let timeout = match &a.get_ref().timeout {
                    None => Span::from_secs(300),
                    Some(t) => duration(
                        &Some(Spanned::new(a.span(), clone_duration(t))),
                        &field("affinity.timeout"),
                        Span(0),
                    )?,
                };
                Some(AffinityConfig {
                    prefix: prefix as u8,
                    timeout,
                })
            }
        };
        cfg.virtual_servers.push(VirtualServerConfig {
            name: v
                .name
                .clone()
                .unwrap_or_else(|| format!("{}-{}", proto::name(protocol), i)),
            vip,
            protocol,
            ports,
            algorithm,
            members,
            session_weight,
            params,
            affinity,
        });
    }
    if let Some((w, _)) = window {
        cfg.load_tracking.window = w;
    }
    if let Some((s, _)) = smoothing {
        cfg.load_tracking.smoothing = s;
    }
    cfg.member_settings = settings.into_iter().map(|(s, _)| s).collect();
    Ok(cfg)
}

fn clone_duration(d: &DurationValue) -> DurationValue {
    match d {
        DurationValue::Seconds(n) => DurationValue::Seconds(*n),
        DurationValue::Text(t) => DurationValue::Text(t.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
view = "client-side"
[router]
ttl_decrement = false
[timeouts]
udp = "5m"
max_sessions = 10
[[virtual_server]]
name = "web"
vip = "172.87.0.100"
protocol = "tcp"
ports = [80, 23]
algorithm = "least-load"
members = ["172.85.0.1", "172.85.0.2", "172.85.0.3"]
"#;

    #[test]
    fn parses_a_full_config() {
        let c = parse(Path::new("x.toml"), GOOD).unwrap();
        assert_eq!(c.view, View::ClientSide);
        assert!(!c.ttl_decrement);
        assert_eq!(c.timeouts.udp, Span::from_secs(300));
        assert_eq!(c.timeouts.tcp, Span::from_secs(86400));
        assert_eq!(c.max_sessions, Some(10));
        assert_eq!(c.virtual_servers[0].ports, [80, 23]);
        assert_eq!(c.virtual_servers[0].algorithm, Algorithm::LeastLoad);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let bad = GOOD.replace("\"172.85.0.2\"", "\"172.85.0.300\"");
        let e = parse(Path::new("lab.toml"), &bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "lab.toml:14: field `virtual_server[0].members`: `172.85.0.300` is not an IPv4 address"
        );
        let bad = GOOD.replace("least-load", "fastest");
        let e = parse(Path::new("lab.toml"), &bad).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "lab.toml:13: field `virtual_server[0].algorithm`: unknown algorithm `fastest`"
            ),
            "{e}"
        );
        let bad = GOOD.replace("udp = \"5m\"", "udp = \"5 parsecs\"");
        let e = parse(Path::new("lab.toml"), &bad).unwrap_err().to_string();
        assert!(e.starts_with("lab.toml:6: field `timeouts.udp`:"), "{e}");
        let bad = GOOD.replace("ttl_decrement", "ttl_decrements");
        let e = parse(Path::new("lab.toml"), &bad).unwrap_err().to_string();
        assert!(
            e.starts_with("lab.toml:4: unknown field `ttl_decrements`"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }

    const ALGO: &str = r#"
[[virtual_server]]
name = "ftp"
vip = "198.18.0.100"
protocol = "tcp"
ports = [21]
algorithm = "least-weighted-load"
session_weight = 5
window = "5s"
traffic = "packets"
members = ["203.0.113.1", { addr = "203.0.113.3", weight = 3, cost = 2 }, { addr = "203.0.113.2", cost = "inf" }]
[virtual_server.affinity]
prefix = 24
timeout = "5m"
[[virtual_server]]
name = "telnet"
vip = "198.18.0.100"
protocol = "tcp"
ports = [23]
algorithm = "wlc"
smoothing = 0.5
members = ["203.0.113.1", "203.0.113.3"]
"#;

    #[test]
    fn member_tables_weights_costs_and_parameters() {
        let c = parse(Path::new("a.toml"), ALGO).unwrap();
        let v = &c.virtual_servers[0];
        assert_eq!(v.session_weight, 5);
        assert_eq!(v.params.traffic, TrafficMeasure::Packets);
        assert_eq!(
            v.affinity,
            Some(AffinityConfig {
                prefix: 24,
                timeout: Span::from_secs(300)
            })
        );
        assert_eq!(c.virtual_servers[1].session_weight, 1);
        assert_eq!(c.virtual_servers[1].affinity, None);
        assert_eq!(c.load_tracking.window, Span::from_secs(5));
        assert_eq!(c.load_tracking.smoothing, 0.5);
        assert_eq!(c.member_settings.len(), 2);
        assert_eq!(
            (c.member_settings[0].weight, c.member_settings[0].cost),
            (3, 2.0)
        );
        assert_eq!(
            (c.member_settings[1].weight, c.member_settings[1].cost),
            (1, f64::INFINITY)
        );
    }

    #[test]
    fn algorithm_parameter_errors_name_line_and_field() {
        let e = |text: String| parse(Path::new("a.toml"), &text).unwrap_err().to_string();
        let bad = ALGO.replace("cost = \"inf\"", "cost = \"lots\"");
        assert!(e(bad).starts_with(
            "a.toml:11: field `virtual_server[0].members`: member 203.0.113.2: cost \"lots\" is not"
        ),);
        let bad = ALGO.replace("smoothing = 0.5", "smoothing = 0.5\nwindow = \"9s\"");
        let msg = e(bad);
        assert!(
            msg.starts_with(
                "a.toml:22: field `virtual_server[1].window`: differs from virtual_server[0].window"
            ),
            "{msg}"
        );
        let bad = ALGO.replace("prefix = 24", "prefix = 33");
        assert!(e(bad).contains("field `virtual_server[0].affinity.prefix`: 33 is not"));
        let bad = ALGO.replace("\"packets\"", "\"frames\"");
        assert!(e(bad).starts_with("a.toml:10: field `virtual_server[0].traffic`"));
        let bad = ALGO.replace(
            "members = [\"203.0.113.1\", \"203.0.113.3\"]",
            "members = [\"203.0.113.1\", { addr = \"203.0.113.3\", weight = 2 }]",
        );
        assert!(e(bad).contains("weight/cost differ from virtual_server[0].members"));
        let bad = ALGO.replace(
            "window = \"5s\"",
            "capacity_file = \"/nonexistent/caps.jsonl\"",
        );
        let msg = e(bad);
        assert!(
            msg.starts_with("a.toml:9: field `virtual_server[0].capacity_file`: /nonexistent/caps.jsonl: cannot read"),
            "{msg}"
        );
    }
}
