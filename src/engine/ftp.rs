//! The FTP application level gateway. RFC 2391 §4.2: "The header and payload modifications
//! made to IP datagrams subject to LSNAT will be exactly same as those subject to traditional
//! NATs", and traditional NAT changes the addresses FTP carries in its payload (RFC 1631 §5,
//! RFC 3022 §4.3 "FTP support"; RFC 5382 REQ-6 leaves the FTP ALG on by default). On the
//! control connection of a service port listed in `router.ftp_ports`:
//!
//! - a `227` reply to `PASV` (RFC 959 §4.1.3) from the member carries the member's address:
//!   it becomes the address the client sees (the VIP), and the data connection the client
//!   then opens to that address and port is bound to the same member, without asking the
//!   load-share algorithm (an *expectation*, as Linux conntrack and IPVS's `ip_vs_ftp` keep
//!   one);
//! - a `229` reply to `EPSV` (RFC 2428 §3) carries only a port: expected the same way;
//! - `PORT` and `EPRT` (RFC 959, RFC 2428 §2) from the client carry its own address, which
//!   LSNAT does not translate: the connection the member then opens from its side to that
//!   address and port is expected, and leaves with the VIP as its source.
//!
//! A reply or command is read only at the start of a segment's payload and only when the whole
//! line is there (as Linux's `nf_conntrack_ftp` reads them), and only when the address it
//! carries is its sender's own (else, as Linux, it is neither rewritten nor followed).
//!
//! When the rewritten text has another length than the original, every later segment of the
//! connection is shifted: sequence numbers in the direction of the change, acknowledgement
//! numbers and SACK blocks in the other (`SeqAdjust`, Linux's `nf_ct_seqadj`).

use super::decision::Decision;
use super::event::{DropReason, Flow, Outcome, Tuple};
use super::session::{ALG_ADJUST, ALG_CONTROL, ALG_DATA, ALG_MEMBER_OPENED};
use super::static_mapping::Target;
use super::tu_port::PoolKey;
use super::{Engine, View};
use crate::time::{Span, Timestamp};
use crate::wire::ipv4::{Ipv4, L4};
use crate::wire::tcp;
use crate::wire::tcp_flags::ACK;

/// How long an expectation waits for its data connection (Linux's FTP helper: 5 minutes).
pub const EXPECT_TIMEOUT: Span = Span::from_secs(300);

/// The FTP command or reply the gateway acted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FtpCommand {
    /// `PORT h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2).
    Port,
    /// `EPRT |1|address|port|` (RFC 2428 §2).
    Eprt,
    /// `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` (RFC 959 §4.2, reply to `PASV`).
    Pasv,
    /// `229 Entering Extended Passive Mode (|||port|)` (RFC 2428 §3, reply to `EPSV`).
    Epsv,
}

/// Why the gateway did not follow a command or reply it read (its packet is forwarded
/// unchanged but for the translation, and no data connection is expected).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unfollowed {
    /// It names an address other than its sender's (Linux's `nf_conntrack_ftp`: "NOT
    /// RECORDING"; RFC 959 allows a third party, which a NAT cannot translate for).
    AddressNotSender,
    /// LS-NAPT: no TU port toward the member was free to announce (RFC 3022 §4.3).
    NoTuPort,
    /// Its rewritten text would make the datagram longer than an IPv4 total length can say
    /// (65,535 bytes; Linux's `nf_nat_mangle_tcp_packet` refuses to enlarge past it).
    DatagramTooLong,
}

impl Unfollowed {
    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            Unfollowed::AddressNotSender => "address-not-sender",
            Unfollowed::NoTuPort => "no-tu-port",
            Unfollowed::DatagramTooLong => "datagram-too-long",
        }
    }
}

impl FtpCommand {
    /// How it is shown: the command, or the reply code.
    pub fn name(self) -> &'static str {
        match self {
            FtpCommand::Port => "PORT",
            FtpCommand::Eprt => "EPRT",
            FtpCommand::Pasv => "227",
            FtpCommand::Epsv => "229",
        }
    }

    /// A reply (the server's, passive mode) rather than a command (the client's, active).
    pub fn passive(self) -> bool {
        matches!(self, FtpCommand::Pasv | FtpCommand::Epsv)
    }
}

