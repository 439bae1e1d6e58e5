//! Sessions (RFC 2391 §2.2–2.4): the key that identifies one, the state kept while it is bound,
//! and how a TCP session's end is detected (§2.4: "FIN is acknowledged by both halves of the
//! session or when either half receives RST").

use super::event::{EndReason, History, SessionRecord, TcpState, Tuple};
use crate::time::Timestamp;
use crate::wire::ipv4::{Ipv4, L4, WindowScale, tcp_window, tcp_window_scale};
use crate::wire::tcp_flags::{ACK, FIN, RST, SYN};

/// A bound session.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub number: u64,
    pub vs: u32,
    /// Pool index of the member the session went to (after any remap or static mapping).
    pub member: usize,
    /// Pool index of the member the decision chose (the one client affinity remembers): its
    /// `member` itself, or the member a backup stood in for.
    pub chosen: u32,
    /// Client → VIP, as the session key of §2.2.
    pub key: Tuple,
    /// Client → member.
    pub translated: Tuple,
    /// The key its outbound packets arrive with.
    pub reply_key: Tuple,
    /// LS-NAPT: `translated.sport` is a TU port it holds (RFC 2391 §3.3).
    pub napt: bool,
    /// What the FTP gateway keeps for it ([`ALG_CONTROL`], ...; 0 for almost every session).
    pub alg: u8,
    pub first: Timestamp,
    pub last: Timestamp,
    pub first_reply: Option<Timestamp>,
    /// [client → member, member → client]
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub checksum_faults: u64,
    pub history: History,
    pub tcp: TcpTrack,
    /// When both FINs were acknowledged or an RST was seen, and which.
    pub closed: Option<(Timestamp, EndReason)>,
    /// Another member answered it in the capture (dead host detection, router view): the
    /// recorded router chose that one.
    pub answered_elsewhere: Option<u32>,
    /// Its member was removed while it was bound (pool timeline).
    pub member_removed: bool,
    /// Packets after the removal: [client → member, member → client].
    pub after_removal: [u64; 2],
}

/// [`Session::alg`]: an FTP control connection (its service port is in `router.ftp_ports`).
pub(crate) const ALG_CONTROL: u8 = 1;
/// Its segments are shifted (the gateway changed a text's length, [`super::ftp::SeqAdjust`]).
pub(crate) const ALG_ADJUST: u8 = 2;
/// An FTP data connection the member opened (active mode): its SYN came from the member, so
/// TCP tracking takes the member's side as the opener's.
pub(crate) const ALG_MEMBER_OPENED: u8 = 4;
/// An FTP data connection (passive or active), bound by the gateway.
pub(crate) const ALG_DATA: u8 = 8;

impl super::flow_table::FlowKeys for [Option<Session>] {
    fn key_of(&self, slot: u32, flow: super::Flow) -> Option<&Tuple> {
        let s = self.get(slot as usize)?.as_ref()?;
        match flow {
            super::Flow::Inbound => Some(&s.key),
            super::Flow::Outbound => Some(&s.reply_key),
            super::Flow::None => None,
        }
    }
}

impl Session {
    pub fn record(
        &self,
        end: EndReason,
        ended_at: Timestamp,
        ftp_data_of: Option<u64>,
    ) -> SessionRecord {
        SessionRecord {
            number: self.number,
            virtual_server: self.vs as usize,
            member: self.member,
            key: self.key,
            translated: self.translated,
            first: self.first,
            last: self.last,
            first_reply: self.first_reply,
            orig_packets: self.packets[0],
            orig_bytes: self.bytes[0],
            resp_packets: self.packets[1],
            resp_bytes: self.bytes[1],
            checksum_faults: self.checksum_faults,
            history: self.history,
            end,
            ended_at,
            ftp_data_of,
        }
    }
}

/// One TCP segment as [`TcpTrack`] sees it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Segment {
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// Bytes of data it carries.
    pub payload_len: u32,
    /// Its window field, when captured.
    pub window: Option<u16>,
    /// Its window scale option (RFC 7323 §2.2), on a SYN.
    pub window_scale: WindowScale,
}

impl Segment {
    /// The segment of a TCP packet `b` (its IPv4 header `ip`, its TCP fields `l4`); `None`
    /// for anything else.
    #[inline]
    pub fn of(ip: &Ipv4, l4: &L4, b: &[u8]) -> Option<Segment> {
        let &L4::Tcp {
            seq,
            ack,
            flags,
            header_len,
            ..
        } = l4
        else {
            return None;
        };
        Some(Segment {
            seq,
            ack,
            flags,
            payload_len: ip.total_len.saturating_sub(ip.ihl + header_len.max(20)) as u32,
            window: tcp_window(b, ip.ihl),
            window_scale: if flags & SYN != 0 {
                tcp_window_scale(b, ip.ihl, header_len)
            } else {
                WindowScale::Absent
            },
        })
    }
}

