//! Invalid configurations end to end: one line on stderr, `FILE:LINE: field `NAME`: cause`,
//! the line of the offending key or value (not its table's header), the field's full path with
//! its array indices, exit code 2, nothing written, never a panic (README "Configuration").

mod common;

use std::path::Path;

/// The error `lsnat replay` gives for the configuration `text` (written as `bad.toml`, with
/// `extra` files beside it): asserts exit 2, one line, no panic and no output written, and
/// returns that line without `lsnat: error: ` and the scratch folder's path before `bad.toml`.
fn config_error(text: &str, extra: &[(&str, &str)]) -> String {
    let scratch = common::scratch();
    let dir = scratch.path();
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, text).unwrap();
    for (name, body) in extra {
        std::fs::write(dir.join(name), body).unwrap();
    }
    let out = dir.join("out.pcap");
    let json = dir.join("report.json");
    let o = common::lsnat()
        .args(["replay", "captures/rfc2391-fig1.pcap", "-c"])
        .arg(&cfg)
        .arg("-o")
        .arg(&out)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("runs");
    let line = refused(&o, &[&out, &json]);
    let mut left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut expected: Vec<String> = std::iter::once("bad.toml")
        .chain(extra.iter().map(|(n, _)| *n))
        .map(String::from)
        .collect();
    expected.sort();
    assert_eq!(left, expected, "nothing written beside the config");
    after(&line, &format!("lsnat: error: {}/", dir.display()))
}

/// Asserts that the run `o` was refused as an invalid configuration: exit 2, one line on
/// stderr, no panic, none of `outputs` written. Returns that line.
#[track_caller]
fn refused(o: &std::process::Output, outputs: &[&Path]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "exit code; stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line of error, got: {err}");
    assert!(outputs.iter().all(|p| !p.exists()), "nothing written");
    lines[0].to_string()
}

/// `line` without `prefix`, which it must start with.
#[track_caller]
fn after(line: &str, prefix: &str) -> String {
    line.strip_prefix(prefix)
        .unwrap_or_else(|| panic!("`{line}` should start with `{prefix}`"))
        .to_string()
}

/// Asserts that `error` starts with `want` (file, line, field and the start of the cause).
#[track_caller]
fn starts(error: &str, want: &str) {
    assert!(error.starts_with(want), "\n got: {error}\nwant: {want}…");
}

const VS: &str = r#"[[virtual_server]]
name = "web"
vip = "172.87.0.100"
protocol = "tcp"
ports = [80, 23]
members = ["172.85.0.1", "172.85.0.3", "172.85.0.2"]
"#;

/// `[virtual_server.affinity]` errors are on the line of their key, not of the header.
#[test]
fn affinity_errors_give_the_line_of_their_key() {
    let e = config_error(
        &format!("{VS}\n[virtual_server.affinity]\nprefix = 24\n\ntimeout = \"5x\"\n"),
        &[],
    );
    starts(
        &e,
        "bad.toml:11: field `virtual_server[0].affinity.timeout`: ",
    );
    let e = config_error(
        &format!("{VS}\n[virtual_server.affinity]\ntimeout = \"5m\"\nprefix = -1\n"),
        &[],
    );
    assert_eq!(
        e,
        "bad.toml:10: field `virtual_server[0].affinity.prefix`: -1 is not a prefix length 0-32"
    );
}

/// `[[static_mapping]]` errors are on the line of the key at fault, not of `[[static_mapping]]`.
#[test]
fn static_mapping_errors_give_the_line_of_their_key() {
    let e = config_error(
        &format!(
            "{VS}[[static_mapping]]\nmember = \"172.85.0.1\"\nbackup = \"172.85.0.9\"\nbackup_port = 80\n"
        ),
        &[],
    );
    assert_eq!(
        e,
        "bad.toml:10: field `static_mapping[0].backup_port`: a backup port needs the member's `port` it replaces"
    );
    let e = config_error(
        &format!(
            "{VS}[[static_mapping]]\nmember = \"172.85.0.1\"\nbackup = \"172.85.0.9\"\n\
             [[static_mapping]]\nmember = \"172.85.0.1\"\nbackup = \"172.85.0.8\"\n"
        ),
        &[],
    );
    assert_eq!(
        e,
        "bad.toml:11: field `static_mapping[1].member`: 172.85.0.1 is mapped twice for the same port"
    );
}