/// What a command or reply at the start of a payload says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub command: FtpCommand,
    /// The address it carries (`None` for `229`).
    pub addr: Option<[u8; 4]>,
    pub port: u16,
    /// Where the address and port text is in the payload: `(start, len)`.
    pub span: (usize, usize),
}

/// Reads the command (`from_client`) or reply at the start of `p`.
pub(crate) fn parse(p: &[u8], from_client: bool) -> Option<Parsed> {
    let starts = |word: &[u8]| p.len() > word.len() && p[..word.len()].eq_ignore_ascii_case(word);
    let line_end = p.iter().position(|&c| c == b'\n')?;
    let line = &p[..line_end];
    if from_client {
        if starts(b"PORT ") {
            let at = 5 + line[5..].iter().take_while(|&&c| c == b' ').count();
            let (nums, len) = numbers6(&line[at..])?;
            // RFC 959: the argument ends the line.
            let rest = &line[at + len..];
            if !(rest.is_empty() || rest == b"\r") {
                return None;
            }
            return Some(rfc959(FtpCommand::Port, nums, (at, len)));
        }
        if starts(b"EPRT ") {
            let at = 5 + line[5..].iter().take_while(|&&c| c == b' ').count();
            let (addr, port, len) = eprt(&line[at..])?;
            return Some(Parsed {
                command: FtpCommand::Eprt,
                addr: Some(addr),
                port,
                span: (at, len),
            });
        }
        return None;
    }
    if starts(b"227 ") {
        // RFC 959 puts the numbers in parentheses; RFC 1123 §4.1.2.6 asks to scan for the
        // first digit, as some servers leave them out.
        let open = line[4..].iter().position(|&c| c == b'(').map(|i| 4 + i + 1);
        let at = match open {
            Some(at) => at,
            None => 4 + line[4..].iter().position(u8::is_ascii_digit)?,
        };
        let (nums, len) = numbers6(&line[at..])?;
        if open.is_some() && line.get(at + len) != Some(&b')') {
            return None;
        }
        return Some(rfc959(FtpCommand::Pasv, nums, (at, len)));
    }
    if starts(b"229 ") {
        // `(|||port|)`: three delimiters, the port, a fourth.
        let open = 4 + line[4..].iter().position(|&c| c == b'(')? + 1;
        let d = *line.get(open)?;
        if !(33..=126).contains(&d) || line.get(open..open + 3)? != [d, d, d] {
            return None;
        }
        let digits = line[open + 3..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let port = number(&line[open + 3..open + 3 + digits], 65535)?;
        if line.get(open + 3 + digits..open + 5 + digits)? != [d, b')'] || port == 0 {
            return None;
        }
        return Some(Parsed {
            command: FtpCommand::Epsv,
            addr: None,
            port: port as u16,
            span: (open + 3, digits),
        });
    }
    None
}

fn rfc959(command: FtpCommand, n: [u32; 6], span: (usize, usize)) -> Parsed {
    Parsed {
        command,
        addr: Some([n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8]),
        port: (n[4] << 8 | n[5]) as u16,
        span,
    }
}

/// A decimal number of 1 to 5 digits, at most `max`.
fn number(d: &[u8], max: u32) -> Option<u32> {
    if d.is_empty() || d.len() > 5 || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = d.iter().fold(0u32, |n, &c| n * 10 + u32::from(c - b'0'));
    (n <= max).then_some(n)
}

/// `h1,h2,h3,h4,p1,p2` at the start of `t`: the six numbers (each 0–255) and the text's length.
fn numbers6(t: &[u8]) -> Option<([u32; 6], usize)> {
    let mut n = [0u32; 6];
    let mut at = 0;
    for (i, slot) in n.iter_mut().enumerate() {
        if i > 0 {
            if t.get(at) != Some(&b',') {
                return None;
            }
            at += 1;
        }
        let digits = t[at..].iter().take_while(|c| c.is_ascii_digit()).count();
        *slot = number(&t[at..at + digits], 255)?;
        at += digits;
    }
    Some((n, at))
}

/// `<d>1<d>a.b.c.d<d>port<d>` at the start of `t` (IPv4 only): address, port, text length.
fn eprt(t: &[u8]) -> Option<([u8; 4], u16, usize)> {
    let d = *t.first()?;
    if !(33..=126).contains(&d) || t.get(1..3)? != [b'1', d] {
        return None;
    }
    let rest = &t[3..];
    let a_len = rest.iter().position(|&c| c == d)?;
    let addr: std::net::Ipv4Addr = std::str::from_utf8(&rest[..a_len]).ok()?.parse().ok()?;
    let p = &rest[a_len + 1..];
    let p_len = p.iter().position(|&c| c == d)?;
    let port = number(&p[..p_len], 65535).filter(|&p| p != 0)?;
    Some((addr.octets(), port as u16, 3 + a_len + 1 + p_len + 1))
}

/// The text that replaces a command's or reply's address and port.
pub(crate) fn format(command: FtpCommand, addr: [u8; 4], port: u16, out: &mut Vec<u8>) {
    use std::io::Write as _;
    out.clear();
    let _ = match command {
        FtpCommand::Port | FtpCommand::Pasv => write!(
            out,
            "{},{},{},{},{},{}",
            addr[0],
            addr[1],
            addr[2],
            addr[3],
            port >> 8,
            port & 0xff
        ),
        FtpCommand::Eprt => write!(out, "|1|{}|{port}|", std::net::Ipv4Addr::from(addr)),
        FtpCommand::Epsv => write!(out, "{port}"),
    };
}

/// One direction's sequence-number shift (Linux's `nf_ct_seqadj`): segments that start after
/// `pos` (the sequence number, as sent, of the last segment whose length changed) are shifted
/// by `after`, earlier ones (retransmissions) by `before`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SeqAdjust {
    pub pos: u32,
    pub before: i32,
    pub after: i32,
}

