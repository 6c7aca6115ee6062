//! Marker-level parsing: segments, tables and the frame header.

use crate::huffman::HuffTable;
use crate::{ColorSpace, Header, JpegError, Unsupported};

/// Zigzag index -> natural (row-major) coefficient position, padded with 16
/// extra entries pointing at 63 like libjpeg's `jpeg_natural_order`, so a
/// corrupt run length can overshoot the block without an out-of-range index.
pub(crate) const NATURAL_ORDER: [usize; 80] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63, // end of real table
    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
];

/// Marker codes (the byte following 0xFF).
pub(crate) mod code {
    pub const SOI: u8 = 0xD8;
    pub const EOI: u8 = 0xD9;
    pub const SOS: u8 = 0xDA;
    pub const DQT: u8 = 0xDB;
    pub const DNL: u8 = 0xDC;
    pub const DRI: u8 = 0xDD;
    pub const DHT: u8 = 0xC4;
    pub const DAC: u8 = 0xCC;
    pub const COM: u8 = 0xFE;
    pub const APP0: u8 = 0xE0;
    pub const APP14: u8 = 0xEE;
}

/// One component as declared in the SOF segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameComponent {
    pub id: u8,
    pub h: u8,
    pub v: u8,
    pub tq: u8,
}

/// The SOF segment.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub width: u32,
    pub height: u32,
    pub precision: u8,
    pub progressive: bool,
    pub comps: Vec<FrameComponent>,
}

/// One SOS segment.
#[derive(Debug, Clone)]
pub(crate) struct ScanHeader {
    /// `(frame component index, DC table, AC table)`.
    pub comps: Vec<(usize, usize, usize)>,
    pub ss: u8,
    pub se: u8,
    pub ah: u8,
    pub al: u8,
}

/// Tables and flags accumulated from the markers seen so far.
pub(crate) struct Tables {
    /// Quantisation tables in natural order.
    pub quant: [Option<[u16; 64]>; 4],
    pub dc: [Option<HuffTable>; 4],
    pub ac: [Option<HuffTable>; 4],
    pub restart_interval: u16,
    pub saw_jfif: bool,
    pub adobe_transform: Option<u8>,
}

impl Tables {
    pub fn new() -> Self {
        // libjpeg-turbo installs the standard (Annex K) tables in slots 0 and
        // 1 when a file does not define them (Motion-JPEG style files).
        Self {
            quant: [None; 4],
            dc: [
                Some(HuffTable::std_dc_luma()),
                Some(HuffTable::std_dc_chroma()),
                None,
                None,
            ],
            ac: [
                Some(HuffTable::std_ac_luma()),
                Some(HuffTable::std_ac_chroma()),
                None,
                None,
            ],
            restart_interval: 0,
            saw_jfif: false,
            adobe_transform: None,
        }
    }
}

/// A cursor over the whole file for marker-level parsing.
pub(crate) struct Cursor<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Checks the SOI marker at the very start, like libjpeg's `first_marker`.
    pub fn expect_soi(&mut self) -> Result<(), JpegError> {
        match self.data {
            [0xFF, code::SOI, ..] => {
                self.pos = 2;
                Ok(())
            }
            [] | [0xFF] => Err(JpegError::Truncated),
            _ => Err(JpegError::Corrupt("not a JPEG file (no SOI marker)")),
        }
    }

    /// libjpeg's `next_marker`: skips garbage up to the next 0xFF, any fill
    /// 0xFF bytes, and stuffed `FF 00` pairs; returns the marker code or
    /// `None` at end of input.
    pub fn next_marker(&mut self) -> Option<u8> {
        loop {
            while *self.data.get(self.pos)? != 0xFF {
                self.pos += 1;
            }
            while *self.data.get(self.pos)? == 0xFF {
                self.pos += 1;
            }
            let c = *self.data.get(self.pos)?;
            self.pos += 1;
            if c != 0 {
                return Some(c);
            }
        }
    }

    /// Reads a length-prefixed segment and returns its payload.
    pub fn segment(&mut self) -> Result<&'a [u8], JpegError> {
        let hi = *self.data.get(self.pos).ok_or(JpegError::Truncated)?;
        let lo = *self.data.get(self.pos + 1).ok_or(JpegError::Truncated)?;
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len < 2 {
            return Err(JpegError::Corrupt("bad marker segment length"));
        }
        let start = self.pos + 2;
        let end = self.pos + len;
        let payload = self.data.get(start..end).ok_or(JpegError::Truncated)?;
        self.pos = end;
        Ok(payload)
    }
}

fn be16(b: &[u8], at: usize) -> Result<u16, JpegError> {
    match (b.get(at), b.get(at + 1)) {
        (Some(&hi), Some(&lo)) => Ok(u16::from_be_bytes([hi, lo])),
        _ => Err(JpegError::Corrupt("marker segment too short")),
    }
}