/// `ports = []` on TCP is the `ports` line's fault, not `protocol`'s.
#[test]
fn empty_ports_give_the_ports_line() {
    let e = config_error(
        "[[virtual_server]]\nvip = \"172.87.0.100\"\nprotocol = \"tcp\"\nports = []\nmembers = [\"172.85.0.1\"]\n",
        &[],
    );
    assert_eq!(
        e,
        "bad.toml:4: field `virtual_server[0].ports`: a TCP or UDP virtual server needs its service ports"
    );
}

/// A value of the wrong type on a line of its own inside a multi-line array names the array.
#[test]
fn a_type_error_inside_a_multi_line_array_names_its_field() {
    let e = config_error(
        "[[virtual_server]]\nname = \"web\"\nvip = \"172.87.0.100\"\nprotocol = \"tcp\"\n\
         ports = [\n  80,\n  \"x\",\n]\nmembers = [\"172.85.0.1\"]\n",
        &[],
    );
    assert_eq!(
        e,
        "bad.toml:7: field `virtual_server[0].ports`: invalid type: string \"x\", expected i64"
    );
}

/// A missing key names the table it is missing from with its index, on that table's line; an
/// unknown key in a sub-table of `[[virtual_server]]` names that virtual server's index.
#[test]
fn missing_and_unknown_keys_name_the_array_index() {
    let e = config_error(
        &format!(
            "{VS}\n[[virtual_server]]\nname = \"dns\"\nvip = \"172.87.0.100\"\nprotocol = \"udp\"\nports = [53]\n"
        ),
        &[],
    );
    assert_eq!(
        e,
        "bad.toml:8: field `virtual_server[1].members`: missing field `members`"
    );
    let e = config_error(
        &format!("{VS}\n[virtual_server.affinity]\nprefx = 24\n"),
        &[],
    );
    starts(
        &e,
        "bad.toml:9: field `virtual_server[0].affinity.prefx`: unknown field `prefx`",
    );
    let e = config_error(
        &format!("{VS}{VS}[virtual_server.affinity]\nprefix = 24\ncolour = 1\n"),
        &[],
    );
    starts(
        &e,
        "bad.toml:15: field `virtual_server[1].affinity.colour`: unknown field `colour`",
    );
}

/// NAPT without the router's outside address is `[napt]`'s fault, on its line, and says which
/// key is missing from which table.
#[test]
fn napt_without_outside_address_gives_the_napt_line() {
    let e = config_error(&format!("{VS}\n[napt]\ninside = [\"10.0.0.0/8\"]\n"), &[]);
    assert_eq!(
        e,
        "bad.toml:8: field `napt`: NAPT needs the router's outside address (RFC 2391 §3.2): \
         `outside_address` is missing from [router]"
    );
    let e = config_error(
        &format!("{VS}\n[napt]\ninside = [\"10.0.0.0/8\"]\nenabled = true\n"),
        &[],
    );
    starts(&e, "bad.toml:10: field `napt.enabled`: NAPT needs");
}

/// A timeline date whose day is not in its month is refused (Gregorian leap years).
#[test]
fn timeline_dates_check_the_day_against_the_month() {
    let tl = |at: &str| {
        format!("{VS}[[timeline]]\nat = \"{at}\"\naction = \"drain\"\nmember = \"172.85.0.1\"\n")
    };
    let e = config_error(&tl("2024-02-31T00:00:00Z"), &[]);
    assert_eq!(
        e,
        "bad.toml:8: field `timeline[0].at`: `2024-02-31T00:00:00Z`: 2024-02 has no day 31 (it has 29)"
    );
    for bad in [
        "2023-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-11-31T00:00:00Z",
    ] {
        let e = lsnat::config::parse(Path::new("t.toml"), &tl(bad))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.toml:8: field `timeline[0].at`"), "{e}");
        assert!(e.contains("has no day"), "{e}");
    }
    for good in [
        "2024-02-29T00:00:00Z",
        "2000-02-29T00:00:00Z",
        "2024-01-31T00:00:00Z",
        "2024-12-31T23:59:59Z",
        "2023-02-28T00:00:00Z",
    ] {
        assert!(
            lsnat::config::parse(Path::new("t.toml"), &tl(good)).is_ok(),
            "{good}"
        );
    }
}

