//! A pcapng file under construction (draft-ietf-opsawg-pcapng §3–§4), one section at a time,
//! for tests that need a format case no recorded capture holds. Shared by the integration
//! tests (`tests/common`) and the capture module's unit tests (`src/capture/tests.rs`, which
//! include this file by path).

/// The bytes of a pcapng file so far, and the byte order of its current section.
#[derive(Default)]
pub struct Ng {
    pub be: bool,
    pub out: Vec<u8>,
}

#[allow(dead_code)]
impl Ng {
    pub fn new() -> Ng {
        Ng::default()
    }
    pub fn w16(&self, v: u16) -> [u8; 2] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    pub fn w32(&self, v: u32) -> [u8; 4] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    pub fn w64(&self, v: u64) -> [u8; 8] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    /// A block of `type_` with `body` padded to 32 bits, its total length on both ends.
    pub fn block(&mut self, type_: u32, body: &[u8]) -> &mut Ng {
        let mut body = body.to_vec();
        body.resize(body.len().next_multiple_of(4), 0);
        let total = self.w32(body.len() as u32 + 12);
        self.out.extend_from_slice(&self.w32(type_));
        self.out.extend_from_slice(&total);
        self.out.extend_from_slice(&body);
        self.out.extend_from_slice(&total);
        self
    }
    /// Options (code, value), each padded to 32 bits, then `opt_endofopt` if there are any.
    pub fn options(&self, opts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut o = Vec::new();
        for (code, value) in opts {
            o.extend_from_slice(&self.w16(*code));
            o.extend_from_slice(&self.w16(value.len() as u16));
            o.extend_from_slice(value);
            o.resize(o.len().next_multiple_of(4), 0);
        }
        if !opts.is_empty() {
            o.extend_from_slice(&[0; 4]);
        }
        o
    }
    /// A Section Header Block starting a section in this byte order.
    pub fn shb(&mut self, be: bool, opts: &[(u16, &[u8])]) -> &mut Ng {
        self.be = be;
        let mut body = self.w32(0x1a2b_3c4d).to_vec();
        body.extend_from_slice(&self.w16(1));
        body.extend_from_slice(&self.w16(0));
        body.extend_from_slice(&[0xff; 8]);
        body.extend(self.options(opts));
        self.block(0x0a0d_0d0a, &body)
    }
    /// An Interface Description Block.
    pub fn idb(&mut self, linktype: u16, snaplen: u32, opts: &[(u16, &[u8])]) -> &mut Ng {
        let mut body = self.w16(linktype).to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.w32(snaplen));
        body.extend(self.options(opts));
        self.block(1, &body)
    }
    /// An Enhanced Packet Block: interface, time in its units, original length, data, options.
    pub fn epb(
        &mut self,
        iface: u32,
        units: u64,
        orig: u32,
        data: &[u8],
        opts: &[(u16, &[u8])],
    ) -> &mut Ng {
        let mut body = Vec::new();
        for v in [
            iface,
            (units >> 32) as u32,
            units as u32,
            data.len() as u32,
            orig,
        ] {
            body.extend_from_slice(&self.w32(v));
        }
        body.extend_from_slice(data);
        body.resize(body.len().next_multiple_of(4), 0);
        body.extend(self.options(opts));
        self.block(6, &body)
    }
    /// An Enhanced Packet Block with, when `flags` is given, a comment and those `epb_flags`.
    pub fn epb_flags(
        &mut self,
        iface: u32,
        units: u64,
        orig: u32,
        data: &[u8],
        flags: Option<u32>,
    ) -> &mut Ng {
        match flags {
            Some(f) => {
                let f = self.w32(f);
                self.epb(iface, units, orig, data, &[(1, b"a comment"), (2, &f)])
            }
            None => self.epb(iface, units, orig, data, &[]),
        }
    }
    /// A Simple Packet Block.
    pub fn spb(&mut self, data: &[u8]) -> &mut Ng {
        let mut body = self.w32(data.len() as u32).to_vec();
        body.extend_from_slice(data);
        self.block(3, &body)
    }
}

/// CRC-32 (IEEE 802.3), bit by bit: the Ethernet FCS and pcapng's `epb_hash` algorithm 2.
#[allow(dead_code)]
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}