fn parse_dqt(mut p: &[u8], tables: &mut Tables) -> Result<(), JpegError> {
    while let Some((&pq_tq, rest)) = p.split_first() {
        let idx = usize::from(pq_tq & 0x0F);
        if idx >= 4 {
            return Err(JpegError::Corrupt("bad quantization table index"));
        }
        let sixteen = pq_tq >> 4 != 0;
        let need = if sixteen { 128 } else { 64 };
        let body = rest
            .get(..need)
            .ok_or(JpegError::Corrupt("short DQT segment"))?;
        let mut table = [0u16; 64];
        for (k, &pos) in NATURAL_ORDER.iter().take(64).enumerate() {
            table[pos] = if sixteen {
                be16(body, 2 * k)?
            } else {
                u16::from(body[k])
            };
        }
        tables.quant[idx] = Some(table);
        p = rest.get(need..).unwrap_or(&[]);
    }
    Ok(())
}

fn parse_dht(mut p: &[u8], tables: &mut Tables) -> Result<(), JpegError> {
    while let Some((&index, rest)) = p.split_first() {
        let is_ac = index & 0x10 != 0;
        let slot = usize::from(index & !0x10);
        if slot >= 4 {
            return Err(JpegError::Corrupt("bad Huffman table index"));
        }
        let counts_bytes = rest
            .get(..16)
            .ok_or(JpegError::Corrupt("short DHT segment"))?;
        let mut counts = [0u8; 16];
        counts.copy_from_slice(counts_bytes);
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if total > 256 {
            return Err(JpegError::Corrupt("bad Huffman table"));
        }
        let values = rest
            .get(16..16 + total)
            .ok_or(JpegError::Corrupt("short DHT segment"))?;
        let table = HuffTable::new(&counts, values, !is_ac)?;
        if is_ac {
            tables.ac[slot] = Some(table);
        } else {
            tables.dc[slot] = Some(table);
        }
        p = rest.get(16 + total..).unwrap_or(&[]);
    }
    Ok(())
}

fn parse_sof(p: &[u8], marker: u8) -> Result<Frame, JpegError> {
    let precision = *p.first().ok_or(JpegError::Corrupt("short SOF segment"))?;
    let height = u32::from(be16(p, 1)?);
    let width = u32::from(be16(p, 3)?);
    let n = usize::from(*p.get(5).ok_or(JpegError::Corrupt("short SOF segment"))?);
    if p.len() != 6 + 3 * n {
        return Err(JpegError::Corrupt("bad SOF segment length"));
    }
    if n == 0 || width == 0 {
        return Err(JpegError::Corrupt("empty image"));
    }
    if n > 10 {
        return Err(JpegError::Corrupt("too many components"));
    }
    let mut comps = Vec::with_capacity(n);
    for c in p[6..].chunks_exact(3) {
        let (h, v) = (c[1] >> 4, c[1] & 0x0F);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
            return Err(JpegError::Corrupt("bad sampling factors"));
        }
        if c[2] >= 4 {
            return Err(JpegError::Corrupt("bad quantization table index"));
        }
        comps.push(FrameComponent {
            id: c[0],
            h,
            v,
            tq: c[2],
        });
    }
    Ok(Frame {
        width,
        height,
        precision,
        progressive: marker == 0xC2,
        comps,
    })
}

/// Parses an SOS segment against the frame.
pub(crate) fn parse_sos(p: &[u8], frame: &Frame) -> Result<ScanHeader, JpegError> {
    let n = usize::from(*p.first().ok_or(JpegError::Corrupt("short SOS segment"))?);
    if p.len() != 4 + 2 * n || n == 0 || n > 4 {
        return Err(JpegError::Corrupt("bad SOS segment length"));
    }
    let mut comps: Vec<(usize, usize, usize)> = Vec::with_capacity(n);
    for c in p[1..1 + 2 * n].chunks_exact(2) {
        let ci = frame
            .comps
            .iter()
            .enumerate()
            .position(|(i, fc)| fc.id == c[0] && !comps.iter().any(|s| s.0 == i))
            .ok_or(JpegError::Corrupt("SOS names an unknown component"))?;
        let (td, ta) = (usize::from(c[1] >> 4), usize::from(c[1] & 0x0F));
        if td >= 4 || ta >= 4 {
            return Err(JpegError::Corrupt("bad Huffman table index"));
        }
        comps.push((ci, td, ta));
    }
    let tail = &p[1 + 2 * n..];
    Ok(ScanHeader {
        comps,
        ss: tail[0],
        se: tail[1],
        ah: tail[2] >> 4,
        al: tail[2] & 0x0F,
    })
}

/// What the marker loop found.
pub(crate) enum Event {
    Frame(Frame),
    Scan(ScanHeader),
    Eoi,
    /// End of input without EOI.
    Eof,
}