/// Whether a TCP segment may start a session (RFC 2391 §2.3, §4.1: "a SYN without ACK"): SYN
/// alone among SYN, ACK, RST and FIN. A SYN with RST or FIN is no connection request (RFC 793
/// §3.4; Linux conntrack and IPVS refuse both combinations).
pub(crate) fn opens_session(flags: u8) -> bool {
    flags & (SYN | ACK | RST | FIN) == SYN
}

/// TCP state and end-of-session tracking (RFC 2391 §2.4, RFC 793 §3.5). The state chooses the
/// idle timeout (RFC 5382 §5, RFC 7857 §2.1: separate opening and closing timeouts): opening
/// from the SYN until the client acknowledges the member's SYN-ACK, then established until a
/// FIN is seen, closing until both FINs are acknowledged (closed) or an RST (reset).
///
/// An RST ends the session only when its receiver would accept it (RFC 793 §3.4 "Reset
/// Processing", as Linux conntrack checks it): its sequence number within the window the
/// receiver last acknowledged and advertised, or, for a receiver that has acknowledged nothing
/// yet (the client whose SYN it answers), an ACK of that SYN.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TcpTrack {
    /// For each direction, the acknowledgement number that acknowledges its FIN (`FIN_SEEN`).
    fin_ack_needed: [u32; 2],
    /// For each direction, the last acknowledgement number it sent: its RCV.NXT (`ACK_SEEN`).
    rcv_nxt: [u32; 2],
    /// For each direction, the largest window it advertised, scaled (`WINDOW_SEEN`).
    max_window: [u32; 2],
    /// The client's next sequence number after its SYN (`SYN_SEEN`): what an RST answering
    /// that SYN acknowledges.
    client_syn_end: u32,
    /// For each direction, the window scale its SYN offered (RFC 7323 §2.2); `NO_SCALE`
    /// without the option, `UNKNOWN_SCALE` when the snapshot cut the SYN's options.
    window_scale: [u8; 2],
    /// What has been seen: the `*_SEEN` bits (shifted left by the direction where there is
    /// one for each), `FIN_ACKED` for each direction, `SYN_ACKED`.
    seen: u16,
    /// Where the session stands.
    pub state: TcpState,
}

const FIN_SEEN: u16 = 1 << 0;
const ACK_SEEN: u16 = 1 << 2;
const WINDOW_SEEN: u16 = 1 << 4;
const FIN_ACKED: u16 = 1 << 6;
const SYN_SEEN: u16 = 1 << 8;
/// The member's SYN-ACK was seen.
const SYN_ACKED: u16 = 1 << 9;
/// The segment before was the client's SYN again, for a new connection, after its first
/// (conntrack lets the member's RST right after it through, RFC 793 §3.4: it acknowledges that
/// SYN).
const RESYN: u16 = 1 << 10;
const NO_SCALE: u8 = u8::MAX;
const UNKNOWN_SCALE: u8 = u8::MAX - 1;

impl TcpTrack {
    #[inline]
    fn has(&self, bit: u16, dir: usize) -> bool {
        self.seen & (bit << dir) != 0
    }

    /// Feeds one segment sent in direction `dir` (0 client → member, 1 back). Returns the end
    /// reason when this segment ends the session.
    #[inline]
    pub fn on_segment(&mut self, dir: usize, seg: Segment) -> Option<EndReason> {
        let Segment { ack, flags, .. } = seg;
        if flags & RST != 0 {
            if !self.rst_acceptable(dir, seg) {
                return None;
            }
            self.state = TcpState::Reset;
            return Some(EndReason::Rst);
        }
        self.follow_window(dir, seg);
        if flags & (SYN | ACK) == SYN | ACK && dir == 1 {
            self.seen |= SYN_ACKED;
        } else if self.state == TcpState::Opening
            && self.seen & SYN_ACKED != 0
            && dir == 0
            && flags & (SYN | ACK) == ACK
        {
            self.state = TcpState::Established;
        }
        if flags & FIN != 0 && self.state < TcpState::Closing {
            self.state = TcpState::Closing;
        }
        let other = 1 - dir;
        if flags & ACK != 0
            && self.has(FIN_SEEN, other)
            && ack.wrapping_sub(self.fin_ack_needed[other]) as i32 >= 0
        {
            self.seen |= FIN_ACKED << other;
        }
        if flags & FIN != 0 {
            let end = segment_end(seg);
            if !self.has(FIN_SEEN, dir) || end.wrapping_sub(self.fin_ack_needed[dir]) as i32 > 0 {
                self.fin_ack_needed[dir] = end;
                self.seen |= FIN_SEEN << dir;
            }
        }
        let closed = self.has(FIN_ACKED, 0) && self.has(FIN_ACKED, 1);
        if closed {
            self.state = TcpState::Closed;
        }
        closed.then_some(EndReason::Fin)
    }

