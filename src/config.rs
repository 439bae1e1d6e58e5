//! The replay configuration file (TOML): virtual servers, their pools and algorithms, timeouts,
//! TTL behaviour and the input view. Validated here into an [`EngineConfig`]; every error names
//! the file, the line and the field.
//!
//! ```toml
//! view = "router"                 # or "client-side"
//! [router]
//! ttl_decrement = true
//! fragment_timeout = "30s"        # first-fragment translations and held fragments
//! fragment_hold_max = 64          # later fragments held for their first (0: none)
//! fragment_hold_bytes = 262144
//! icmp_time_exceeded = false      # answer TTL <= 1 with ICMP time exceeded
//! # outside_address = "198.51.100.1"  # router, clients' side (default: the VIP addressed)
//! # inside_address = "203.0.113.254"   # router, members' side
//! [timeouts]                      # RFC 2391 §2.4 defaults
//! tcp = "24h"
//! udp = "60s"
//! icmp = "60s"
//! other = "60s"
//! tcp_close_grace = "2s"
//! # tcp_opening, tcp_closing (default: tcp), tcp_rst (default: tcp_close_grace)
//! max_sessions = 0                # 0: no limit
//! [[virtual_server]]
//! name = "web"
//! vip = "172.87.0.100"
//! protocol = "tcp"
//! ports = [80, 23]
//! algorithm = "round-robin"
//! members = ["172.85.0.1", "172.85.0.2", "172.85.0.3"]
//! [dead_host]                     # RFC 2391 §6 (off by default)
//! enabled = true
//! answer_within = "3s"
//! retry_after = "3m"
//! [[timeline]]                    # pool changes during the replay
//! at = "+12.5s"                   # after the first packet, or "2024-05-01T10:00:00.5Z"
//! action = "drain"                # add, drain, remove, weight, cost, remap
//! member = "172.85.0.2"
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
    AffinityConfig, Algorithm, AlgorithmParams, EngineConfig, HashKey, MemberSettings, Mode,
    NaptConfig, StaticMapping, TimelineAction, TimelineAt, TimelineEntry, Timeouts, TrafficMeasure,
    View, VirtualServerConfig,
};
use crate::time::{Span, Timestamp};
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
    #[serde(default)]
    dead_host: DeadHostFile,
    #[serde(default)]
    timeline: Vec<TimelineFile>,
    /// Named timeout policies for `lsnat audit` (read by [`crate::audit::policy`]).
    #[serde(default)]
    #[allow(dead_code)]
    policy: Vec<toml::Table>,
    napt: Option<Spanned<NaptFile>>,
    #[serde(default)]
    static_mapping: Vec<Spanned<StaticMappingFile>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeadHostFile {
    enabled: Option<bool>,
    answer_within: Option<Spanned<DurationValue>>,
    retry_after: Option<Spanned<DurationValue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineFile {
    at: Spanned<String>,
    action: Spanned<String>,
    member: Spanned<String>,
    virtual_server: Option<Spanned<String>>,
    weight: Option<Spanned<i64>>,
    cost: Option<Spanned<toml::Value>>,
    backup: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NaptFile {
    /// Default true: the table's presence enables NAPT.
    enabled: Option<Spanned<bool>>,
    inside: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticMappingFile {
    member: Spanned<String>,
    port: Option<Spanned<i64>>,
    backup: Spanned<String>,
    backup_port: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Router {
    ttl_decrement: Option<bool>,
    fragment_timeout: Option<Spanned<DurationValue>>,
    fragment_hold_max: Option<Spanned<i64>>,
    fragment_hold_bytes: Option<Spanned<i64>>,
    icmp_time_exceeded: Option<bool>,
    mode: Option<Spanned<String>>,
    inside_address: Option<Spanned<String>>,
    outside_address: Option<Spanned<String>>,
    #[serde(default)]
    addresses: Vec<Spanned<String>>,
    ftp_ports: Option<Spanned<Vec<Spanned<i64>>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TimeoutsFile {
    tcp: Option<Spanned<DurationValue>>,
    udp: Option<Spanned<DurationValue>>,
    icmp: Option<Spanned<DurationValue>>,
    other: Option<Spanned<DurationValue>>,
    tcp_close_grace: Option<Spanned<DurationValue>>,
    tcp_opening: Option<Spanned<DurationValue>>,
    tcp_closing: Option<Spanned<DurationValue>>,
    tcp_rst: Option<Spanned<DurationValue>>,
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
    name: Option<Spanned<String>>,
    vip: Spanned<String>,
    protocol: Spanned<String>,
    #[serde(default = "no_ports")]
    ports: Spanned<Vec<Spanned<i64>>>,
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
                Some(v) => Some(cost_value(v).map_err(|e| format!("member {addr}: {e}"))?),
            };
            Ok((addr, weight, cost))
        }
        o => Err(format!(
            "member {o} is neither an address string nor a table {{ addr, weight, cost }}"
        )),
    }
}

/// An access cost (RFC 2391 §5.2): a number, or `"inf"` (`"infinity"`) for a member that
/// cannot be reached.
fn cost_value(v: &toml::Value) -> Result<f64, String> {
    match v {
        toml::Value::Integer(n) => Ok(*n as f64),
        toml::Value::Float(f) => Ok(*f),
        toml::Value::String(s) if matches!(s.as_str(), "inf" | "infinity") => Ok(f64::INFINITY),
        o => Err(format!("cost {o} is not a number or \"inf\"")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AffinityFile {
    prefix: Option<Spanned<i64>>,
    timeout: Option<Spanned<DurationValue>>,
}

fn no_ports() -> Spanned<Vec<Spanned<i64>>> {
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
    parse(path, &read(path)?)
}

/// Reads and validates the configuration of `capture`: `given`, or else the one [`beside`] it,
/// whose absence is told as such, with `remedy` (where a bare "no such file" left a newcomer
/// wondering why that file was looked for).
pub fn load_for(
    capture: &Path,
    given: Option<&Path>,
    remedy: &str,
) -> Result<EngineConfig, ConfigError> {
    let path = given.map_or_else(|| beside(capture), Path::to_path_buf);
    if given.is_none() && std::fs::symlink_metadata(&path).is_err() {
        return Err(ConfigError {
            path,
            line: None,
            field: None,
            cause: format!(
                "no config beside the capture (a capture's config is by default its name with \
                 .toml); {remedy}"
            ),
        });
    }
    load(&path)
}

/// Refuses a folder, a device or a pipe given where a file of this kind (`what`) is read: a
/// device (`/dev/zero`) or a pipe could be read without end. The cause, for an error line;
/// what cannot be looked at passes, for the read to say why.
pub(crate) fn regular_file(path: &Path, what: &str) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(format!("is a folder, not a {what}")),
        Ok(m) if !m.is_file() => Err(format!(
            "not a regular file (a device or a pipe): give a {what}"
        )),
        _ => Ok(()),
    }
}

/// The text of the configuration file `path`: a regular file, not a device or a pipe (which
/// could be read without end).
fn read(path: &Path) -> Result<String, ConfigError> {
    let fail = |cause: String| ConfigError {
        path: path.into(),
        line: None,
        field: None,
        cause,
    };
    regular_file(path, "configuration file").map_err(fail)?;
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read configuration: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        ConfigError {
            line: Some(line),
            ..fail(format!(
                "not UTF-8 text (byte offset {at}); TOML files are UTF-8"
            ))
        }
    })
}

/// Every file a replay with the configuration `path` reads: the file itself and the capacity
/// files its virtual servers name (`capacity_file`, relative to it). Outputs may be none of
/// them. A file that does not parse gives only itself (loading it reports the error).
pub fn input_files(path: &Path) -> Vec<PathBuf> {
    let mut files = vec![path.to_path_buf()];
    let text = read(path).unwrap_or_default();
    if let Ok(file) = toml::from_str::<File>(&text) {
        let dir = path.parent().unwrap_or(Path::new(""));
        files.extend(
            file.virtual_server
                .iter()
                .filter_map(|v| v.capacity_file.as_ref())
                .map(|c| dir.join(c.get_ref())),
        );
    }
    files
}

/// A TOML table header line, `[name]` or `[[name]]`: its name (dotted parts trimmed, quotes
/// taken off) and whether it is an array of tables. `None` for any other line. Only lines
/// outside a value are headers ([`continued`]): `[23],` in a multi-line array is not one.
fn header(l: &str) -> Option<(String, bool)> {
    let l = l.trim();
    let (name, array) = match l.strip_prefix("[[").and_then(|r| r.split_once("]]")) {
        Some((name, _)) => (name, true),
        None => (
            l.strip_prefix('[').and_then(|r| r.split_once(']'))?.0,
            false,
        ),
    };
    let parts: Vec<&str> = name
        .split('.')
        .map(|p| p.trim().trim_matches(['"', '\'']))
        .collect();
    parts
        .iter()
        .all(|p| is_key(p))
        .then(|| (parts.join("."), array))
}

/// Whether `k` can be a TOML key as this file's keys are written (bare, or quoted without
/// dots), not `{ addr` inside an inline table or a comment.
fn is_key(k: &str) -> bool {
    let k = k.trim_matches(['"', '\'']);
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' '))
}