/// Whether `a` comes after `b` in sequence space (RFC 1982 arithmetic, as TCP compares).
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl SeqAdjust {
    /// The segment starting at `seq` (as sent) grew by `delta` bytes.
    pub fn record(&mut self, seq: u32, delta: i32) {
        if delta == 0 {
            return;
        }
        if self.before == self.after || after(seq, self.pos) {
            self.pos = seq;
            self.before = self.after;
            self.after += delta;
        }
    }

    /// The shift of a segment of this direction that starts at `seq` (as sent).
    pub fn seq_shift(&self, seq: u32) -> i32 {
        if after(seq, self.pos) {
            self.after
        } else {
            self.before
        }
    }

    /// The shift to take off an acknowledgement (or SACK edge) the other side sent for this
    /// direction's data: `ack` is in the shifted space.
    pub fn ack_shift(&self, ack: u32) -> i32 {
        if after(ack.wrapping_sub(self.before as u32), self.pos) {
            self.after
        } else {
            self.before
        }
    }

    /// Whether it shifts anything.
    pub fn is_zero(&self) -> bool {
        self.before == 0 && self.after == 0
    }
}

/// A data connection an FTP control session announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expectation {
    /// The control session's number and slot.
    pub control: u64,
    pub slot: u32,
    /// Passive (the client connects to `to`) or active (the member, or in the client-side view
    /// the VIP, connects from `from` to `to`).
    pub passive: bool,
    /// Passive: the client's address. Active: the address the member's SYN comes from, as
    /// captured.
    pub from: [u8; 4],
    /// Passive: the VIP, and the port the client connects to. Active: where the member's SYN
    /// goes, as captured: the client's address and port, or in LS-NAPT's router view the
    /// router's inside address and the port the `PORT`/`EPRT` was rewritten to.
    pub to: [u8; 4],
    pub port: u16,
    /// Passive: the member's port the connection goes to. Active: the client's port.
    pub member_port: u16,
    /// Active: the client's address the connection goes to.
    pub client: [u8; 4],
    /// LS-NAPT, active: the TU port the announcement was rewritten to, held in its pool
    /// until the connection binds or the expectation goes (§3.3, RFC 3022 §4.3).
    pub napt: Option<(PoolKey, u16)>,
    pub until: Timestamp,
}

/// Where an expected connection's SYN comes from and goes to (as captured): passive or not,
/// `from`, `to`, `port` (see [`Expectation`]).
type ExpectKey = (bool, [u8; 4], [u8; 4], u16);