/// Port 0 is no service port: refused in `ports` as in `[[static_mapping]]`, range 1-65535.
#[test]
fn port_zero_is_refused_in_ports() {
    let e = config_error(&VS.replace("[80, 23]", "[0, 23]"), &[]);
    assert_eq!(
        e,
        "bad.toml:5: field `virtual_server[0].ports`: port 0 is out of range 1-65535"
    );
    let e = config_error(&VS.replace("[80, 23]", "[80, 65536]"), &[]);
    assert_eq!(
        e,
        "bad.toml:5: field `virtual_server[0].ports`: port 65536 is out of range 1-65535"
    );
    let e = config_error(
        &format!(
            "{VS}[[static_mapping]]\nmember = \"172.85.0.1\"\nport = 0\nbackup = \"172.85.0.9\"\n"
        ),
        &[],
    );
    assert_eq!(
        e,
        "bad.toml:9: field `static_mapping[0].port`: port 0 is out of range 1-65535"
    );
}

/// A static mapping of a member to itself is refused as the timeline's `remap` refuses it.
#[test]
fn a_static_mapping_to_itself_is_refused() {
    let e = config_error(
        &format!("{VS}[[static_mapping]]\nmember = \"172.85.0.1\"\nbackup = \"172.85.0.1\"\n"),
        &[],
    );
    assert_eq!(
        e,
        "bad.toml:9: field `static_mapping[0].backup`: a member cannot be its own backup"
    );
}

/// Two virtual servers with one name (which a timeline `add` names) are refused.
#[test]
fn a_virtual_server_name_used_twice_is_refused() {
    let e = config_error(
        "[[virtual_server]]\nname = \"web\"\nvip = \"172.87.0.100\"\nprotocol = \"tcp\"\n\
         ports = [80]\nmembers = [\"172.85.0.1\"]\n\n\
         [[virtual_server]]\nname = \"web\"\nvip = \"172.87.0.100\"\nprotocol = \"tcp\"\n\
         ports = [23]\nmembers = [\"172.85.0.3\"]\n\n\
         [[timeline]]\nat = \"+0s\"\naction = \"add\"\nmember = \"172.85.0.2\"\nvirtual_server = \"web\"\n",
        &[],
    );
    assert_eq!(
        e,
        "bad.toml:9: field `virtual_server[1].name`: a [[virtual_server]] named `web` comes earlier in the file"
    );
    // A default name (`PROTOCOL-INDEX`) taken by an earlier explicit name is refused too.
    let e = config_error(
        "[[virtual_server]]\nname = \"udp-1\"\nvip = \"172.87.0.100\"\nprotocol = \"tcp\"\n\
         ports = [80]\nmembers = [\"172.85.0.1\"]\n\
         [[virtual_server]]\nvip = \"172.87.0.100\"\nprotocol = \"udp\"\n\
         ports = [53]\nmembers = [\"172.85.0.3\"]\n",
        &[],
    );
    starts(
        &e,
        "bad.toml:7: field `virtual_server[1].name`: a [[virtual_server]] named `udp-1` comes earlier in the file",
    );
    // Default names alone never clash.
    let ok = format!(
        "{}{}",
        VS.replace("name = \"web\"\n", ""),
        VS.replace("name = \"web\"\n", "")
            .replace("[80, 23]", "[81]")
    );
    assert!(lsnat::config::parse(Path::new("ok.toml"), &ok).is_ok());
}

/// [`VS`] load-shared by reported capacity, read from `caps.jsonl` beside the config.
fn reported_capacity() -> String {
    VS.replace(
        "members",
        "algorithm = \"reported-capacity\"\ncapacity_file = \"caps.jsonl\"\nmembers",
    )
}

/// A capacity report time beyond what u64 nanoseconds hold is refused, naming the capacity
/// file and its line, never wrapped.
#[test]
fn capacity_times_beyond_u64_nanoseconds_are_refused() {
    let cfg = reported_capacity();
    for ts in ["20242112954.661793", "1e12", "1e300", "18446744074.0"] {
        let caps = format!(
            "{{\"ts\": 1700000000.5, \"member\": \"172.85.0.1\", \"capacity\": 1}}\n\
             {{\"ts\": {ts}, \"member\": \"172.85.0.1\", \"capacity\": 0}}\n"
        );
        let e = config_error(&cfg, &[("caps.jsonl", &caps)]);
        starts(&e, "bad.toml:7: field `virtual_server[0].capacity_file`: ");
        assert!(e.contains("caps.jsonl:2: `ts` "), "{e}");
        assert!(e.contains("is after the last time"), "{e}");
    }
    let caps = "{\"ts\": 18446744073.0, \"member\": \"172.85.0.1\", \"capacity\": 1}\n";
    let r = lsnat::capacity::parse(Path::new("c.jsonl"), caps).unwrap();
    assert_eq!(r[0].at.0, 18_446_744_073_000_000_000);
}