    /// Whether a new connection's SYN on this session's tuple starts a new session: the old
    /// one has seen a FIN, so its own SYN cannot come again (RFC 793 §3.5). A SYN while the
    /// handshake or the data phase runs is a retransmission (or a restarted client, which the
    /// member answers on the same binding, as Linux conntrack keeps it).
    pub fn reopened_by_syn(&self) -> bool {
        self.state >= TcpState::Closing
    }

    /// Records what `dir` acknowledged and the window it advertised.
    #[inline]
    fn follow_window(&mut self, dir: usize, seg: Segment) {
        // Only the segment right after a client's new SYN may be the RST refusing it.
        self.seen &= !RESYN;
        if seg.flags & SYN != 0 {
            self.window_scale[dir] = match seg.window_scale {
                WindowScale::Absent => NO_SCALE,
                WindowScale::Shift(s) => s.min(14),
                WindowScale::NotCaptured => UNKNOWN_SCALE,
            };
            if dir == 0 {
                let end = segment_end(seg);
                if self.has(SYN_SEEN, 0) && end != self.client_syn_end {
                    self.seen |= RESYN;
                }
                self.client_syn_end = end;
                self.seen |= SYN_SEEN;
            }
        }
        if seg.flags & ACK != 0 {
            self.rcv_nxt[dir] = seg.ack;
            self.seen |= ACK_SEEN << dir;
        }
        if let Some(w) = seg.window {
            // RFC 7323 §2.2: the window of a SYN is never scaled; others are when both SYNs
            // offered the option.
            let shift = if seg.flags & SYN == 0 {
                self.shift(dir).unwrap_or(0)
            } else {
                0
            };
            let w = u32::from(w) << shift;
            if !self.has(WINDOW_SEEN, dir) || w > self.max_window[dir] {
                self.max_window[dir] = w;
                self.seen |= WINDOW_SEEN << dir;
            }
        }
    }

    /// The window shift of what `dir` advertises after the handshake (RFC 7323 §2.2: both
    /// SYNs offered the option, else 0); `None` when a SYN's options were not captured.
    #[inline]
    fn shift(&self, dir: usize) -> Option<u8> {
        if !self.has(SYN_SEEN, 0) || self.seen & SYN_ACKED == 0 {
            return Some(0);
        }
        match self.window_scale {
            [NO_SCALE, _] | [_, NO_SCALE] => Some(0),
            [UNKNOWN_SCALE, _] | [_, UNKNOWN_SCALE] => None,
            s => Some(s[dir]),
        }
    }

    /// RFC 793 §3.4: whether the receiver of an RST sent in `dir` accepts it.
    #[cold]
    fn rst_acceptable(&self, dir: usize, seg: Segment) -> bool {
        let other = 1 - dir;
        // The member refusing a client's new SYN on the session's tuple: the RST acknowledges
        // that SYN (conntrack: "RST sent to invalid SYN we had let through").
        if dir == 1
            && self.seen & RESYN != 0
            && seg.flags & ACK != 0
            && seg.ack == self.client_syn_end
        {
            return true;
        }
        if self.has(ACK_SEEN, other) {
            // Up to RCV.NXT + RCV.WND (a sender that filled the window aborts with that very
            // number, as Linux's tcp_acceptable_seq does; conntrack takes up to its right
            // edge), plus what scaling rounded off the advertised window. No window captured,
            // or a scale the snapshot cut (a short snapshot): accepted.
            let Some(shift) = self.shift(other) else {
                return true;
            };
            let slack = (1u32 << shift) - 1;
            return !self.has(WINDOW_SEEN, other)
                || seg.seq.wrapping_sub(self.rcv_nxt[other]) <= self.max_window[other] + slack;
        }
        // The receiver acknowledged nothing yet. The client in SYN-SENT takes an RST that
        // acknowledges its SYN; a member that has not answered (LISTEN or SYN-RECEIVED, its
        // window unknown here) is given the benefit of the doubt.
        if other == 0 && self.has(SYN_SEEN, 0) {
            return seg.flags & ACK != 0 && seg.ack == self.client_syn_end;
        }
        true
    }
}