/// The gateway's state: which service ports are FTP, and the expectations pending (at most one
/// per control session, as Linux's FTP helper keeps: a new one replaces the older), found by
/// the SYN's addressing as conntrack finds them.
#[derive(Debug, Default)]
pub(crate) struct Gateway {
    pub ports: Vec<u16>,
    pub expected: rustc_hash::FxHashMap<ExpectKey, Expectation>,
    /// Each control session's pending expectation.
    pub by_control: rustc_hash::FxHashMap<u64, ExpectKey>,
    /// Sequence shifts of control sessions, by session number: [client → member, back].
    pub adjust: rustc_hash::FxHashMap<u64, [SeqAdjust; 2]>,
    /// Data sessions: their control session's number, by session number.
    pub data_of: rustc_hash::FxHashMap<u64, u64>,
    /// Scratch for the replacement text.
    pub text: Vec<u8>,
}

fn key_of(e: &Expectation) -> ExpectKey {
    (e.passive, e.from, e.to, e.port)
}

impl Gateway {
    /// Whether sessions to this TCP service port are FTP control connections.
    pub fn is_control_port(&self, port: u16) -> bool {
        self.ports.contains(&port)
    }

    /// Adds an expectation, replacing the control session's earlier one (and any other
    /// control session's for the same connection). Returns what it replaced.
    pub fn expect(&mut self, e: Expectation) -> [Option<Expectation>; 2] {
        let earlier = self.drop_control(e.control);
        let key = key_of(&e);
        let other = self.expected.insert(key, e);
        if let Some(old) = other {
            self.by_control.remove(&old.control);
        }
        self.by_control.insert(e.control, key);
        [earlier, other]
    }

    /// The expectation a SYN with this addressing meets, if any and not expired by `now`.
    pub fn find(&self, now: Timestamp, t: &Tuple, inbound: bool) -> Option<&Expectation> {
        self.expected
            .get(&(inbound, t.src, t.dst, t.dport))
            .filter(|e| e.until >= now)
    }

    /// Takes the expectation a SYN with this addressing meets (see [`Gateway::find`]), expired
    /// or not.
    pub fn take(&mut self, t: &Tuple, inbound: bool) -> Option<Expectation> {
        let key = (inbound, t.src, t.dst, t.dport);
        let e = self.expected.remove(&key)?;
        self.by_control.remove(&e.control);
        Some(e)
    }

    /// Removes the control session's pending expectation, and returns it.
    pub fn drop_control(&mut self, control: u64) -> Option<Expectation> {
        let key = self.by_control.remove(&control)?;
        self.expected.remove(&key)
    }

    /// Forgets what the gateway keeps for a session that ended; returns its pending
    /// expectation.
    pub fn forget(&mut self, number: u64) -> Option<Expectation> {
        self.adjust.remove(&number);
        self.data_of.remove(&number);
        self.drop_control(number)
    }
}