/// A `[[timeline]]` setting that belongs to another action is refused at its line rather than
/// ignored (`weight` on `drain` set no weight); each action's own setting is still taken.
#[test]
fn a_timeline_setting_of_another_action_is_refused() {
    let tl = |action: &str, extra: &str| {
        format!(
            "{VS}[[timeline]]\nat = \"+1s\"\naction = \"{action}\"\nmember = \"172.85.0.1\"\n{extra}\n"
        )
    };
    let e = config_error(&tl("drain", "weight = 3"), &[]);
    starts(
        &e,
        "bad.toml:11: field `timeline[0].weight`: `weight` does not go with action `drain`",
    );
    let e = config_error(&tl("weight", "weight = 3\nbackup = \"172.85.0.9\""), &[]);
    starts(
        &e,
        "bad.toml:12: field `timeline[0].backup`: `backup` does not go with action `weight`",
    );
    for (action, own) in [
        ("weight", "weight = 3"),
        ("cost", "cost = 2.0"),
        ("remap", "backup = \"172.85.0.9\""),
        ("drain", ""),
    ] {
        let text = tl(action, own);
        assert!(
            lsnat::config::parse(Path::new("t.toml"), &text).is_ok(),
            "{action}: {text}"
        );
    }
}

/// A member weight beyond 32 bits says so (before: "is not 0 or more").
#[test]
fn a_member_weight_too_large_says_its_range() {
    let text = VS.replace(
        "\"172.85.0.1\"",
        "{ addr = \"172.85.0.1\", weight = 5000000000 }",
    );
    assert_ne!(text, VS);
    let e = config_error(&text, &[]);
    assert!(
        e.contains("weight 5000000000 is out of range 0-4294967295"),
        "{e}"
    );
}

/// A negative duration says so (before: "`-1s`: expected a number", though a number was
/// written), in every field that takes a duration: all are read by one parser.
#[test]
fn a_negative_duration_says_it_cannot_be_negative() {
    let e = config_error(&format!("{VS}[timeouts]\ntcp = \"-1s\"\n"), &[]);
    assert_eq!(
        e,
        "bad.toml:8: field `timeouts.tcp`: `-1s`: a duration cannot be negative"
    );
    let e = config_error(&format!("{VS}[timeouts]\nudp = -1\n"), &[]);
    assert_eq!(
        e,
        "bad.toml:8: field `timeouts.udp`: `-1`: a duration cannot be negative"
    );
    let parse = |text: &str| {
        lsnat::config::parse(Path::new("t.toml"), text)
            .unwrap_err()
            .to_string()
    };
    for (table, key) in [
        ("timeouts", "udp"),
        ("timeouts", "icmp"),
        ("timeouts", "other"),
        ("timeouts", "tcp_close_grace"),
        ("timeouts", "tcp_opening"),
        ("timeouts", "tcp_closing"),
        ("timeouts", "tcp_rst"),
        ("router", "fragment_timeout"),
        ("dead_host", "answer_within"),
        ("dead_host", "retry_after"),
    ] {
        let e = parse(&format!("{VS}[{table}]\n{key} = \"-1.5m\"\n"));
        assert_eq!(
            e,
            format!("t.toml:8: field `{table}.{key}`: `-1.5m`: a duration cannot be negative")
        );
    }
    let e = parse(&VS.replace("members", "window = \"-2s\"\nmembers"));
    assert_eq!(
        e,
        "t.toml:6: field `virtual_server[0].window`: `-2s`: a duration cannot be negative"
    );
    let e = parse(&format!(
        "{VS}[virtual_server.affinity]\ntimeout = \"-5m\"\n"
    ));
    assert_eq!(
        e,
        "t.toml:8: field `virtual_server[0].affinity.timeout`: `-5m`: a duration cannot be negative"
    );
    let e = parse(&format!(
        "{VS}[[timeline]]\nat = \"+-1s\"\naction = \"drain\"\nmember = \"172.85.0.1\"\n"
    ));
    assert_eq!(
        e,
        "t.toml:8: field `timeline[0].at`: `-1s`: a duration cannot be negative"
    );
}