/// The sequence number after a segment: its data, plus one for a SYN and one for a FIN.
#[inline]
fn segment_end(seg: Segment) -> u32 {
    seg.seq
        .wrapping_add(seg.payload_len)
        .wrapping_add(u32::from(seg.flags & SYN != 0))
        .wrapping_add(u32::from(seg.flags & FIN != 0))
}

/// The history letter a TCP segment contributes, by Zeek's rule (`update_history` in its TCP
/// analyzer): a segment with more than one of SYN, FIN and RST gives `q` (`i` for FIN and
/// RST); one with exactly one gives `s` (`h` with ACK), `f` or `r`, whatever data it carries;
/// otherwise data gives `d` and a bare ACK `a`. Each letter counts once per direction.
pub(crate) fn tcp_history(h: &mut History, originator: bool, flags: u8, payload_len: u32) {
    let letter = match (flags & SYN != 0, flags & FIN != 0, flags & RST != 0) {
        (_, true, true) => b'i',
        (true, true, false) | (true, false, true) => b'q',
        (true, false, false) if flags & ACK != 0 => b'h',
        (true, false, false) => b's',
        (false, true, false) => b'f',
        (false, false, true) => b'r',
        (false, false, false) if payload_len > 0 => b'd',
        (false, false, false) if flags & ACK != 0 => b'a',
        (false, false, false) => return,
    };
    h.mark(letter, originator);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(seq: u32, ack: u32, flags: u8, payload_len: u32) -> Segment {
        Segment {
            seq,
            ack,
            flags,
            payload_len,
            window: Some(65535),
            window_scale: WindowScale::Absent,
        }
    }

    #[test]
    fn fin_needs_both_halves_acknowledged() {
        let mut t = TcpTrack::default();
        // client FIN at seq 100 with 10 bytes: needs ack 111
        assert_eq!(t.on_segment(0, seg(100, 5000, FIN | ACK, 10)), None);
        // server acks only 110: not yet
        assert_eq!(t.on_segment(1, seg(5000, 110, ACK, 0)), None);
        // server FIN+ACK acking 111
        assert_eq!(t.on_segment(1, seg(5000, 111, FIN | ACK, 0)), None);
        // client final ACK of server FIN (5001)
        assert_eq!(
            t.on_segment(0, seg(111, 5001, ACK, 0)),
            Some(EndReason::Fin)
        );
    }

    /// A handshake without window scaling: client ISN 100, member ISN 5000, each advertising
    /// a window of `window`.
    fn handshake(window: u16) -> TcpTrack {
        let mut t = TcpTrack::default();
        let mut s = seg(100, 0, SYN, 0);
        s.window = Some(window);
        t.on_segment(0, s);
        let mut s = seg(5000, 101, SYN | ACK, 0);
        s.window = Some(window);
        t.on_segment(1, s);
        let mut s = seg(101, 5001, ACK, 0);
        s.window = Some(window);
        t.on_segment(0, s);
        t
    }

    /// RFC 793 §3.4: an RST is taken up to the receiver's RCV.NXT + RCV.WND (a sender that
    /// filled the window aborts with that number), not beyond, nor before RCV.NXT.
    #[test]
    fn rst_is_taken_within_the_window_right_edge_included() {
        for (seq, ends) in [
            (5001 + 100, true),
            (5001 + 101, false),
            (5000, false),
            (5001, true),
        ] {
            let mut t = handshake(100);
            assert_eq!(
                t.on_segment(1, seg(seq, 101, RST, 0)).is_some(),
                ends,
                "seq {seq}"
            );
        }
    }

    /// A client that sends a new SYN on an established session (a new connection on the same
    /// port) and is refused by the member: the member's RST acknowledges that SYN, whatever its
    /// sequence number, and ends the session (as conntrack lets it through).
    #[test]
    fn rst_refusing_a_new_syn_ends_the_session() {
        let mut t = handshake(100);
        assert_eq!(t.on_segment(0, seg(900_000, 0, SYN, 0)), None);
        assert_eq!(
            t.on_segment(1, seg(0, 900_001, RST | ACK, 0)),
            Some(EndReason::Rst)
        );
        // The same RST without that SYN is outside the window.
        let mut t = handshake(100);
        assert_eq!(t.on_segment(1, seg(0, 900_001, RST | ACK, 0)), None);
        // Nor after anything else came between (the member's challenge ACK, data).
        let mut t = handshake(100);
        assert_eq!(t.on_segment(0, seg(900_000, 0, SYN, 0)), None);
        assert_eq!(t.on_segment(1, seg(5001, 101, ACK, 0)), None);
        assert_eq!(t.on_segment(0, seg(101, 5001, ACK, 10)), None);
        assert_eq!(t.on_segment(1, seg(0, 900_001, RST | ACK, 0)), None);
    }

    /// Window scale options the snapshot cut: the scaled window is unknown, so an RST is
    /// given the benefit of the doubt; with the options seen, the scaled window counts.
    #[test]
    fn rst_window_follows_the_scale_or_its_absence() {
        let run = |scale: WindowScale, rst_seq: u32| {
            let mut t = TcpTrack::default();
            let mut s = seg(100, 0, SYN, 0);
            (s.window_scale, s.window) = (scale, Some(100));
            t.on_segment(0, s);
            let mut s = seg(5000, 101, SYN | ACK, 0);
            (s.window_scale, s.window) = (scale, Some(100));
            t.on_segment(1, s);
            let mut s = seg(101, 5001, ACK, 0);
            s.window = Some(100);
            t.on_segment(0, s);
            t.on_segment(1, seg(rst_seq, 101, RST, 0)).is_some()
        };
        assert!(!run(WindowScale::Absent, 5001 + 1000));
        assert!(run(WindowScale::Shift(4), 5001 + 1000)); // 100 << 4 = 1600
        assert!(!run(WindowScale::Shift(4), 5001 + 1600 + 16));
        assert!(run(WindowScale::NotCaptured, 5001 + 1000));
    }

    #[test]
    fn rst_ends_at_once_and_wraps_sequence_space() {
        let mut t = TcpTrack::default();
        assert_eq!(t.on_segment(1, seg(1, 1, RST, 0)), Some(EndReason::Rst));
        let mut t = TcpTrack::default();
        assert_eq!(t.on_segment(0, seg(u32::MAX, 1, FIN | ACK, 0)), None);
        assert_eq!(t.on_segment(1, seg(7, 0, FIN | ACK, 0)), None); // acks u32::MAX + 1 = 0
        assert_eq!(t.on_segment(0, seg(0, 8, ACK, 0)), Some(EndReason::Fin));
    }

    #[test]
    fn states_follow_handshake_and_close() {
        let mut t = TcpTrack::default();
        assert_eq!(t.state, TcpState::Opening);
        t.on_segment(0, seg(100, 0, SYN, 0));
        assert_eq!(t.state, TcpState::Opening);
        t.on_segment(0, seg(101, 0, ACK, 0)); // an ACK before the SYN-ACK does not establish
        assert_eq!(t.state, TcpState::Opening);
        t.on_segment(1, seg(5000, 101, SYN | ACK, 0));
        assert_eq!(t.state, TcpState::Opening);
        t.on_segment(0, seg(101, 5001, ACK, 0));
        assert_eq!(t.state, TcpState::Established);
        t.on_segment(1, seg(5001, 101, FIN | ACK, 0));
        assert_eq!(t.state, TcpState::Closing);
        t.on_segment(0, seg(101, 5002, FIN | ACK, 0));
        assert_eq!(t.state, TcpState::Closing);
        assert_eq!(
            t.on_segment(1, seg(5002, 102, ACK, 0)),
            Some(EndReason::Fin)
        );
        assert_eq!(t.state, TcpState::Closed);
        let mut t = TcpTrack::default();
        t.on_segment(1, seg(1, 1, RST | ACK, 0));
        assert_eq!(t.state, TcpState::Reset);
    }

    #[test]
    fn history_letters() {
        let mut h = History::default();
        tcp_history(&mut h, true, SYN, 0);
        tcp_history(&mut h, false, SYN | ACK, 0);
        tcp_history(&mut h, true, ACK, 0);
        tcp_history(&mut h, true, ACK, 100);
        tcp_history(&mut h, false, ACK, 1000);
        tcp_history(&mut h, true, FIN | ACK, 0);
        tcp_history(&mut h, false, FIN | ACK, 0);
        tcp_history(&mut h, true, ACK, 0);
        assert_eq!(h.as_str(), "ShADdFf");

        // One letter per segment, as Zeek: a FIN or SYN carrying data is only F or S; more
        // than one of SYN, FIN, RST is Q (I for FIN and RST); a segment with no flags and no
        // data, none.
        let mut h = History::default();
        tcp_history(&mut h, true, SYN, 10);
        tcp_history(&mut h, false, FIN | ACK | crate::wire::tcp_flags::PSH, 5);
        tcp_history(&mut h, true, 0, 0);
        tcp_history(&mut h, true, SYN | FIN, 0);
        tcp_history(&mut h, false, FIN | RST | ACK, 0);
        tcp_history(&mut h, false, RST, 0);
        assert_eq!(h.as_str(), "SfQir");
    }
}