/// For each of `lines`, whether it begins inside a value opened on a line above and not yet
/// closed: an array or inline table written over several lines, or a multi-line string
/// (`"""`, `'''`). Such a line holds neither a key nor a table header, whatever it looks like
/// (`"k=v",`, `[23],`).
fn continued(lines: &[&str]) -> Vec<bool> {
    let mut out = Vec::with_capacity(lines.len());
    let mut depth = 0i64;
    let mut long: Option<&str> = None;
    for line in lines {
        out.push(depth > 0 || long.is_some());
        // Brackets open values only after a key's `=` (a header's are its name's).
        let mut in_value = depth > 0 || long.is_some();
        let mut quote = None;
        let mut i = 0;
        while i < line.len() {
            let rest = &line[i..];
            if let Some(end) = long {
                if rest.starts_with(end) {
                    long = None;
                    i += 3;
                } else {
                    i += rest.chars().next().map_or(1, char::len_utf8);
                }
                continue;
            }
            let c = rest.chars().next().unwrap_or(' ');
            i += c.len_utf8();
            match quote {
                Some(q) => {
                    if c == '\\' && q == '"' {
                        i += line[i..].chars().next().map_or(0, char::len_utf8);
                    } else if c == q {
                        quote = None;
                    }
                }
                None => {
                    if rest.starts_with("\"\"\"") || rest.starts_with("'''") {
                        long = Some(&rest[..3]);
                        i += 2;
                        continue;
                    }
                    match c {
                        '"' | '\'' => quote = Some(c),
                        '#' => break,
                        '=' if depth == 0 => in_value = true,
                        '[' | '{' if in_value => depth += 1,
                        ']' | '}' if in_value => depth = (depth - 1).max(0),
                        _ => {}
                    }
                }
            }
        }
    }
    out
}

/// The key a `key = value` line sets, `None` for any other line.
fn key_of(l: &str) -> Option<String> {
    let k = l.trim().split_once('=')?.0.trim();
    is_key(k).then(|| k.trim_matches(['"', '\'']).to_string())
}

/// The path of the table whose header is `lines[pos]`, with the index of every array of tables
/// on it (TOML 1.0 "Array of Tables": a `[[name]]` header adds an element, a `[name.sub]`
/// header after it is a table of that last element): `[[virtual_server]]` the second time is
/// `virtual_server[1]`, `[virtual_server.affinity]` after the first is
/// `virtual_server[0].affinity`. `inside`: [`continued`] of `lines`.
fn table_path(lines: &[&str], inside: &[bool], pos: usize) -> Option<String> {
    let (name, array) = header(lines[pos])?;
    let parts: Vec<&str> = name.split('.').collect();
    let mut path = String::new();
    for k in 0..parts.len() {
        let prefix = parts[..=k].join(".");
        let count = (0..pos)
            .filter(|&j| !inside[j] && header(lines[j]).is_some_and(|(n, a)| a && n == prefix))
            .count();
        if k > 0 {
            path.push('.');
        }
        path.push_str(parts[k]);
        if k + 1 == parts.len() && array {
            path.push_str(&format!("[{count}]"));
        } else if k + 1 < parts.len() && count > 0 {
            path.push_str(&format!("[{}]", count - 1));
        }
    }
    Some(path)
}

/// The bytes of the header line of the table at `path` in TOML `text` (`virtual_server[1]`,
/// `napt`, as [`table_path`] names it), for an error about the table as a whole.
fn table_span(text: &str, path: &str) -> Option<std::ops::Range<usize>> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let inside = continued(&lines);
    let mut start = 0;
    for (j, line) in lines.iter().enumerate() {
        if !inside[j]
            && header(line).is_some()
            && table_path(&lines, &inside, j).as_deref() == Some(path)
        {
            return Some(start..start + line.trim_end().len().max(1));
        }
        start += line.len();
    }
    None
}

/// The field at byte `offset` of TOML `text`, as errors name fields (`timeouts.tcp`,
/// `virtual_server[1].ports`, `virtual_server[0].affinity.prefix`): the key on that line, or,
/// on a line inside a value written over several lines (a multi-line array or string), the key
/// that value belongs to; under the last table header above it, with array indices
/// ([`table_path`]). On a header line, that table (`virtual_server[1]`). `None` where no key
/// is found.
fn field_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let mut lines: Vec<&str> = text[..line_start].lines().collect();
    lines.push(text[line_start..].lines().next().unwrap_or(""));
    let inside = continued(&lines);
    let last = lines.len() - 1;
    if !inside[last] && header(lines[last]).is_some() {
        return table_path(&lines, &inside, last);
    }
    // This line's key, else (a value continued on this line) the key of the line that
    // opened it; a header above first means no key.
    let at = (0..=last)
        .rev()
        .find(|&j| !inside[j] && (header(lines[j]).is_some() || key_of(lines[j]).is_some()))?;
    let key = key_of(lines[at])?;
    if at < last && !inside[last] {
        // A line of its own after the key's: no key of its own, and not part of that value.
        return None;
    }
    match (0..at)
        .rev()
        .find(|&j| !inside[j] && header(lines[j]).is_some())
    {
        None => Some(key),
        Some(pos) => Some(format!("{}.{key}", table_path(&lines, &inside, pos)?)),
    }
}

/// Why a pool member may not have the address of the virtual server `name` (the `j`th):
/// RFC 2391 §3, the virtual server's address is the router's.
fn vip_as_member(member: Ipv4Addr, name: &str, j: usize) -> String {
    format!(
        "member {member} is the address of virtual server `{name}` (virtual_server[{j}].vip): \
         a router cannot load-share a session to its own virtual address"
    )
}

/// The router's own address field `a` is, if any (`router.inside_address`,
/// `router.outside_address`, `router.addresses[N]`).
fn router_field(cfg: &EngineConfig, a: Ipv4Addr) -> Option<String> {
    if cfg.inside_address == Some(a) {
        return Some("router.inside_address".into());
    }
    if cfg.outside_address == Some(a) {
        return Some("router.outside_address".into());
    }
    let n = cfg.router_addresses.iter().position(|&r| r == a)?;
    Some(format!("router.addresses[{n}]"))
}