/// A fragment timeout of 0 is refused as an idle timeout of 0 is: held fragments would be
/// dropped at once and no later fragment would get its first's translation.
#[test]
fn a_zero_fragment_timeout_is_refused() {
    for zero in ["\"0s\"", "0"] {
        let e = config_error(&format!("{VS}\n[router]\nfragment_timeout = {zero}\n"), &[]);
        assert_eq!(
            e,
            "bad.toml:9: field `router.fragment_timeout`: a fragment timeout must be longer than zero"
        );
    }
    let ok = format!("{VS}[router]\nfragment_timeout = \"1ns\"\n");
    assert!(lsnat::config::parse(Path::new("ok.toml"), &ok).is_ok());
}

/// An integer capacity report time too large for u64 is shown as written in the file (before:
/// as the float serde_json reads it, `1.8446744073709552e19`), naming the file and line.
#[test]
fn a_capacity_time_too_large_for_u64_is_shown_as_written() {
    let cfg = reported_capacity();
    for ts in ["18446744073709551616", "99999999999999999999"] {
        let caps = format!(
            "{{\"ts\": 1700000000.5, \"member\": \"172.85.0.1\", \"capacity\": 1}}\n\
             {{\"ts\": {ts}, \"member\": \"172.85.0.1\", \"capacity\": 0}}\n"
        );
        let e = config_error(&cfg, &[("caps.jsonl", &caps)]);
        starts(&e, "bad.toml:7: field `virtual_server[0].capacity_file`: ");
        assert!(
            e.contains(&format!(
                "caps.jsonl:2: `ts` {ts} is after the last time lsnat represents"
            )),
            "{e}"
        );
    }
}

/// A port refused inside a multi-line `ports` array is reported at its own line, not at
/// `ports = [`.
#[test]
fn a_bad_port_in_a_multi_line_array_gives_its_line() {
    let multi = |ports: &str| VS.replace("ports = [80, 23]", &format!("ports = [\n{ports}]"));
    let e = config_error(&multi("  80,\n  0,\n"), &[]);
    assert_eq!(
        e,
        "bad.toml:7: field `virtual_server[0].ports`: port 0 is out of range 1-65535"
    );
    let e = config_error(&multi("  80,\n  23,\n  80,\n"), &[]);
    assert_eq!(
        e,
        "bad.toml:8: field `virtual_server[0].ports`: port 80 is listed twice"
    );
}

/// `router.ftp_ports` (the FTP gateway's control ports) is checked as `ports` is, each bad
/// element at its own line.
#[test]
fn ftp_ports_are_checked_like_service_ports() {
    let with = |ports: &str| format!("[router]\nftp_ports = {ports}\n{VS}");
    let e = config_error(&with("[21, 0]"), &[]);
    assert_eq!(
        e,
        "bad.toml:2: field `router.ftp_ports`: port 0 is out of range 1-65535"
    );
    let e = config_error(&with("[\n  21,\n  2121,\n  21,\n]"), &[]);
    assert_eq!(
        e,
        "bad.toml:5: field `router.ftp_ports`: port 21 is listed twice"
    );
    let e = config_error(&with("21"), &[]);
    starts(&e, "bad.toml:2: field `router.ftp_ports`: invalid type");
}

/// `lsnat replay CAPTURE -c COPY -o OUT --json REPORT`, COPY being the bundled configuration
/// `config` with `from` replaced by `to` (each must be found): the replay must fail with exit 2
/// and one line, writing nothing; returns that line without `lsnat: error: ` and the scratch
/// folder's path before the copy's name, `altered.toml`. The unaltered copy must replay.
fn bundled_config_error(capture: &str, config: &str, alterations: &[(&str, &str)]) -> String {
    let scratch = common::scratch();
    let dir = scratch.path();
    let original = std::fs::read_to_string(common::root().join(config)).unwrap();
    let out = dir.join("out.pcap");
    let json = dir.join("report.json");
    let run = |text: &str| {
        let cfg = dir.join("altered.toml");
        std::fs::write(&cfg, text).unwrap();
        common::lsnat()
            .args(["replay", capture, "-q", "-c"])
            .arg(&cfg)
            .arg("-o")
            .arg(&out)
            .arg("--json")
            .arg(&json)
            .output()
            .expect("runs")
    };
    let o = run(&original);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_file(&out).unwrap();
    std::fs::remove_file(&json).unwrap();
    let mut text = original;
    for (from, to) in alterations {
        assert!(text.contains(from), "{config} holds `{from}`");
        text = text.replacen(from, to, 1);
    }
    let line = refused(&run(&text), &[&out, &json]);
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
    assert_eq!(left.len(), 1, "only the config in {}", dir.display());
    after(
        &line,
        &format!("lsnat: error: {}/altered.toml", dir.display()),
    )
}

