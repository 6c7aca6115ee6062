//! Entropy-coded segment bit reader (libjpeg's `jpeg_fill_bit_buffer`).

use crate::huffman::{HuffTable, LOOKAHEAD};
use crate::JpegError;

/// Where the entropy-coded data stopped.
#[derive(Debug, Clone, Copy)]
struct Stop {
    /// Offset of the first 0xFF of the marker (or the input length at EOF).
    at: usize,
    /// The marker code, `None` at end of input.
    code: Option<u8>,
    /// Offset just past the marker code.
    after: usize,
}

/// Finds the next marker at or after `pos`, skipping garbage bytes, fill
/// 0xFF bytes and stuffed `FF 00` pairs (libjpeg's `next_marker`).
fn find_marker(data: &[u8], mut pos: usize) -> Stop {
    loop {
        while data.get(pos).is_some_and(|&b| b != 0xFF) {
            pos += 1;
        }
        let at = pos;
        while data.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        match data.get(pos) {
            None => {
                return Stop {
                    at: data.len(),
                    code: None,
                    after: data.len(),
                }
            }
            Some(0) => pos += 1,
            Some(&c) => {
                return Stop {
                    at,
                    code: Some(c),
                    after: pos + 1,
                }
            }
        }
    }
}

/// MSB-first bit reader over entropy-coded data with byte unstuffing.
///
/// When the data ends (a marker or end of input), zero bits are supplied like
/// libjpeg does; `pad` counts them so a scan that actually *consumes* them can
/// be reported as truncated.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Bit buffer, left-aligned.
    acc: u64,
    /// Bits in `acc` (real and padding).
    nbits: u32,
    /// Padding zero bits appended after the end of the data (counted in
    /// `nbits` while still buffered).
    pad: u64,
    stop: Option<Stop>,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        Self {
            data,
            pos,
            acc: 0,
            nbits: 0,
            pad: 0,
            stop: None,
        }
    }

    #[inline]
    fn push_byte(&mut self, b: u8) {
        self.acc |= u64::from(b) << (56 - self.nbits);
        self.nbits += 8;
    }

    #[cold]
    fn refill_slow(&mut self) {
        while self.nbits <= 56 {
            if self.stop.is_some() {
                self.pad += 8;
                self.push_byte(0);
                continue;
            }
            match self.data.get(self.pos) {
                Some(&b) if b != 0xFF => {
                    self.pos += 1;
                    self.push_byte(b);
                }
                Some(_) => {
                    // 0xFF: fill bytes then either a stuffed zero or a marker.
                    let mut j = self.pos + 1;
                    while self.data.get(j) == Some(&0xFF) {
                        j += 1;
                    }
                    if self.data.get(j) == Some(&0) {
                        self.pos = j + 1;
                        self.push_byte(0xFF);
                    } else {
                        self.stop = Some(find_marker(self.data, self.pos));
                    }
                }
                None => self.stop = Some(find_marker(self.data, self.pos)),
            }
        }
    }

    /// Tops the buffer up to at least 57 bits.
    #[inline]
    fn refill(&mut self) {
        // Fast path: the next 8 bytes contain no 0xFF.
        if self.stop.is_none() {
            if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                let w = u64::from_be_bytes(word);
                // Any 0xFF byte?  (classic "has zero byte" on the complement)
                let inv = !w;
                let has_ff =
                    (inv.wrapping_sub(0x0101_0101_0101_0101) & !inv & 0x8080_8080_8080_8080) != 0;
                if !has_ff {
                    let take = (63 - self.nbits) / 8;
                    if take > 0 {
                        let bits = take * 8;
                        self.acc |= (w >> (64 - bits)) << (64 - bits - self.nbits);
                        self.nbits += bits;
                        self.pos += take as usize;
                    }
                    return;
                }
            }
        }
        self.refill_slow();
    }

    /// True once the decoder has consumed bits past the end of the data.
    #[inline]
    pub fn overrun(&self) -> bool {
        u64::from(self.nbits) < self.pad
    }

    /// Reads `n` (0..=16) bits as an unsigned value.
    #[inline]
    pub fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        if self.nbits < n {
            self.refill();
        }
        let v = (self.acc >> (64 - n)) as u32;
        self.acc <<= n;
        self.nbits -= n;
        v
    }

    /// Reads one bit.
    #[inline]
    pub fn bit(&mut self) -> bool {
        self.bits(1) != 0
    }

    /// Reads `s` bits and sign-extends them per JPEG's `HUFF_EXTEND`.
    #[inline]
    pub fn receive_extend(&mut self, s: u32) -> i32 {
        if s == 0 {
            return 0;
        }
        let v = self.bits(s) as i32;
        if v < (1 << (s - 1)) {
            v - (1 << s) + 1
        } else {
            v
        }
    }

    /// Decodes one Huffman symbol.
    #[inline]
    pub fn decode(&mut self, t: &HuffTable) -> Result<u8, JpegError> {
        if self.nbits < 16 {
            self.refill();
        }
        let look = (self.acc >> (64 - LOOKAHEAD)) as usize;
        let e = t.lookup[look & ((1 << LOOKAHEAD) - 1)];
        if e != 0 {
            let len = u32::from(e >> 8);
            self.acc <<= len;
            self.nbits -= len;
            return Ok(e as u8);
        }
        self.decode_slow(t)
    }

    #[cold]
    fn decode_slow(&mut self, t: &HuffTable) -> Result<u8, JpegError> {
        for len in (LOOKAHEAD + 1)..=16 {
            let code = (self.acc >> (64 - len)) as i32;
            if code <= t.maxcode[len as usize] {
                self.acc <<= len;
                self.nbits -= len;
                let idx = code.wrapping_add(t.valoffset[len as usize]);
                return usize::try_from(idx)
                    .ok()
                    .and_then(|i| t.values.get(i).copied())
                    .ok_or(JpegError::Corrupt("bad Huffman code"));
            }
        }
        Err(JpegError::Corrupt("bad Huffman code"))
    }

    /// Handles a restart marker: discards the buffered bits and expects
    /// `RSTn` with `n == expected`.
    pub fn restart(&mut self, expected: u8) -> Result<(), JpegError> {
        if self.overrun() {
            return Err(JpegError::Truncated);
        }
        let stop = match self.stop.take() {
            Some(s) => s,
            None => find_marker(self.data, self.pos),
        };
        self.acc = 0;
        self.nbits = 0;
        self.pad = 0;
        match stop.code {
            None => Err(JpegError::Truncated),
            Some(c) if c == 0xD0 + (expected & 7) => {
                self.pos = stop.after;
                Ok(())
            }
            Some(_) => Err(JpegError::Corrupt("missing or out-of-order restart marker")),
        }
    }

    /// Offset where marker parsing resumes after the scan.
    pub fn resume_position(&self) -> usize {
        match self.stop {
            Some(s) => s.at,
            None => self.pos,
        }
    }
}