impl Engine {
    /// The FTP gateway's part in translating a TCP segment of session `slot` whose header is
    /// already rewritten (`ip`, `b`; `l4` as it arrived): the command or reply at the start of
    /// its payload (control sessions), then the sequence shifts of earlier changes. When the
    /// text changes length the datagram to forward is built in `self.resized`. Returns the
    /// segment as TCP tracking must see it: as the client sends and receives it (router view:
    /// an outbound segment as translated; else as captured).
    #[allow(clippy::too_many_arguments)]
    #[cold]
    #[inline(never)]
    pub(crate) fn ftp_segment(
        &mut self,
        now: Timestamp,
        slot: u32,
        flow: Flow,
        ip: &mut Ipv4,
        l4: L4,
        b: &mut [u8],
        out: &mut Outcome,
    ) -> L4 {
        let L4::Tcp {
            seq,
            ack,
            flags,
            header_len,
            ..
        } = l4
        else {
            return l4;
        };
        let dir = usize::from(flow == Flow::Outbound);
        let s = self.session(slot);
        let (number, alg) = (s.number, s.alg);
        let mut adj = match alg & ALG_ADJUST {
            0 => [SeqAdjust::default(); 2],
            _ => self.ftp.adjust.get(&number).copied().unwrap_or_default(),
        };
        // The command or reply, read as it arrived (shifts change no payload byte).
        let payload = ip.ihl + header_len;
        let mut text = None;
        if alg & ALG_CONTROL != 0
            && header_len >= 20
            && ip.is_complete()
            && payload < ip.total_len
            && let Some(p) = parse(&b[payload..ip.total_len], dir == 0)
        {
            text = self.ftp_command(now, slot, dir, p, out.before.src, ip.src, out);
        }
        // The shifts of earlier changes: this direction's sequence numbers, the other's
        // acknowledgements and SACK edges (in the shifted space the receiver saw).
        // An acknowledgement is of the other direction's data as its sender received it:
        // in the router view, as the router forwarded it (shifted); in the client-side view,
        // where the capture holds what the client received and the output what the member
        // sent, as captured.
        let other = adj[1 - dir];
        let view = self.vss.view;
        let ack_change = move |a: u32| match view {
            View::Router => -other.ack_shift(a),
            View::ClientSide => other.seq_shift(a),
        };
        let seq_shift = adj[dir].seq_shift(seq);
        let ack_shift = if flags & ACK != 0 { ack_change(ack) } else { 0 };
        if seq_shift != 0 {
            tcp::set_seq(ip, b, seq.wrapping_add(seq_shift as u32));
        }
        if ack_shift != 0 {
            tcp::set_ack(ip, b, ack.wrapping_add(ack_shift as u32));
        }
        if !other.is_zero() && header_len > 20 {
            tcp::map_sack(ip, b, header_len, |e| e.wrapping_add(ack_change(e) as u32));
        }
        out.alg.seq = seq_shift;
        out.alg.ack = ack_shift;
        if let Some((_, len)) = text
            && u16::from_be_bytes([b[2], b[3]]) != 0
            && ip.total_len + self.ftp.text.len() > usize::from(u16::MAX) + len
        {
            // The new text does not fit in the datagram's total length field (a TSO super-
            // packet, its field 0, has no such bound): not rewritten, and its announcement
            // withdrawn, as Linux withdraws the expectation of a packet it cannot mangle.
            text = None;
            let e = self.ftp.drop_control(number);
            self.ftp_unreserve(e);
            out.alg.unfollowed = Some(Unfollowed::DatagramTooLong);
        }
        if let Some((at, len)) = text {
            let at = payload + at;
            let new = std::mem::take(&mut self.ftp.text);
            let delta = new.len() as i32 - len as i32;
            if delta == 0 {
                tcp::overwrite_payload(ip, b, at, &new);
            } else {
                tcp::splice_payload(ip, b, at, len, &new, &mut self.resized);
                out.alg.resized = delta as i16;
                adj[dir].record(seq, delta);
                self.ftp.adjust.insert(number, adj);
                self.session_mut(slot).alg |= ALG_ADJUST;
            }
            self.ftp.text = new;
        }
        // TCP tracking follows the client's side of the router (see `TcpTrack`).
        if self.vss.view == View::Router && dir == 1 && (seq_shift != 0 || ack_shift != 0) {
            let L4::Tcp {
                sport,
                dport,
                checksum,
                ..
            } = l4
            else {
                return l4;
            };
            return L4::Tcp {
                sport,
                dport,
                seq: seq.wrapping_add(seq_shift as u32),
                ack: ack.wrapping_add(ack_shift as u32),
                flags,
                header_len,
                checksum,
            };
        }
        l4
    }

