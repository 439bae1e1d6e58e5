//! Sessions (RFC 2391 §2.2–2.4): the key that identifies one, the state kept while it is bound,
//! and how a TCP session's end is detected (§2.4: "FIN is acknowledged by both halves of the
//! session or when either half receives RST").

use super::event::{EndReason, History, SessionRecord, TcpState, Tuple};
use crate::time::Timestamp;
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

/// TCP state and end-of-session tracking (RFC 2391 §2.4, RFC 793 §3.5). The state chooses the
/// idle timeout (RFC 5382 §5, RFC 7857 §2.1: separate opening and closing timeouts): opening
/// from the SYN until the client acknowledges the member's SYN-ACK, then established until a
/// FIN is seen, closing until both FINs are acknowledged (closed) or an RST (reset).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TcpTrack {
    /// For each direction, the acknowledgement number that acknowledges its FIN.
    fin_ack_needed: [Option<u32>; 2],
    fin_acked: [bool; 2],
    /// The member's SYN-ACK was seen.
    syn_acked: bool,
    /// Where the session stands.
    pub state: TcpState,
}

impl TcpTrack {
    /// Feeds one segment sent in direction `dir` (0 client → member, 1 back). Returns the end
    /// reason when this segment ends the session.
    pub fn on_segment(
        &mut self,
        dir: usize,
        seq: u32,
        ack: u32,
        flags: u8,
        payload_len: u32,
    ) -> Option<EndReason> {
        if flags & RST != 0 {
            self.state = TcpState::Reset;
            return Some(EndReason::Rst);
        }
        if flags & (SYN | ACK) == SYN | ACK && dir == 1 {
            self.syn_acked = true;
        } else if self.state == TcpState::Opening
            && self.syn_acked
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
            && let Some(need) = self.fin_ack_needed[other]
            && ack.wrapping_sub(need) as i32 >= 0
        {
            self.fin_acked[other] = true;
        }
        if flags & FIN != 0 {
            let syn = u32::from(flags & SYN != 0);
            let end = seq
                .wrapping_add(payload_len)
                .wrapping_add(syn)
                .wrapping_add(1);
            match self.fin_ack_needed[dir] {
                Some(prev) if prev.wrapping_sub(end) as i32 >= 0 => {}
                _ => self.fin_ack_needed[dir] = Some(end),
            }
        }
        let closed = self.fin_acked[0] && self.fin_acked[1];
        if closed {
            self.state = TcpState::Closed;
        }
        closed.then_some(EndReason::Fin)
    }
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

    #[test]
    fn fin_needs_both_halves_acknowledged() {
        let mut t = TcpTrack::default();
        // client FIN at seq 100 with 10 bytes: needs ack 111
        assert_eq!(t.on_segment(0, 100, 5000, FIN | ACK, 10), None);
        // server acks only 110: not yet
        assert_eq!(t.on_segment(1, 5000, 110, ACK, 0), None);
        // server FIN+ACK acking 111
        assert_eq!(t.on_segment(1, 5000, 111, FIN | ACK, 0), None);
        // client final ACK of server FIN (5001)
        assert_eq!(t.on_segment(0, 111, 5001, ACK, 0), Some(EndReason::Fin));
    }

    #[test]
    fn rst_ends_at_once_and_wraps_sequence_space() {
        let mut t = TcpTrack::default();
        assert_eq!(t.on_segment(1, 1, 1, RST, 0), Some(EndReason::Rst));
        let mut t = TcpTrack::default();
        assert_eq!(t.on_segment(0, u32::MAX, 1, FIN | ACK, 0), None);
        assert_eq!(t.on_segment(1, 7, 0, FIN | ACK, 0), None); // acks u32::MAX + 1 = 0
        assert_eq!(t.on_segment(0, 0, 8, ACK, 0), Some(EndReason::Fin));
    }

    #[test]
    fn states_follow_handshake_and_close() {
        let mut t = TcpTrack::default();
        assert_eq!(t.state, TcpState::Opening);
        t.on_segment(0, 100, 0, SYN, 0);
        assert_eq!(t.state, TcpState::Opening);
        t.on_segment(0, 101, 0, ACK, 0); // an ACK before the SYN-ACK does not establish
        assert_eq!(t.state, TcpState::Opening);
        t.on_segment(1, 5000, 101, SYN | ACK, 0);
        assert_eq!(t.state, TcpState::Opening);
        t.on_segment(0, 101, 5001, ACK, 0);
        assert_eq!(t.state, TcpState::Established);
        t.on_segment(1, 5001, 101, FIN | ACK, 0);
        assert_eq!(t.state, TcpState::Closing);
        t.on_segment(0, 101, 5002, FIN | ACK, 0);
        assert_eq!(t.state, TcpState::Closing);
        assert_eq!(t.on_segment(1, 5002, 102, ACK, 0), Some(EndReason::Fin));
        assert_eq!(t.state, TcpState::Closed);
        let mut t = TcpTrack::default();
        t.on_segment(1, 1, 1, RST | ACK, 0);
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