/// A client-affinity timeout of zero is refused (as `ipvsadm -p 0` is): it would not turn
/// affinity off, which leaving out `[virtual_server.affinity]` does, and the error says so.
/// On the bundled affinity configuration of `captures/lsnat-router.pcap`, both ways of writing
/// zero, in either virtual server's table.
#[test]
fn a_zero_affinity_timeout_is_refused_saying_how_to_turn_affinity_off() {
    let config = "tests/algorithms/lsnat-router/round-robin-affinity.toml";
    let how = "an affinity timeout must be longer than zero; to turn affinity off, leave out \
               the [virtual_server.affinity] table";
    let e = bundled_config_error(
        "captures/lsnat-router.pcap",
        config,
        &[("timeout = \"1s\"", "timeout = \"0s\"")],
    );
    assert_eq!(
        e,
        format!(":17: field `virtual_server[0].affinity.timeout`: {how}")
    );
    let e = bundled_config_error(
        "captures/lsnat-router.pcap",
        config,
        &[("timeout = \"5m\"", "timeout = 0")],
    );
    assert_eq!(
        e,
        format!(":28: field `virtual_server[1].affinity.timeout`: {how}")
    );
}

/// RFC 2391 §3: a virtual server's address is the router's own, never a pool member, neither
/// of another virtual server nor of its own. On a copy of `captures/rfc2391-fig1.toml`: `echo`
/// moved to its own address and that address made a member of `web`; `ping` (on the VIP it
/// shares with `web`) given the VIP as a member.
#[test]
fn a_virtual_servers_address_is_refused_as_a_pool_member() {
    let pool = r#"members = ["172.85.0.1", "172.85.0.3", "172.85.0.2"]"#;
    let e = bundled_config_error(
        "captures/rfc2391-fig1.pcap",
        "captures/rfc2391-fig1.toml",
        &[
            (
                pool,
                r#"members = ["172.85.0.1", "172.87.0.200", "172.85.0.2"]"#,
            ),
            (
                "name = \"echo\"\nvip = \"172.87.0.100\"",
                "name = \"echo\"\nvip = \"172.87.0.200\"",
            ),
        ],
    );
    assert_eq!(
        e,
        ":20: field `virtual_server[0].members`: member 172.87.0.200 is the address of virtual \
         server `echo` (virtual_server[1].vip): a router cannot load-share a session to its own \
         virtual address"
    );
    let e = bundled_config_error(
        "captures/rfc2391-fig1.pcap",
        "captures/rfc2391-fig1.toml",
        &[(
            &format!("protocol = \"icmp\"\nalgorithm = \"round-robin\"\n{pool}"),
            "protocol = \"icmp\"\nalgorithm = \"round-robin\"\n\
             members = [\"172.85.0.1\", \"172.87.0.100\"]",
        )],
    );
    assert_eq!(
        e,
        ":35: field `virtual_server[2].members`: member 172.87.0.100 is the virtual server's own \
         address"
    );
}

/// Nor may a pool member be one of the router's own addresses (here LS-NAPT's
/// `inside_address`, the address the router's sessions reach the members from): the error is
/// at the member's line and names the router's field.
#[test]
fn the_routers_own_address_is_refused_as_a_pool_member() {
    let e = bundled_config_error(
        "captures/lsnat-ftp-napt.pcap",
        "captures/lsnat-ftp-napt.toml",
        &[(
            r#"members = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]"#,
            r#"members = ["203.0.113.1", "203.0.113.2", "203.0.113.254"]"#,
        )],
    );
    assert_eq!(
        e,
        ":22: field `virtual_server[0].members`: member 203.0.113.254 is the router's own \
         address (router.inside_address): a router cannot load-share a session to itself"
    );
}