    /// A command (`dir` 0, from the client) or reply (from the member) of control session
    /// `slot` whose address is its sender's own (`src` as it arrived, `src_after` as it
    /// leaves): the data connection it announces is expected, and the text that replaces its
    /// address (when the address changes) is put in `self.ftp.text`; returns where that text
    /// goes in the payload.
    ///
    /// A reply's address becomes the VIP's (RFC 1631 §5). A command's stays the client's in
    /// LSNAT; in LS-NAPT (§3.3, RFC 3022 §4.3) it becomes the router's inside address and a
    /// TU port of its pool toward the member (the client's own port when free, as Linux's
    /// `nf_nat_ftp` keeps it), held until the data connection binds.
    #[allow(clippy::too_many_arguments)]
    fn ftp_command(
        &mut self,
        now: Timestamp,
        slot: u32,
        dir: usize,
        p: Parsed,
        src: [u8; 4],
        src_after: [u8; 4],
        out: &mut Outcome,
    ) -> Option<(usize, usize)> {
        let s = self.session(slot);
        let (number, key, translated, napt) = (s.number, s.key, s.translated, s.napt);
        let passive = dir == 1;
        if passive != p.command.passive() {
            return None;
        }
        out.alg.ftp = Some(p.command);
        if p.addr.is_some_and(|a| a != src) {
            // Linux: "NOT RECORDING" an address other than the sender's.
            out.alg.unfollowed = Some(Unfollowed::AddressNotSender);
            return None;
        }
        // The control session's earlier announcement goes first, its port with it.
        let earlier = self.ftp.drop_control(number);
        self.ftp_unreserve(earlier);
        let mut e = Expectation {
            control: number,
            slot,
            passive,
            // Passive: the client connects to the VIP. Active: the member's SYN comes (as
            // captured) from the member, or in the client-side view from the VIP.
            from: match (passive, self.vss.view) {
                (true, _) => key.src,
                (false, View::Router) => translated.dst,
                (false, View::ClientSide) => key.dst,
            },
            to: if passive { key.dst } else { src },
            port: p.port,
            member_port: p.port,
            client: src,
            napt: None,
            until: now.add(EXPECT_TIMEOUT),
        };
        let mut rewrite = None;
        if passive {
            // EPSV's reply names no address.
            if src_after != src && p.command != FtpCommand::Epsv {
                rewrite = Some((src_after, p.port));
            }
        } else if napt {
            let pool = PoolKey {
                addr: translated.src,
                peer: translated.dst,
                protocol: key.protocol,
            };
            let Some(port) = self.allocate_tu_port(pool, p.port) else {
                out.alg.unfollowed = Some(Unfollowed::NoTuPort);
                return None;
            };
            e.napt = Some((pool, port));
            if self.vss.view == View::Router {
                (e.to, e.port) = (translated.src, port);
            }
            rewrite = Some((translated.src, port));
        }
        for old in self.ftp.expect(e) {
            self.ftp_unreserve(old);
        }
        let (addr, port) = rewrite?;
        format(p.command, addr, port, &mut self.ftp.text);
        Some(p.span)
    }

    /// Gives back the TU port an LS-NAPT expectation held.
    pub(crate) fn ftp_unreserve(&mut self, e: Option<Expectation>) {
        if let Some((pool, port)) = e.and_then(|e| e.napt) {
            self.ports.release(pool, port);
        }
    }