/// Why a pool member may not be the router's own address `field`.
fn router_as_member(member: Ipv4Addr, field: &str) -> String {
    format!(
        "member {member} is the router's own address ({field}): a router cannot load-share a \
         session to itself"
    )
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
    // TCP/UDP ports are 1-65535: port 0 is no service port (as in [[static_mapping]]). A
    // port's error is on its own line when the array is written over several.
    let port_list = |list: &[Spanned<i64>], field: &str| {
        let mut ports = Vec::new();
        for p in list {
            let (at, p) = (p.span(), *p.get_ref());
            let p = u16::try_from(p).ok().filter(|&p| p != 0).ok_or_else(|| {
                err(
                    Some(at.clone()),
                    field,
                    format!("port {p} is out of range 1-65535"),
                )
            })?;
            if ports.contains(&p) {
                return Err(err(Some(at), field, format!("port {p} is listed twice")));
            }
            ports.push(p);
        }
        Ok(ports)
    };
    let file: File = toml::from_str(text).map_err(|e| {
        let mut msg = e.message().trim().replace('\n', " ");
        if msg.contains("untagged enum DurationValue") {
            msg = "expected a duration: a whole number of seconds or a string such as \"30s\", \
                   \"500ms\", \"5m\", \"24h\""
                .into();
        }
        let mut field = e
            .span()
            .and_then(|s| field_at(text, s.start))
            .unwrap_or_default();
        // A key missing from a table is reported on the table's header: name the key in it.
        if let Some(missing) = msg
            .strip_prefix("missing field `")
            .and_then(|m| m.split_once('`'))
            .map(|m| m.0)
        {
            field = if field.is_empty() {
                missing.to_string()
            } else {
                format!("{field}.{missing}")
            };
        }
        err(e.span(), &field, msg)
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
    let ip = |s: &Spanned<String>, field: &str| {
        s.get_ref().trim().parse::<Ipv4Addr>().map_err(|_| {
            err(
                Some(s.span()),
                field,
                format!("`{}` is not an IPv4 address", s.get_ref()),
            )
        })
    };
    if let Some(m) = &file.router.mode {
        cfg.mode = match m.get_ref().as_str() {
            "lsnat" => Mode::Lsnat,
            "ls-napt" => Mode::LsNapt,
            other => {
                return Err(err(
                    Some(m.span()),
                    "router.mode",
                    format!("unknown mode `{other}` (expected `lsnat` or `ls-napt`)"),
                ));
            }
        };
    }
    if let Some(a) = &file.router.inside_address {
        cfg.inside_address = Some(ip(a, "router.inside_address")?);
    }
    if let Some(a) = &file.router.outside_address {
        cfg.outside_address = Some(ip(a, "router.outside_address")?);
    }
    for a in &file.router.addresses {
        cfg.router_addresses.push(ip(a, "router.addresses")?);
    }
    if let Some(n) = &file.napt
        && n.get_ref().enabled.as_ref().is_none_or(|e| *e.get_ref())
    {
        // Errors about the table as a whole are on its `[napt]` line (or `napt = {...}`).
        let napt_at = table_span(text, "napt").unwrap_or(n.span());
        let n = n.get_ref();
        let mut inside = Vec::new();
        for p in n.inside.iter().flat_map(|i| i.get_ref()) {
            let bad = || {
                err(
                    Some(p.span()),
                    "napt.inside",
                    format!("`{}` is not an IPv4 prefix (a.b.c.d/len)", p.get_ref()),
                )
            };
            let (a, len) = p
                .get_ref()
                .trim()
                .split_once('/')
                .unwrap_or((p.get_ref(), "32"));
            let a: Ipv4Addr = a.parse().map_err(|_| bad())?;
            let len: u8 = len.parse().ok().filter(|&l| l <= 32).ok_or_else(bad)?;
            inside.push((a, len));
        }
        if inside.is_empty() {
            return Err(err(
                Some(n.inside.as_ref().map_or(napt_at.clone(), |i| i.span())),
                "napt.inside",
                "NAPT needs the inside networks whose outbound sessions it translates".into(),
            ));
        }
        if cfg.outside_address.is_none() {
            let (at, field) = match &n.enabled {
                Some(e) => (e.span(), "napt.enabled"),
                None => (napt_at, "napt"),
            };
            return Err(err(
                Some(at),
                field,
                "NAPT needs the router's outside address (RFC 2391 §3.2): \
                 `outside_address` is missing from [router]"
                    .into(),
            ));
        }
        cfg.napt = Some(NaptConfig { inside });
    }
    let duration = |d: &Option<Spanned<DurationValue>>, field: &str, default: Span| match d {
        None => Ok(default),
        Some(s) => match s.get_ref() {
            DurationValue::Seconds(n) if *n >= 0 => (*n as u64)
                .checked_mul(1_000_000_000)
                .map(Span)
                .ok_or_else(|| {
                    err(
                        Some(s.span()),
                        field,
                        format!("`{n}`: too long (at most {})", Span(u64::MAX)),
                    )
                }),
            DurationValue::Seconds(n) => Err(err(
                Some(s.span()),
                field,
                format!("`{n}`: a duration cannot be negative"),
            )),
            DurationValue::Text(t) => Span::parse(t).map_err(|m| err(Some(s.span()), field, m)),
        },
    };
    let optional = |d: &Option<Spanned<DurationValue>>, field: &str| match d {
        None => Ok(None),
        Some(_) => duration(d, field, Span::default()).map(Some),
    };
    // A duration set to 0 where zero makes no sense: refused at its line, `what` saying which.
    let nonzero = |d: &Option<Spanned<DurationValue>>, field: &str, v: Span, what: &str| match d {
        Some(s) if v.0 == 0 => Err(err(
            Some(s.span()),
            field,
            format!("{what} must be longer than zero"),
        )),
        _ => Ok(v),
    };
    // A fragment timeout of 0 would drop every held fragment at once and give no later
    // fragment its first's translation (RFC 791's reassembly timer; README "Fragments").
    cfg.fragment_timeout = nonzero(
        &file.router.fragment_timeout,
        "router.fragment_timeout",
        duration(
            &file.router.fragment_timeout,
            "router.fragment_timeout",
            cfg.fragment_timeout,
        )?,
        "a fragment timeout",
    )?;
    let count = |v: &Option<Spanned<i64>>, field: &str, default: usize| match v {
        None => Ok(default),
        Some(n) => usize::try_from(*n.get_ref()).map_err(|_| {
            err(
                Some(n.span()),
                field,
                format!("must be 0 or positive, not {}", n.get_ref()),
            )
        }),
    };
    let r = &file.router;
    cfg.fragment_hold_max = count(
        &r.fragment_hold_max,
        "router.fragment_hold_max",
        cfg.fragment_hold_max,
    )?;
    cfg.fragment_hold_bytes = count(
        &r.fragment_hold_bytes,
        "router.fragment_hold_bytes",
        cfg.fragment_hold_bytes,
    )?;
    if let Some(b) = r.icmp_time_exceeded {
        cfg.icmp_time_exceeded = b;
    }
    if let Some(p) = &r.ftp_ports {
        cfg.ftp_ports = port_list(p.get_ref(), "router.ftp_ports")?;
    }
    let d = Timeouts::default();
    let t = &file.timeouts;
    // An idle timeout of 0 would unbind every session before its next packet: refused, as
    // `lsnat audit -p` refuses it. The grace after a close (`tcp_close_grace`, `tcp_rst`) may
    // be 0: state dropped at the close.
    let idle = |d: &Option<Spanned<DurationValue>>, field: &str, default: Span| {
        nonzero(d, field, duration(d, field, default)?, "an idle timeout")
    };
    let idle_opt = |d: &Option<Spanned<DurationValue>>, field: &str| match optional(d, field)? {
        Some(v) => nonzero(d, field, v, "an idle timeout").map(Some),
        None => Ok(None),
    };
    cfg.timeouts = Timeouts {
        tcp: idle(&t.tcp, "timeouts.tcp", d.tcp)?,
        udp: idle(&t.udp, "timeouts.udp", d.udp)?,
        icmp: idle(&t.icmp, "timeouts.icmp", d.icmp)?,
        other: idle(&t.other, "timeouts.other", d.other)?,
        tcp_close_grace: duration(
            &t.tcp_close_grace,
            "timeouts.tcp_close_grace",
            d.tcp_close_grace,
        )?,
        tcp_opening: idle_opt(&t.tcp_opening, "timeouts.tcp_opening")?,
        tcp_closing: idle_opt(&t.tcp_closing, "timeouts.tcp_closing")?,
        tcp_rst: optional(&t.tcp_rst, "timeouts.tcp_rst")?,
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
    // Every member entry (virtual server, address, where), checked against every virtual
    // server's address once all are known.
    let mut member_entries: Vec<(usize, Ipv4Addr, std::ops::Range<usize>)> = Vec::new();
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
                    "unknown protocol `{}` (tcp, udp, icmp, gre, esp, ah, sctp, or a number 0-255)",
                    v.protocol.get_ref()
                ),
            )
        })?;
        // A name says which virtual server a timeline `add` and the reports mean: one each,
        // as `[[policy]]` names are (the default `PROTOCOL-INDEX` included).
        let name = v.name.as_ref().map_or_else(
            || format!("{}-{}", proto::name(protocol), i),
            |n| n.get_ref().clone(),
        );
        if cfg.virtual_servers.iter().any(|o| o.name == name) {
            let at = match &v.name {
                Some(n) => Some(n.span()),
                None => table_span(text, &format!("virtual_server[{i}]")),
            };
            return Err(err(
                at,
                &field("name"),
                format!("a [[virtual_server]] named `{name}` comes earlier in the file"),
            ));
        }
        let ports = port_list(v.ports.get_ref(), &field("ports"))?;
        if matches!(protocol, proto::TCP | proto::UDP) && ports.is_empty() {
            // `ports = []` is that line's fault; no `ports` at all, the protocol's that needs them.
            let at = Some(v.ports.span())
                .filter(|s| s.end > 0)
                .unwrap_or(v.protocol.span());
            return Err(err(
                Some(at),
                &field("ports"),
                "a TCP or UDP virtual server needs its service ports".into(),
            ));
        }
        // RFC 2391 §2.1: a virtual server is its (address, protocol, port); two of them on the
        // same one would leave it undefined which pool a session goes to.
        let clash = cfg.virtual_servers.iter().find_map(|o| {
            if o.vip != vip || o.protocol != protocol {
                return None;
            }
            if ports.is_empty() || o.ports.is_empty() {
                return Some((o, None));
            }
            ports
                .iter()
                .find(|p| o.ports.contains(p))
                .map(|&p| (o, Some(p)))
        });
        if let Some((o, port)) = clash {
            let what = match port {
                Some(p) => format!("{vip} {} port {p}", proto::name(protocol)),
                None => format!("{vip} {}", proto::name(protocol)),
            };
            return Err(err(
                Some(v.vip.span()),
                &field("vip"),
                format!("{what} is already virtual server `{}`'s", o.name),
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
                    Some(w) => u32::try_from(w).map_err(|_| {
                        bad(format!(
                            "member {a}: weight {w} is out of range 0-{}",
                            u32::MAX
                        ))
                    })?,
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
            if a == vip {
                return Err(err(
                    Some(m.span()),
                    &field("members"),
                    format!("member {a} is the virtual server's own address"),
                ));
            }
            if members.contains(&a) {
                return Err(err(
                    Some(m.span()),
                    &field("members"),
                    format!("member {a} is listed twice"),
                ));
            }
            members.push(a);
            member_entries.push((i, a, m.span()));
        }
        if members.is_empty() {
            return Err(err(
                Some(v.members.span()),
                &field("members"),
                "the server pool is empty".into(),
            ));
        }
        if cfg.mode == Mode::LsNapt && !matches!(protocol, proto::TCP | proto::UDP | proto::ICMP) {
            return Err(err(
                Some(v.protocol.span()),
                &field("protocol"),
                format!(
                    "LS-NAPT load-shares only TCP, UDP and ICMP query sessions (RFC 2391 §3.3), not `{}`",
                    v.protocol.get_ref()
                ),
            ));
        }
        if !matches!(protocol, proto::TCP | proto::UDP) && !ports.is_empty() {
            return Err(err(
                Some(v.ports.span()),
                &field("ports"),
                format!(
                    "{} sessions have no TU ports here (RFC 2391 §2.2 keys them by addresses{}): leave `ports` out",
                    v.protocol.get_ref(),
                    if protocol == proto::ICMP {
                        " and query id"
                    } else {
                        " and protocol"
                    }
                ),
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
                let a = a.get_ref();
                let prefix = a.prefix.as_ref().map_or(32, |p| *p.get_ref());
                if !(0..=32).contains(&prefix) {
                    return Err(err(
                        a.prefix.as_ref().map(|p| p.span()),
                        &field("affinity.prefix"),
                        format!("{prefix} is not a prefix length 0-32"),
                    ));
                }
                let timeout =
                    duration(&a.timeout, &field("affinity.timeout"), Span::from_secs(300))?;
                // Client affinity (RSerPool requirements §5) lasts this long after the client's
                // last session on the member ended. 0 is refused, as `ipvsadm -p` refuses a
                // persistence timeout below 1 s: it does not turn affinity off (it would still
                // hold while the client has a session there), which leaving the table out does.
                if let Some(t) = a.timeout.as_ref().filter(|_| timeout.0 == 0) {
                    return Err(err(
                        Some(t.span()),
                        &field("affinity.timeout"),
                        "an affinity timeout must be longer than zero; to turn affinity off, \
                         leave out the [virtual_server.affinity] table"
                            .into(),
                    ));
                }
                Some(AffinityConfig {
                    prefix: prefix as u8,
                    timeout,
                })
            }
        };
        cfg.virtual_servers.push(VirtualServerConfig {
            name,
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
    // RFC 2391 §3: a virtual server's address is the router's own, the one it takes sessions
    // on to load-share them among the pool (§4.1, §4.2); it is no server a pool can send a
    // session to: a session translated to it would be addressed to the router itself. Checked
    // once every virtual server's address is known (a member of one's own: refused above).
    for (i, a, at) in &member_entries {
        if let Some((j, o)) = cfg
            .virtual_servers
            .iter()
            .enumerate()
            .find(|(j, o)| o.vip == *a && j != i)
        {
            return Err(err(
                Some(at.clone()),
                &format!("virtual_server[{i}].members"),
                vip_as_member(*a, &o.name, j),
            ));
        }
        if let Some(f) = router_field(&cfg, *a) {
            return Err(err(
                Some(at.clone()),
                &format!("virtual_server[{i}].members"),
                router_as_member(*a, &f),
            ));
        }
    }
    let dh = &file.dead_host;
    cfg.dead_host.enabled = dh.enabled.unwrap_or(cfg.dead_host.enabled);
    cfg.dead_host.answer_within = duration(
        &dh.answer_within,
        "dead_host.answer_within",
        cfg.dead_host.answer_within,
    )?;
    cfg.dead_host.retry_after = duration(
        &dh.retry_after,
        "dead_host.retry_after",
        cfg.dead_host.retry_after,
    )?;
    for (f, d, v) in [
        (
            "answer_within",
            &dh.answer_within,
            cfg.dead_host.answer_within,
        ),
        ("retry_after", &dh.retry_after, cfg.dead_host.retry_after),
    ] {
        if let Some(d) = d
            && v == Span(0)
        {
            return Err(err(
                Some(d.span()),
                &format!("dead_host.{f}"),
                "must be longer than zero".into(),
            ));
        }
    }
    let listed: Vec<Ipv4Addr> = cfg
        .virtual_servers
        .iter()
        .flat_map(|v| v.members.iter().copied())
        .collect();
    let vips: Vec<Ipv4Addr> = cfg.virtual_servers.iter().map(|v| v.vip).collect();
    let is_vip = |a: Ipv4Addr| vips.contains(&a);
    let mut added = Vec::new();
    for (i, t) in file.timeline.iter().enumerate() {
        let field = |f: &str| format!("timeline[{i}].{f}");
        let at = parse_at(t.at.get_ref()).map_err(|m| err(Some(t.at.span()), &field("at"), m))?;
        let member = t.member.get_ref().trim().parse::<Ipv4Addr>().map_err(|_| {
            err(
                Some(t.member.span()),
                &field("member"),
                format!("`{}` is not an IPv4 address", t.member.get_ref()),
            )
        })?;
        let need = |what: &str| {
            err(
                Some(t.action.span()),
                &field(what),
                format!("action `{}` needs `{what}`", t.action.get_ref()),
            )
        };
        let action = match t.action.get_ref().as_str() {
            "add" => {
                let v = t
                    .virtual_server
                    .as_ref()
                    .ok_or_else(|| need("virtual_server"))?;
                let vs = cfg
                    .virtual_servers
                    .iter()
                    .position(|c| &c.name == v.get_ref())
                    .ok_or_else(|| {
                        err(
                            Some(v.span()),
                            &field("virtual_server"),
                            format!("no virtual server named `{}`", v.get_ref()),
                        )
                    })?;
                if cfg.virtual_servers[vs].vip == member {
                    return Err(err(
                        Some(t.member.span()),
                        &field("member"),
                        format!("{member} is the virtual server's own address"),
                    ));
                }
                // As a configured member (RFC 2391 §3): no virtual server's address.
                if let Some((j, o)) = cfg
                    .virtual_servers
                    .iter()
                    .enumerate()
                    .find(|(_, o)| o.vip == member)
                {
                    return Err(err(
                        Some(t.member.span()),
                        &field("member"),
                        vip_as_member(member, &o.name, j),
                    ));
                }
                if let Some(f) = router_field(&cfg, member) {
                    return Err(err(
                        Some(t.member.span()),
                        &field("member"),
                        router_as_member(member, &f),
                    ));
                }
                added.push(member);
                TimelineAction::Add { virtual_server: vs }
            }
            "drain" => TimelineAction::Drain,
            "remove" => TimelineAction::Remove,
            "weight" => {
                let w = t.weight.as_ref().ok_or_else(|| need("weight"))?;
                let v = u32::try_from(*w.get_ref()).map_err(|_| {
                    err(
                        Some(w.span()),
                        &field("weight"),
                        format!("weight {} is out of range 0-{}", w.get_ref(), u32::MAX),
                    )
                })?;
                TimelineAction::Weight(v)
            }
            "cost" => {
                let c = t.cost.as_ref().ok_or_else(|| need("cost"))?;
                let v = cost_value(c.get_ref())
                    .and_then(|v| {
                        if v >= 0.0 {
                            Ok(v)
                        } else {
                            Err(format!("cost {v} must be ≥ 0 or \"inf\""))
                        }
                    })
                    .map_err(|m| err(Some(c.span()), &field("cost"), m))?;
                TimelineAction::Cost(v)
            }
            "remap" => {
                let b = t.backup.as_ref().ok_or_else(|| need("backup"))?;
                let backup = b.get_ref().trim().parse::<Ipv4Addr>().map_err(|_| {
                    err(
                        Some(b.span()),
                        &field("backup"),
                        format!("`{}` is not an IPv4 address", b.get_ref()),
                    )
                })?;
                if backup == member {
                    return Err(err(
                        Some(b.span()),
                        &field("backup"),
                        "a member cannot be its own backup".into(),
                    ));
                }
                if is_vip(backup) {
                    return Err(err(
                        Some(b.span()),
                        &field("backup"),
                        format!("{backup} is a virtual server's own address"),
                    ));
                }
                TimelineAction::Remap { backup }
            }
            other => {
                return Err(err(
                    Some(t.action.span()),
                    &field("action"),
                    format!(
                        "unknown action `{other}` (expected add, drain, remove, weight, cost or remap)"
                    ),
                ));
            }
        };
        // A setting of another action would be ignored: refused, so that what the file says
        // is what happens (a `weight` on `drain` sets no weight).
        let uses = match action {
            TimelineAction::Add { .. } => "virtual_server",
            TimelineAction::Weight(_) => "weight",
            TimelineAction::Cost(_) => "cost",
            TimelineAction::Remap { .. } => "backup",
            TimelineAction::Drain | TimelineAction::Remove => "",
        };
        for (name, at) in [
            (
                "virtual_server",
                t.virtual_server.as_ref().map(|v| v.span()),
            ),
            ("weight", t.weight.as_ref().map(|v| v.span())),
            ("cost", t.cost.as_ref().map(|v| v.span())),
            ("backup", t.backup.as_ref().map(|v| v.span())),
        ] {
            if let Some(at) = at.filter(|_| name != uses) {
                return Err(err(
                    Some(at),
                    &field(name),
                    format!("`{name}` does not go with action `{}`", t.action.get_ref()),
                ));
            }
        }
        if !matches!(action, TimelineAction::Add { .. })
            && !listed.contains(&member)
            && !added.contains(&member)
        {
            return Err(err(
                Some(t.member.span()),
                &field("member"),
                format!("{member} is in no virtual server's pool (add it first)"),
            ));
        }
        cfg.timeline.push(TimelineEntry { at, member, action });
    }
    for (i, m) in file.static_mapping.iter().enumerate() {
        let field = |f: &str| format!("static_mapping[{i}].{f}");
        let port = |p: &Option<Spanned<i64>>, f: &str| match p {
            None => Ok(None),
            Some(p) => u16::try_from(*p.get_ref())
                .ok()
                .filter(|&n| n != 0)
                .map(Some)
                .ok_or_else(|| {
                    err(
                        Some(p.span()),
                        &field(f),
                        format!("port {} is out of range 1-65535", p.get_ref()),
                    )
                }),
        };
        let s = m.get_ref();
        let member = ip(&s.member, &field("member"))?;
        let backup = ip(&s.backup, &field("backup"))?;
        // As the timeline's `remap` (RFC 2391 §3: new sessions to a server "redirected ... to
        // the backup server", another server).
        if backup == member {
            return Err(err(
                Some(s.backup.span()),
                &field("backup"),
                "a member cannot be its own backup".into(),
            ));
        }
        if cfg.virtual_servers.iter().any(|v| v.vip == backup) {
            return Err(err(
                Some(s.backup.span()),
                &field("backup"),
                format!("{backup} is a virtual server's own address"),
            ));
        }
        let port_ = port(&s.port, "port")?;
        let backup_port = port(&s.backup_port, "backup_port")?;
        if !cfg
            .virtual_servers
            .iter()
            .any(|v| v.members.contains(&member))
        {
            return Err(err(
                Some(s.member.span()),
                &field("member"),
                format!("{member} is not a member of any virtual server's pool"),
            ));
        }
        if let (Some(b), None) = (&s.backup_port, port_) {
            return Err(err(
                Some(b.span()),
                &field("backup_port"),
                "a backup port needs the member's `port` it replaces".into(),
            ));
        }
        if cfg
            .static_mappings
            .iter()
            .any(|o: &StaticMapping| o.member == member && o.port == port_)
        {
            return Err(err(
                Some(s.member.span()),
                &field("member"),
                format!("{member} is mapped twice for the same port"),
            ));
        }
        cfg.static_mappings.push(StaticMapping {
            member,
            port: port_,
            backup,
            backup_port,
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

/// A timeline instant: `+12.5s` (after the capture's first packet, any duration
/// [`Span::parse`] takes) or an RFC 3339 UTC time `2024-05-01T10:00:00.25Z` (an offset such as
/// `+02:00` is allowed instead of `Z`).
fn parse_at(text: &str) -> Result<TimelineAt, String> {
    let t = text.trim();
    if let Some(rel) = t.strip_prefix('+') {
        return Span::parse(rel).map(TimelineAt::Relative);
    }
    rfc3339(t).map(TimelineAt::Absolute).ok_or_else(|| {
        // A date shaped right whose day is past its month's last says so.
        let day = || {
            let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
            let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
            let last = days_in_month(y, mo);
            (t.get(4..5) == Some("-") && t.get(7..8) == Some("-") && (1..=12).contains(&mo))
                .then_some(())?;
            (d > last && d <= 31).then(|| {
                format!("`{text}`: {} has no day {d} (it has {last})", &t[..7])
            })
        };
        if let Some(m) = day() {
            return m;
        }
        format!(
            "`{text}` is neither `+DURATION` (after the first packet) nor an RFC 3339 time like 2024-05-01T10:00:00Z"
        )
    })
}

fn rfc3339(t: &str) -> Option<Timestamp> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = t.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=days_in_month(y, mo)).contains(&d) {
        return None;
    }
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &t[19..];
    let mut nanos: i64 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        nanos = frac[..n].parse::<i64>().ok()? * 10i64.pow(9 - n as u32);
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && matches!(&o[..1], "+" | "-") && &o[3..4] == ":" => {
            let oh: i64 = o[1..3].parse().ok()?;
            let om: i64 = o[4..6].parse().ok()?;
            let v = oh * 3600 + om * 60;
            if o.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos as u64)
        .map(Timestamp)
}

/// The days of month `mo` (1-12) of year `y`: RFC 3339 §5.7 and appendix C, February has 29
/// in a leap year of the Gregorian calendar (divisible by 4 and not by 100, or by 400).
fn days_in_month(y: i64, mo: i64) -> i64 {
    match mo {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
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

    /// The one-line error `text` gives as `lab.toml`.
    fn error_of(text: &str) -> String {
        parse(Path::new("lab.toml"), text).unwrap_err().to_string()
    }

    /// Whole seconds too many for u64 nanoseconds are refused like any too-long duration,
    /// never saturated; negative ones are refused.
    #[test]
    fn whole_seconds_out_of_range_are_refused() {
        let cfg = |v: &str| {
            format!(
                "[timeouts]\nudp = {v}\n[[virtual_server]]\nvip = \"198.18.0.100\"\nprotocol = \"udp\"\nports = [53]\nmembers = [\"203.0.113.1\"]\n"
            )
        };
        let e = error_of(&cfg("18446744074"));
        assert!(e.contains("timeouts.udp") && e.contains("too long"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = error_of(&cfg("-1"));
        assert!(e.contains("`-1`: a duration cannot be negative"), "{e}");
        let e = error_of(&cfg("\"0s\""));
        assert!(
            e.contains("timeouts.udp") && e.contains("longer than zero"),
            "{e}"
        );
        let c = parse(Path::new("x.toml"), &cfg("18446744073")).unwrap();
        assert_eq!(c.timeouts.udp, Span(18_446_744_073_000_000_000));
    }

    /// The byte offset of line `n` (from 1) of `t`.
    fn line_start(t: &str, n: usize) -> usize {
        t.split_inclusive('\n').take(n - 1).map(str::len).sum()
    }

    /// Fields are named with the index of every array of tables on their path, a line inside
    /// a multi-line array by its key, a malformed header by nothing.
    #[test]
    fn field_at_names_the_key_a_line_belongs_to() {
        let t = "[[virtual_server]]\nports = [\n  80, # [\n  \"x]\",\n]\nname = \"a\"\n\
                 [[virtual_server]]\n[virtual_server.affinity]\nprefx = 1\n[bad\\nkey]\n";
        let line = |n: usize| line_start(t, n);
        let at = |n: usize| field_at(t, line(n) + 2);
        assert_eq!(at(1).as_deref(), Some("virtual_server[0]"));
        assert_eq!(at(4).as_deref(), Some("virtual_server[0].ports"));
        assert_eq!(at(6).as_deref(), Some("virtual_server[0].name"));
        assert_eq!(at(7).as_deref(), Some("virtual_server[1]"));
        assert_eq!(at(8).as_deref(), Some("virtual_server[1].affinity"));
        assert_eq!(at(9).as_deref(), Some("virtual_server[1].affinity.prefx"));
        assert_eq!(at(10), None);
        assert_eq!(
            table_span(t, "virtual_server[1]").map(|s| s.start),
            Some(line(7))
        );
    }

    /// Lines inside a value are neither keys nor headers, whatever they look like: an array
    /// element `"k=v"` or `[23]`, a header inside a multi-line string; a quoted header is the
    /// same table as a bare one (found by a re-audit: these named `k`, `23`, a fourth
    /// `virtual_server` and `"virtual_server"[0]`).
    #[test]
    fn field_at_skips_what_lies_inside_values() {
        let t = "[[virtual_server]]\nname = \"\"\"web\n[[virtual_server]]\nx = 1\n\"\"\"\n\
                 ports = [\n  \"k=v\",\n  [23],\n]\n[[\"virtual_server\"]]\nbogus = 1\n";
        let line = |n: usize| line_start(t, n);
        let at = |n: usize| field_at(t, line(n) + 2);
        assert_eq!(at(3).as_deref(), Some("virtual_server[0].name"));
        assert_eq!(at(4).as_deref(), Some("virtual_server[0].name"));
        assert_eq!(at(7).as_deref(), Some("virtual_server[0].ports"));
        assert_eq!(at(8).as_deref(), Some("virtual_server[0].ports"));
        assert_eq!(at(10).as_deref(), Some("virtual_server[1]"));
        assert_eq!(at(11).as_deref(), Some("virtual_server[1].bogus"));
        assert_eq!(
            table_span(t, "virtual_server[1]").map(|s| s.start),
            Some(line(10))
        );
    }

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
        let e = error_of(&bad);
        assert_eq!(
            e,
            "lab.toml:14: field `virtual_server[0].members`: `172.85.0.300` is not an IPv4 address"
        );
        let bad = GOOD.replace("least-load", "fastest");
        let e = error_of(&bad);
        assert!(
            e.starts_with(
                "lab.toml:13: field `virtual_server[0].algorithm`: unknown algorithm `fastest`"
            ),
            "{e}"
        );
        let bad = GOOD.replace("udp = \"5m\"", "udp = \"5 parsecs\"");
        let e = error_of(&bad);
        assert!(e.starts_with("lab.toml:6: field `timeouts.udp`:"), "{e}");
        let bad = GOOD.replace("ttl_decrement", "ttl_decrements");
        let e = error_of(&bad);
        assert!(
            e.starts_with(
                "lab.toml:4: field `router.ttl_decrements`: unknown field `ttl_decrements`"
            ),
            "{e}"
        );
        assert!(!e.contains('\n'));
        // Values of the wrong type name their field too, and a duration says what it takes.
        let bad = GOOD.replace("udp = \"5m\"", "udp = 1.5");
        assert_eq!(
            error_of(&bad),
            "lab.toml:6: field `timeouts.udp`: expected a duration: a whole number of seconds or \
             a string such as \"30s\", \"500ms\", \"5m\", \"24h\""
        );
        let bad = GOOD.replace("ports = [80, 23]", "ports = 80");
        assert_eq!(
            error_of(&bad),
            "lab.toml:12: field `virtual_server[0].ports`: invalid type: integer `80`, expected a sequence"
        );
        let bad = format!("{GOOD}[[virtual_server]]\nvip = true\n");
        assert!(
            error_of(&bad).contains("field `virtual_server[1].vip`"),
            "{}",
            error_of(&bad)
        );
    }

    #[test]
    fn a_service_belongs_to_one_virtual_server_and_a_member_is_not_its_vip() {
        // The same VIP, protocol and port twice: which pool a session goes to is undefined.
        let twice = format!(
            "{GOOD}[[virtual_server]]\nname = \"mail\"\nvip = \"172.87.0.100\"\n\
             protocol = \"tcp\"\nports = [25, 23]\nmembers = [\"172.85.0.9\"]\n"
        );
        let e = error_of(&twice);
        assert_eq!(
            e,
            "lab.toml:17: field `virtual_server[1].vip`: 172.87.0.100 tcp port 23 is already virtual server `web`'s"
        );
        // Another protocol, or another port, on the same VIP is another service.
        for other in [
            "ports = [25, 23]\nprotocol = \"udp\"",
            "ports = [25]\nprotocol = \"tcp\"",
        ] {
            let ok = format!(
                "{GOOD}[[virtual_server]]\nname = \"mail\"\nvip = \"172.87.0.100\"\n\
                 {other}\nmembers = [\"172.85.0.9\"]\n"
            );
            assert!(parse(Path::new("lab.toml"), &ok).is_ok(), "{other}");
        }
        // A port listed twice in one virtual server is a slip, as a member listed twice is.
        let e = error_of(&GOOD.replace("ports = [80, 23]", "ports = [80, 23, 80]"));
        assert!(
            e.ends_with("field `virtual_server[0].ports`: port 80 is listed twice"),
            "{e}"
        );
        let icmp = "[[virtual_server]]\nvip = \"172.87.0.100\"\nprotocol = \"icmp\"\n\
                    members = [\"172.85.0.9\"]\n";
        let e = error_of(&format!("{GOOD}{icmp}{icmp}"));
        assert!(
            e.ends_with("172.87.0.100 icmp is already virtual server `icmp-1`'s"),
            "{e}"
        );
        let sctp = "[[virtual_server]]\nvip = \"172.87.0.101\"\nprotocol = \"sctp\"\n\
                    ports = [80]\nmembers = [\"172.85.0.9\"]\n";
        let e = error_of(&format!("{GOOD}{sctp}"));
        assert!(
            e.starts_with(
                "lab.toml:18: field `virtual_server[1].ports`: sctp sessions have no TU ports"
            ),
            "{e}"
        );
        let own = GOOD.replace("\"172.85.0.3\"", "\"172.87.0.100\"");
        let e = error_of(&own);
        assert_eq!(
            e,
            "lab.toml:14: field `virtual_server[0].members`: member 172.87.0.100 is the virtual server's own address"
        );
    }

    /// RFC 2391 §3: a virtual server's address is the router's; no pool (nor the timeline's
    /// `add`) may hold another virtual server's, whether that one comes later or earlier in
    /// the file, named or not, the member written as an address or a table. The error is at
    /// the member's line and names the virtual server whose address it is.
    #[test]
    fn a_member_is_no_other_virtual_servers_address() {
        let why = "a router cannot load-share a session to its own virtual address";
        let dns = "[[virtual_server]]\nname = \"dns\"\nvip = \"172.87.0.53\"\n\
                   protocol = \"udp\"\nports = [53]\nmembers = [\"172.85.0.1\"]\n";
        let later = GOOD.replace("\"172.85.0.3\"", "\"172.87.0.53\"") + dns;
        assert_eq!(
            error_of(&later),
            format!(
                "lab.toml:14: field `virtual_server[0].members`: member 172.87.0.53 is the \
                 address of virtual server `dns` (virtual_server[1].vip): {why}"
            )
        );
        // Unnamed, by its default name.
        let unnamed = later.replace("name = \"dns\"\n", "");
        assert!(
            error_of(&unnamed).ends_with(
                "member 172.87.0.53 is the address of virtual server `udp-1` \
                 (virtual_server[1].vip): a router cannot load-share a session to its own \
                 virtual address"
            ),
            "{}",
            error_of(&unnamed)
        );
        let table = GOOD.replace("\"172.85.0.3\"", "{ addr = \"172.87.0.53\", weight = 2 }") + dns;
        assert_eq!(
            error_of(&table),
            format!(
                "lab.toml:14: field `virtual_server[0].members`: member 172.87.0.53 is the \
                 address of virtual server `dns` (virtual_server[1].vip): {why}"
            )
        );
        let earlier = format!(
            "{GOOD}{}",
            dns.replace("name = \"dns\"\n", "")
                .replace("[\"172.85.0.1\"]", "[\"172.85.0.1\",\n  \"172.87.0.100\"]")
        );
        assert_eq!(
            error_of(&earlier),
            format!(
                "lab.toml:20: field `virtual_server[1].members`: member 172.87.0.100 is the \
                 address of virtual server `web` (virtual_server[0].vip): {why}"
            )
        );
        let added = format!(
            "{GOOD}{dns}[[timeline]]\nat = \"+1s\"\naction = \"add\"\n\
             member = \"172.87.0.53\"\nvirtual_server = \"web\"\n"
        );
        assert_eq!(
            error_of(&added),
            format!(
                "lab.toml:24: field `timeline[0].member`: member 172.87.0.53 is the address of \
                 virtual server `dns` (virtual_server[1].vip): {why}"
            )
        );
        // Nor the router's own addresses (a timeline's `add` of them either).
        for (setting, field) in [
            ("inside_address = \"172.87.0.9\"", "router.inside_address"),
            ("outside_address = \"172.87.0.9\"", "router.outside_address"),
            (
                "addresses = [\"172.87.0.1\", \"172.87.0.9\"]",
                "router.addresses[1]",
            ),
        ] {
            let own = GOOD.replace(
                "ttl_decrement = false",
                &format!("ttl_decrement = false\n{setting}"),
            );
            let member = own.replace("\"172.85.0.3\"", "\"172.87.0.9\"");
            assert!(
                error_of(&member).ends_with(&format!(
                    "field `virtual_server[0].members`: member 172.87.0.9 is the router's own \
                     address ({field}): a router cannot load-share a session to itself"
                )),
                "{}",
                error_of(&member)
            );
            let added = format!(
                "{own}[[timeline]]\nat = \"+1s\"\naction = \"add\"\n\
                 member = \"172.87.0.9\"\nvirtual_server = \"web\"\n"
            );
            assert!(
                error_of(&added).ends_with(&format!(
                    "field `timeline[0].member`: member 172.87.0.9 is the router's own \
                     address ({field}): a router cannot load-share a session to itself"
                )),
                "{}",
                error_of(&added)
            );
            // With the router's address elsewhere, the same config parses.
            parse(Path::new("ok.toml"), &own).unwrap();
        }
        // The same pool with another address is fine.
        let c = parse(Path::new("ok.toml"), &(GOOD.to_string() + dns)).unwrap();
        assert_eq!(
            c.virtual_servers[1].members,
            vec![Ipv4Addr::new(172, 85, 0, 1)]
        );
    }

    #[test]
    fn dead_host_and_timeline() {
        let text = format!(
            "{GOOD}\n[dead_host]\nenabled = true\nanswer_within = \"2s\"\n\n\
             [[timeline]]\nat = \"+12.5s\"\naction = \"drain\"\nmember = \"172.85.0.2\"\n\n\
             [[timeline]]\nat = \"2024-05-01T10:00:00.25Z\"\naction = \"add\"\n\
             member = \"172.85.0.9\"\nvirtual_server = \"web\"\n\n\
             [[timeline]]\nat = \"+20s\"\naction = \"remap\"\nmember = \"172.85.0.9\"\n\
             backup = \"172.85.0.1\"\n"
        );
        let c = parse(Path::new("x.toml"), &text).unwrap();
        assert!(c.dead_host.enabled);
        assert_eq!(c.dead_host.answer_within, Span::from_secs(2));
        assert_eq!(c.dead_host.retry_after, Span::from_secs(180));
        assert_eq!(
            c.timeline[0].at,
            TimelineAt::Relative(Span::from_millis(12_500))
        );
        assert_eq!(c.timeline[0].action, TimelineAction::Drain);
        // 2024-05-01T10:00:00Z = 1714557600 (date -u -d ... +%s)
        assert_eq!(
            c.timeline[1].at,
            TimelineAt::Absolute(Timestamp(1_714_557_600_250_000_000))
        );
        assert_eq!(
            c.timeline[1].action,
            TimelineAction::Add { virtual_server: 0 }
        );
        assert_eq!(
            rfc3339("2024-05-01T12:00:00+02:00"),
            Some(Timestamp(1_714_557_600_000_000_000))
        );

        let bad = text.replace("action = \"drain\"", "action = \"pause\"");
        let e = parse(Path::new("t.toml"), &bad).unwrap_err().to_string();
        assert!(
            e.starts_with("t.toml:22: field `timeline[0].action`: unknown action `pause`"),
            "{e}"
        );
        let bad = text.replace("+12.5s", "yesterday");
        let e = parse(Path::new("t.toml"), &bad).unwrap_err().to_string();
        assert!(
            e.starts_with("t.toml:21: field `timeline[0].at`: `yesterday`"),
            "{e}"
        );
        let bad = text.replace("member = \"172.85.0.2\"", "member = \"172.85.0.7\"");
        let e = parse(Path::new("t.toml"), &bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "t.toml:23: field `timeline[0].member`: 172.85.0.7 is in no virtual server's pool (add it first)"
        );
        // Neither a member added nor a backup may be a virtual server's own address.
        let bad = text.replace(
            "member = \"172.85.0.9\"\nvirtual_server",
            "member = \"172.87.0.100\"\nvirtual_server",
        );
        let e = parse(Path::new("t.toml"), &bad).unwrap_err().to_string();
        assert!(
            e.contains("timeline[1].member`: 172.87.0.100 is the virtual server's own address"),
            "{e}"
        );
        let bad = text.replace("backup = \"172.85.0.1\"", "backup = \"172.87.0.100\"");
        let e = parse(Path::new("t.toml"), &bad).unwrap_err().to_string();
        assert!(
            e.contains("timeline[2].backup`: 172.87.0.100 is a virtual server's own address"),
            "{e}"
        );
        let bad = format!(
            "{GOOD}\n[[static_mapping]]\nmember = \"172.85.0.1\"\nbackup = \"172.87.0.100\"\n"
        );
        let e = parse(Path::new("t.toml"), &bad).unwrap_err().to_string();
        assert!(
            e.contains("static_mapping[0].backup`: 172.87.0.100 is a virtual server's own address"),
            "{e}"
        );
        let bad = text.replace("answer_within = \"2s\"", "answer_within = \"0s\"");
        let e = parse(Path::new("t.toml"), &bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "t.toml:18: field `dead_host.answer_within`: must be longer than zero"
        );
    }

    #[test]
    fn router_keys_for_fragments_and_time_exceeded() {
        let text = GOOD.replace(
            "ttl_decrement",
            "fragment_hold_max = 8\nfragment_hold_bytes = 4096\nicmp_time_exceeded = true\n\
             outside_address = \"198.51.100.1\"\ninside_address = \"203.0.113.254\"\nttl_decrement",
        );
        let c = parse(Path::new("x.toml"), &text).unwrap();
        assert_eq!((c.fragment_hold_max, c.fragment_hold_bytes), (8, 4096));
        assert!(c.icmp_time_exceeded);
        assert_eq!(c.outside_address, Some(Ipv4Addr::new(198, 51, 100, 1)));
        assert_eq!(c.inside_address, Some(Ipv4Addr::new(203, 0, 113, 254)));
        let d = parse(Path::new("x.toml"), GOOD).unwrap();
        assert_eq!(
            (d.fragment_hold_max, d.icmp_time_exceeded, d.outside_address),
            (64, false, None)
        );
        let bad = GOOD.replace(
            "ttl_decrement",
            "outside_address = \"router\"\nttl_decrement",
        );
        let e = error_of(&bad);
        assert_eq!(
            e,
            "lab.toml:4: field `router.outside_address`: `router` is not an IPv4 address"
        );
        let bad = GOOD.replace("ttl_decrement", "fragment_hold_max = -1\nttl_decrement");
        let e = error_of(&bad);
        assert!(
            e.starts_with("lab.toml:4: field `router.fragment_hold_max`"),
            "{e}"
        );
    }

    #[test]
    fn ftp_ports_default_to_21_and_an_empty_list_turns_the_gateway_off() {
        let d = parse(Path::new("x.toml"), GOOD).unwrap();
        assert_eq!(d.ftp_ports, [21]);
        let with = |ports: &str| {
            let text = GOOD.replace(
                "ttl_decrement",
                &format!("ftp_ports = {ports}\nttl_decrement"),
            );
            parse(Path::new("x.toml"), &text).unwrap().ftp_ports
        };
        assert_eq!(with("[]"), Vec::<u16>::new());
        assert_eq!(with("[21, 2121]"), [21, 2121]);
    }

    const MODES: &str = r#"
[router]
mode = "ls-napt"
inside_address = "203.0.113.254"
outside_address = "198.51.100.1"
addresses = ["192.0.2.1"]
[napt]
enabled = true
inside = ["203.0.113.0/24", "10.0.0.1"]
[[virtual_server]]
vip = "198.51.100.1"
protocol = "tcp"
ports = [80]
members = ["203.0.113.1", "203.0.113.2"]
[[static_mapping]]
member = "203.0.113.2"
backup = "203.0.113.3"
[[static_mapping]]
member = "203.0.113.1"
port = 80
backup = "203.0.113.3"
backup_port = 8080
"#;

    #[test]
    fn parses_modes_napt_and_static_mappings() {
        let c = parse(Path::new("m.toml"), MODES).unwrap();
        assert_eq!(c.mode, Mode::LsNapt);
        assert_eq!(c.inside_address, Some(Ipv4Addr::new(203, 0, 113, 254)));
        assert_eq!(c.outside_address, Some(Ipv4Addr::new(198, 51, 100, 1)));
        assert_eq!(c.router_addresses, [Ipv4Addr::new(192, 0, 2, 1)]);
        assert_eq!(
            c.napt.unwrap().inside,
            [
                (Ipv4Addr::new(203, 0, 113, 0), 24),
                (Ipv4Addr::new(10, 0, 0, 1), 32)
            ]
        );
        assert_eq!(c.static_mappings.len(), 2);
        assert_eq!(c.static_mappings[1].port, Some(80));
        assert_eq!(c.static_mappings[1].backup_port, Some(8080));
        // Defaults keep today's behaviour.
        let d = parse(Path::new("x.toml"), GOOD).unwrap();
        assert_eq!(
            (d.mode, d.napt, d.static_mappings.len()),
            (Mode::Lsnat, None, 0)
        );
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

    /// A client-affinity timeout of zero is refused at its line, saying how to turn affinity
    /// off (leave the table out); zero would not mean off, as `ipvsadm -p` refuses it too. The
    /// shortest timeout above zero is taken.
    #[test]
    fn a_zero_affinity_timeout_is_refused() {
        for zero in ["\"0s\"", "0", "\"0ms\"", "\"0h0m\""] {
            let text = ALGO.replace("timeout = \"5m\"", &format!("timeout = {zero}"));
            assert_eq!(
                error_of(&text),
                "lab.toml:14: field `virtual_server[0].affinity.timeout`: an affinity timeout \
                 must be longer than zero; to turn affinity off, leave out the \
                 [virtual_server.affinity] table",
                "{zero}"
            );
        }
        let c = parse(Path::new("a.toml"), &ALGO.replace("\"5m\"", "\"1ns\"")).unwrap();
        assert_eq!(
            c.virtual_servers[0].affinity,
            Some(AffinityConfig {
                prefix: 24,
                timeout: Span(1)
            })
        );
        // Without the table, no affinity: the way to turn it off.
        let off = ALGO.replace(
            "[virtual_server.affinity]\nprefix = 24\ntimeout = \"5m\"\n",
            "",
        );
        assert_eq!(
            parse(Path::new("a.toml"), &off).unwrap().virtual_servers[0].affinity,
            None
        );
    }

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
    fn mode_errors_name_file_line_and_field() {
        let e = |text: String| parse(Path::new("m.toml"), &text).unwrap_err().to_string();
        assert_eq!(
            e(MODES.replace("\"ls-napt\"", "\"napt\"")),
            "m.toml:3: field `router.mode`: unknown mode `napt` (expected `lsnat` or `ls-napt`)"
        );
        assert!(
            e(MODES.replace("\"tcp\"", "\"gre\"")).starts_with(
                "m.toml:12: field `virtual_server[0].protocol`: LS-NAPT load-shares only TCP, UDP and ICMP"
            )
        );
        assert_eq!(
            e(MODES.replace("10.0.0.1\"", "10.0.0.1/33\"")),
            "m.toml:9: field `napt.inside`: `10.0.0.1/33` is not an IPv4 prefix (a.b.c.d/len)"
        );
        assert_eq!(
            e(MODES.replace("outside_address = \"198.51.100.1\"\n", "")),
            "m.toml:7: field `napt.enabled`: NAPT needs the router's outside address \
             (RFC 2391 §3.2): `outside_address` is missing from [router]"
        );
        assert_eq!(
            e(MODES.replace("member = \"203.0.113.2\"", "member = \"203.0.113.9\"")),
            "m.toml:16: field `static_mapping[0].member`: 203.0.113.9 is not a member of any virtual server's pool"
        );
        assert_eq!(
            e(MODES.replace("backup_port = 8080", "backup_port = 70000")),
            "m.toml:22: field `static_mapping[1].backup_port`: port 70000 is out of range 1-65535"
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