/// Reads markers, handling tables and miscellany, until a frame header, a
/// scan header, EOI or end of input. `frame` is the frame seen so far (SOS
/// needs it; a second SOF is an error).
pub(crate) fn next_event(
    cur: &mut Cursor<'_>,
    tables: &mut Tables,
    frame: Option<&Frame>,
) -> Result<Event, JpegError> {
    loop {
        let Some(m) = cur.next_marker() else {
            return Ok(Event::Eof);
        };
        match m {
            0xC0..=0xC2 => {
                if frame.is_some() {
                    return Err(JpegError::Corrupt("duplicate SOF marker"));
                }
                let f = parse_sof(cur.segment()?, m)?;
                return Ok(Event::Frame(f));
            }
            0xC3 | 0xCB => return Err(Unsupported::Lossless.into()),
            0xC5..=0xC7 | 0xCD..=0xCF | 0xDE | 0xDF => return Err(Unsupported::Hierarchical.into()),
            0xC9 | 0xCA => return Err(Unsupported::ArithmeticCoding.into()),
            code::SOS => {
                let Some(f) = frame else {
                    return Err(JpegError::Corrupt("SOS before SOF"));
                };
                let s = parse_sos(cur.segment()?, f)?;
                return Ok(Event::Scan(s));
            }
            code::EOI => return Ok(Event::Eoi),
            code::SOI => return Err(JpegError::Corrupt("duplicate SOI marker")),
            code::DQT => parse_dqt(cur.segment()?, tables)?,
            code::DHT => parse_dht(cur.segment()?, tables)?,
            code::DRI => {
                let p = cur.segment()?;
                if p.len() != 2 {
                    return Err(JpegError::Corrupt("bad DRI segment length"));
                }
                tables.restart_interval = be16(p, 0)?;
            }
            code::APP0 => {
                let p = cur.segment()?;
                if p.len() >= 14 && p.starts_with(b"JFIF\0") {
                    tables.saw_jfif = true;
                }
            }
            code::APP14 => {
                let p = cur.segment()?;
                if p.len() >= 12 && p.starts_with(b"Adobe") {
                    tables.adobe_transform = Some(p[11]);
                }
            }
            0xE1..=0xED | 0xEF | code::COM | code::DAC | code::DNL => {
                cur.segment()?;
            }
            // RSTn and TEM outside a scan carry no payload; libjpeg ignores them.
            0xD0..=0xD7 | 0x01 => {}
            _ => return Err(JpegError::Corrupt("unknown marker")),
        }
    }
}

/// libjpeg's `default_decompress_parms` colour-space guess.
pub(crate) fn color_space(frame: &Frame, tables: &Tables) -> ColorSpace {
    match frame.comps.len() {
        1 => ColorSpace::Grayscale,
        3 => {
            if tables.saw_jfif {
                ColorSpace::YCbCr
            } else if let Some(t) = tables.adobe_transform {
                if t == 0 {
                    ColorSpace::Rgb
                } else {
                    ColorSpace::YCbCr
                }
            } else {
                let ids: Vec<u8> = frame.comps.iter().map(|c| c.id).collect();
                if ids == [b'R', b'G', b'B'] {
                    ColorSpace::Rgb
                } else {
                    ColorSpace::YCbCr
                }
            }
        }
        4 => match tables.adobe_transform {
            Some(2) => ColorSpace::Ycck,
            _ => ColorSpace::Cmyk,
        },
        _ => ColorSpace::Unknown,
    }
}

/// Parses the file up to its frame header.
pub(crate) fn read_frame<'a>(bytes: &'a [u8]) -> Result<(Cursor<'a>, Tables, Frame), JpegError> {
    let mut cur = Cursor::new(bytes);
    cur.expect_soi()?;
    let mut tables = Tables::new();
    match next_event(&mut cur, &mut tables, None)? {
        Event::Frame(f) => Ok((cur, tables, f)),
        Event::Scan(_) => Err(JpegError::Corrupt("SOS before SOF")),
        Event::Eoi => Err(JpegError::Corrupt("no image in file")),
        Event::Eof => Err(JpegError::Truncated),
    }
}

pub(crate) fn read_header(bytes: &[u8]) -> Result<Header, JpegError> {
    let (_, tables, frame) = read_frame(bytes)?;
    if frame.precision != 8 {
        return Err(Unsupported::Precision(frame.precision).into());
    }
    Ok(Header {
        width: frame.width,
        height: frame.height,
        components: u8::try_from(frame.comps.len()).unwrap_or(u8::MAX),
        progressive: frame.progressive,
        precision: frame.precision,
        sampling_factors: frame.comps.iter().map(|c| (c.h, c.v)).collect(),
        color_space: color_space(&frame, &tables),
    })
}