    /// A SYN that opens a data connection an FTP control session announced (`inbound`: the
    /// client's, passive mode; else the member's, active mode): bound to the control
    /// session's member without asking the load-share algorithm. `None` when no expectation
    /// matches (or its control session is gone).
    #[cold]
    #[inline(never)]
    pub(crate) fn bind_expected(
        &mut self,
        now: Timestamp,
        ip: &Ipv4,
        t: &Tuple,
        inbound: bool,
    ) -> Option<Result<u32, DropReason>> {
        self.ftp.find(now, t, inbound)?;
        let flow = if inbound {
            Flow::Inbound
        } else {
            Flow::Outbound
        };
        if self.forwards_with_ttl(flow) && ip.ttl <= 1 {
            // Not forwarded: nothing is bound, the expectation waits for the next SYN.
            return Some(Err(DropReason::TtlExceeded));
        }
        let e = self.ftp.take(t, inbound)?;
        // Its port, held for it, is handed out again right below (bind_to keeps it).
        self.ftp_unreserve(Some(e));
        if e.until < now {
            return None;
        }
        let control = self.slots[e.slot as usize]
            .as_ref()
            .filter(|s| s.number == e.control)?;
        let (vs, member, chosen) = (control.vs as usize, control.member, control.chosen);
        // A removed member's control session keeps its data connections (as IPVS's FTP helper
        // sends them to the control connection's server): they are its sessions after the
        // removal, and their ends are reported like its own (see `timeline_unbound`).
        let member_removed = control.member_removed;
        let member_addr = control.translated.dst;
        let vip = control.key.dst;
        let (key, port, napt_port) = match inbound {
            true => (*t, e.member_port, Some(t.sport)),
            // The member's SYN, member:port → client:port (LS-NAPT: → the router's inside
            // address and the port the command was rewritten to): keyed as the client → VIP
            // side.
            false => (
                Tuple {
                    protocol: t.protocol,
                    src: e.client,
                    sport: e.member_port,
                    dst: vip,
                    dport: t.sport,
                },
                t.sport,
                e.napt.map(|(_, p)| p),
            ),
        };
        let target = Target {
            member,
            addr: member_addr,
            port,
        };
        let mut decision = Decision::new(self.vss.list[vs].config.algorithm);
        decision.chosen = chosen;
        decision.chosen_addr = self.pool.member(chosen as usize).addr.octets();
        if self.max_sessions.is_some_and(|max| self.live >= max) && !self.retire_longest_idle() {
            return Some(Err(DropReason::TableFull));
        }
        let bound = self.bind_to(now, vs, key, target, decision, false, napt_port);
        if let Ok(slot) = bound {
            let s = self.session_mut(slot);
            s.alg = ALG_DATA | if inbound { 0 } else { ALG_MEMBER_OPENED };
            s.member_removed = member_removed;
            let number = s.number;
            self.ftp.data_of.insert(number, e.control);
        }
        Some(bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_four_forms_with_their_address_and_port() {
        let p = parse(
            b"227 Entering Passive Mode (203,0,113,1,195,80).\r\n",
            false,
        )
        .unwrap();
        assert_eq!(
            (p.command, p.addr, p.port, p.span),
            (FtpCommand::Pasv, Some([203, 0, 113, 1]), 50000, (27, 18))
        );
        let p = parse(b"227 Entering Passive Mode 203,0,113,1,195,80\r\n", false).unwrap();
        assert_eq!((p.addr, p.port), (Some([203, 0, 113, 1]), 50000));
        let p = parse(b"229 Entering Extended Passive Mode (|||50001|)\r\n", false).unwrap();
        assert_eq!((p.command, p.addr, p.port), (FtpCommand::Epsv, None, 50001));
        let p = parse(b"port 198,51,100,7,156,65\r\n", true).unwrap();
        assert_eq!(
            (p.command, p.addr, p.port, p.span),
            (FtpCommand::Port, Some([198, 51, 100, 7]), 40001, (5, 19))
        );
        let p = parse(b"EPRT |1|198.51.100.7|40002|\r\n", true).unwrap();
        assert_eq!(
            (p.command, p.addr, p.port, p.span),
            (FtpCommand::Eprt, Some([198, 51, 100, 7]), 40002, (5, 22))
        );
    }

    #[test]
    fn refuses_partial_lines_bad_numbers_and_the_wrong_side() {
        for (p, client) in [
            (
                &b"227 Entering Passive Mode (203,0,113,1,195,80)."[..],
                false,
            ), // no line end
            (
                b"227 Entering Passive Mode (203,0,113,256,195,80).\r\n",
                false,
            ),
            (b"227 Entering Passive Mode (203,0,113,1,195).\r\n", false),
            (b"PORT 198,51,100,7,156,65\r\n", false),
            (b"227 Entering Passive Mode (203,0,113,1,195,80).\r\n", true),
            (b"PORT 198,51,100,7,156,65 x\r\n", true),
            (b"EPRT |2|2001:db8::1|40002|\r\n", true),
            (b"229 Entering Extended Passive Mode (|||0|)\r\n", false),
            (b"150 Opening data connection\r\n", false),
        ] {
            assert_eq!(parse(p, client), None, "{}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn formats_as_linux_writes_them() {
        let mut t = Vec::new();
        format(FtpCommand::Pasv, [198, 18, 0, 100], 50000, &mut t);
        assert_eq!(t, b"198,18,0,100,195,80");
        format(FtpCommand::Eprt, [198, 18, 0, 100], 40002, &mut t);
        assert_eq!(t, b"|1|198.18.0.100|40002|");
    }

    #[test]
    fn sequence_shift_applies_after_the_changed_segment_only() {
        let mut a = SeqAdjust::default();
        a.record(1000, 1);
        // The changed segment itself and retransmissions of earlier data: not shifted.
        assert_eq!((a.seq_shift(1000), a.seq_shift(900)), (0, 0));
        assert_eq!(a.seq_shift(1050), 1);
        // The peer acknowledges in the shifted space.
        assert_eq!((a.ack_shift(1000), a.ack_shift(1051)), (0, 1));
        // A retransmission of the same segment changes nothing more.
        a.record(1000, 1);
        assert_eq!(
            a,
            SeqAdjust {
                pos: 1000,
                before: 0,
                after: 1
            }
        );
        // A later change adds up.
        a.record(2000, -2);
        assert_eq!((a.seq_shift(1500), a.seq_shift(2100)), (1, -1));
        // Across the wrap of sequence space.
        let mut w = SeqAdjust::default();
        w.record(u32::MAX - 10, 3);
        assert_eq!(w.seq_shift(5), 3);
    }
}
