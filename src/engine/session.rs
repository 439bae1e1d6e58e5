//! Sessions (RFC 2391 §2.2–2.4): the key that identifies one, the state kept while it is bound,
//! and how a TCP session's end is detected (§2.4: "FIN is acknowledged by both halves of the
//! session or when either half receives RST").

use super::event::{EndReason, History, SessionRecord, TcpState, Tuple};
use crate::time::Timestamp;
use crate::wire::ipv4::{Ipv4, L4, tcp_window, tcp_window_scale};
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
    pub answered_elsewhere: Option<usize>,
    /// Its member was removed while it was bound (pool timeline).
    pub member_removed: bool,
    /// Packets after the removal: [client → member, member → client].
    pub after_removal: [u64; 2],
}

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
    pub fn record(&self, end: EndReason, ended_at: Timestamp) -> SessionRecord {
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
    pub window_scale: Option<u8>,
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
                None
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
    /// without the option.
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
const NO_SCALE: u8 = u8::MAX;

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
        if seg.flags & SYN != 0 {
            self.window_scale[dir] = seg.window_scale.map_or(NO_SCALE, |s| s.min(14));
            if dir == 0 {
                self.client_syn_end = segment_end(seg);
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
            let scales = self.has(SYN_SEEN, 0)
                && self.seen & SYN_ACKED != 0
                && self.window_scale[0] != NO_SCALE
                && self.window_scale[1] != NO_SCALE;
            let shift = if scales && seg.flags & SYN == 0 {
                self.window_scale[dir]
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

    /// RFC 793 §3.4: whether the receiver of an RST sent in `dir` accepts it.
    #[cold]
    fn rst_acceptable(&self, dir: usize, seg: Segment) -> bool {
        let other = 1 - dir;
        if self.has(ACK_SEEN, other) {
            // In [RCV.NXT, RCV.NXT + RCV.WND); a zero window takes RCV.NXT itself. No window
            // captured (a short snapshot): accepted.
            return !self.has(WINDOW_SEEN, other)
                || seg.seq.wrapping_sub(self.rcv_nxt[other]) < self.max_window[other].max(1);
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
            window_scale: None,
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
