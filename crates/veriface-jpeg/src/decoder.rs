//! Frame/scan orchestration: sequential and progressive Huffman decoding.

use crate::bitreader::BitReader;
use crate::color::{self, Plane};
use crate::huffman::HuffTable;
use crate::idct::idct_islow;
use crate::markers::{self, Event, Frame, ScanHeader, Tables, NATURAL_ORDER};
use crate::{ColorSpace, JpegError, Limits, RgbOutput, Unsupported};

/// libjpeg's `D_MAX_BLOCKS_IN_MCU`.
const MAX_BLOCKS_IN_MCU: usize = 10;

/// Per-component decoding state.
struct Comp {
    h: usize,
    v: usize,
    tq: usize,
    /// Blocks per row / column including MCU padding.
    bw: usize,
    /// Blocks actually covering the component (non-interleaved scan extent).
    nbw: usize,
    nbh: usize,
    /// Quantisation table latched when the component first appears in a scan
    /// (natural order, raw 16-bit values).
    quant: Option<[u16; 64]>,
    plane: Plane,
    /// Coefficient buffer (progressive only), `bw * bh` blocks.
    coefs: Vec<[i16; 64]>,
    dc_pred: i32,
    /// libjpeg's `coef_bits`: last successive-approximation bit position
    /// received per zigzag index, -1 if never.
    coef_bits: [i32; 64],
    seen: bool,
}

impl Comp {
    fn quant_i16(&self) -> [i16; 64] {
        let mut q = [0i16; 64];
        if let Some(t) = &self.quant {
            for (d, &s) in q.iter_mut().zip(t.iter()) {
                // libjpeg-turbo's ISLOW_MULT_TYPE is `short`.
                *d = s as i16;
            }
        }
        q
    }

    /// Writes an 8x8 sample block at block coordinates (`bx`, `by`).
    fn put_block(&mut self, bx: usize, by: usize, px: &[u8; 64]) {
        let stride = self.plane.stride;
        for (r, src) in px.chunks_exact(8).enumerate() {
            let start = (by * 8 + r) * stride + bx * 8;
            if let Some(dst) = self.plane.data.get_mut(start..start + 8) {
                dst.copy_from_slice(src);
            }
        }
    }
}

fn div_ceil(a: usize, b: usize) -> usize {
    a.div_ceil(b.max(1))
}

fn alloc_err() -> JpegError {
    JpegError::Corrupt("image dimensions overflow")
}

pub(crate) fn decode(bytes: &[u8], limits: &Limits) -> Result<RgbOutput, JpegError> {
    let (mut cur, mut tables, frame) = markers::read_frame(bytes)?;
    if frame.precision != 8 {
        return Err(Unsupported::Precision(frame.precision).into());
    }
    let ncomp = frame.comps.len();
    if ncomp != 1 && ncomp != 3 {
        return Err(Unsupported::ColorComponents(ncomp as u8).into());
    }
    if frame.height == 0 {
        return Err(Unsupported::DnlHeight.into());
    }
    let pixels = u64::from(frame.width) * u64::from(frame.height);
    if pixels > limits.max_pixels {
        return Err(JpegError::TooLarge {
            width: frame.width,
            height: frame.height,
            max_pixels: limits.max_pixels,
        });
    }
    let width = frame.width as usize;
    let height = frame.height as usize;

    let hmax = frame
        .comps
        .iter()
        .map(|c| usize::from(c.h))
        .max()
        .unwrap_or(1);
    let vmax = frame
        .comps
        .iter()
        .map(|c| usize::from(c.v))
        .max()
        .unwrap_or(1);
    let mut ratios = Vec::with_capacity(ncomp);
    for c in &frame.comps {
        let (h, v) = (usize::from(c.h), usize::from(c.v));
        if hmax % h != 0 || vmax % v != 0 {
            return Err(Unsupported::FractionalSampling.into());
        }
        ratios.push((hmax / h, vmax / v));
    }
    let mcus_x = div_ceil(width, 8 * hmax);
    let mcus_y = div_ceil(height, 8 * vmax);

    let mut comps = Vec::with_capacity(ncomp);
    for c in &frame.comps {
        let (h, v) = (usize::from(c.h), usize::from(c.v));
        let dw = div_ceil(width * h, hmax);
        let dh = div_ceil(height * v, vmax);
        let bw = mcus_x * h;
        let bh = mcus_y * v;
        let stride = bw * 8;
        let plane_len = stride.checked_mul(bh * 8).ok_or_else(alloc_err)?;
        let coefs = if frame.progressive {
            vec![[0i16; 64]; bw.checked_mul(bh).ok_or_else(alloc_err)?]
        } else {
            Vec::new()
        };
        comps.push(Comp {
            h,
            v,
            tq: usize::from(c.tq),
            bw,
            nbw: div_ceil(dw, 8),
            nbh: div_ceil(dh, 8),
            quant: None,
            plane: Plane {
                data: vec![0u8; plane_len],
                stride,
                dw,
                dh,
            },
            coefs,
            dc_pred: 0,
            coef_bits: [-1; 64],
            seen: false,
        });
    }

    let mut space = None;
    let mut scans = 0usize;
    loop {
        match markers::next_event(&mut cur, &mut tables, Some(&frame))? {
            Event::Scan(scan) => {
                if space.is_none() {
                    // libjpeg decides the colour space once the first SOS is
                    // reached (jpeg_read_header).
                    space = Some(markers::color_space(&frame, &tables));
                }
                let mut reader = BitReader::new(bytes, cur.pos);
                decode_scan(
                    &mut reader,
                    &scan,
                    &frame,
                    &tables,
                    &mut comps,
                    mcus_x,
                    mcus_y,
                )?;
                cur.pos = reader.resume_position();
                scans += 1;
                if !frame.progressive && comps.iter().all(|c| c.seen) {
                    break;
                }
            }
            Event::Eoi | Event::Eof => {
                if scans == 0 {
                    return Err(JpegError::Truncated);
                }
                if !frame.progressive {
                    // Some component never got its scan.
                    return Err(JpegError::Truncated);
                }
                break;
            }
            Event::Frame(_) => return Err(JpegError::Corrupt("duplicate SOF marker")),
        }
    }
    let space = space.unwrap_or(ColorSpace::YCbCr);

    if frame.progressive {
        if smoothing_applies(&comps) {
            return Err(Unsupported::BlockSmoothing.into());
        }
        let mut px = [0u8; 64];
        for c in &mut comps {
            let q = c.quant_i16();
            for by in 0..c.nbh {
                for bx in 0..c.nbw {
                    let Some(blk) = c.coefs.get(by * c.bw + bx) else {
                        continue;
                    };
                    idct_islow(blk, &q, &mut px);
                    c.put_block(bx, by, &px);
                }
            }
        }
    }

    let out_len = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(3))
        .ok_or_else(alloc_err)?;
    let mut out = vec![0u8; out_len];
    let planes: Vec<Plane> = comps.into_iter().map(|c| c.plane).collect();
    color::to_rgb(&planes, &ratios, space, width, height, &mut out);
    Ok(RgbOutput {
        width: frame.width,
        height: frame.height,
        pixels: out,
    })
}

/// libjpeg-turbo's `smoothing_ok` (jdcoefct.c, `SAVED_COEFS` = 10): whether the
/// final output pass of a progressive image would use block smoothing.
fn smoothing_applies(comps: &[Comp]) -> bool {
    let mut useful = false;
    for c in comps {
        let Some(q) = &c.quant else {
            return false;
        };
        if [0usize, 1, 8, 16, 9, 2, 3, 10, 17, 24]
            .iter()
            .any(|&i| q[i] == 0)
        {
            return false;
        }
        if c.coef_bits[0] < 0 {
            return false;
        }
        if c.coef_bits[1..10].iter().any(|&b| b != 0) {
            useful = true;
        }
    }
    useful
}

fn table(t: &[Option<HuffTable>; 4], i: usize) -> Result<&HuffTable, JpegError> {
    t.get(i)
        .and_then(Option::as_ref)
        .ok_or(JpegError::Corrupt("missing Huffman table"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sequential,
    DcFirst,
    DcRefine,
    AcFirst,
    AcRefine,
}

fn decode_scan(
    reader: &mut BitReader<'_>,
    scan: &ScanHeader,
    frame: &Frame,
    tables: &Tables,
    comps: &mut [Comp],
    mcus_x: usize,
    mcus_y: usize,
) -> Result<(), JpegError> {
    let kind = if !frame.progressive {
        Kind::Sequential
    } else {
        let bad = if scan.ss == 0 {
            scan.se != 0
        } else {
            scan.ss > scan.se || scan.se > 63 || scan.comps.len() != 1
        } || (scan.ah != 0 && scan.al != scan.ah - 1)
            || scan.al > 13;
        if bad {
            return Err(JpegError::Corrupt("invalid progressive scan parameters"));
        }
        match (scan.ss == 0, scan.ah == 0) {
            (true, true) => Kind::DcFirst,
            (true, false) => Kind::DcRefine,
            (false, true) => Kind::AcFirst,
            (false, false) => Kind::AcRefine,
        }
    };

    // Latch quantisation tables, reset predictors, track coefficient progress.
    for &(ci, _, _) in &scan.comps {
        let c = comps
            .get_mut(ci)
            .ok_or(JpegError::Corrupt("bad component"))?;
        if c.quant.is_none() {
            c.quant = Some(
                tables.quant[c.tq & 3].ok_or(JpegError::Corrupt("missing quantization table"))?,
            );
        }
        c.seen = true;
        c.dc_pred = 0;
        if frame.progressive {
            for k in usize::from(scan.ss)..=usize::from(scan.se).min(63) {
                c.coef_bits[k] = i32::from(scan.al);
            }
        }
    }

    let single = scan.comps.len() == 1;
    let (sx, sy) = if single {
        let c = &comps[scan.comps[0].0];
        (c.nbw, c.nbh)
    } else {
        let blocks: usize = scan
            .comps
            .iter()
            .map(|&(ci, _, _)| comps[ci].h * comps[ci].v)
            .sum();
        if blocks > MAX_BLOCKS_IN_MCU {
            return Err(JpegError::Corrupt("too many blocks in MCU"));
        }
        (mcus_x, mcus_y)
    };

    // Resolve tables up front.
    let mut dc_tabs: Vec<Option<&HuffTable>> = Vec::with_capacity(scan.comps.len());
    let mut ac_tabs: Vec<Option<&HuffTable>> = Vec::with_capacity(scan.comps.len());
    for &(_, td, ta) in &scan.comps {
        let need_dc = matches!(kind, Kind::Sequential | Kind::DcFirst);
        let need_ac = matches!(kind, Kind::Sequential | Kind::AcFirst | Kind::AcRefine);
        dc_tabs.push(if need_dc {
            Some(table(&tables.dc, td)?)
        } else {
            None
        });
        ac_tabs.push(if need_ac {
            Some(table(&tables.ac, ta)?)
        } else {
            None
        });
    }
    let quants: Vec<[i16; 64]> = scan
        .comps
        .iter()
        .map(|&(ci, _, _)| comps[ci].quant_i16())
        .collect();

    let restart = usize::from(tables.restart_interval);
    let mut next_rst = 0u8;
    let mut eobrun = 0u32;
    let mut block = [0i16; 64];
    let mut px = [0u8; 64];
    let (ss, se, al) = (
        usize::from(scan.ss),
        usize::from(scan.se),
        u32::from(scan.al),
    );

    let mut mcu = 0usize;
    for my in 0..sy {
        for mx in 0..sx {
            if restart > 0 && mcu > 0 && mcu % restart == 0 {
                reader.restart(next_rst)?;
                next_rst = next_rst.wrapping_add(1) & 7;
                eobrun = 0;
                for &(ci, _, _) in &scan.comps {
                    comps[ci].dc_pred = 0;
                }
            }
            mcu += 1;
            for (si, &(ci, _, _)) in scan.comps.iter().enumerate() {
                let c = &mut comps[ci];
                let (nh, nv) = if single { (1, 1) } else { (c.h, c.v) };
                for by in 0..nv {
                    for bx in 0..nh {
                        let (gx, gy) = if single {
                            (mx, my)
                        } else {
                            (mx * c.h + bx, my * c.v + by)
                        };
                        match kind {
                            Kind::Sequential => {
                                let (Some(dc), Some(ac)) = (dc_tabs[si], ac_tabs[si]) else {
                                    return Err(JpegError::Corrupt("missing Huffman table"));
                                };
                                decode_block_sequential(
                                    reader,
                                    dc,
                                    ac,
                                    &mut c.dc_pred,
                                    &mut block,
                                )?;
                                if gx < c.nbw && gy < c.nbh {
                                    idct_islow(&block, &quants[si], &mut px);
                                    c.put_block(gx, gy, &px);
                                }
                            }
                            _ => {
                                let idx = gy * c.bw + gx;
                                let Some(blk) = c.coefs.get_mut(idx) else {
                                    return Err(JpegError::Corrupt("block out of range"));
                                };
                                match kind {
                                    Kind::DcFirst => {
                                        let Some(dc) = dc_tabs[si] else {
                                            return Err(JpegError::Corrupt(
                                                "missing Huffman table",
                                            ));
                                        };
                                        let s = reader.decode(dc)?;
                                        let diff = reader.receive_extend(u32::from(s));
                                        c.dc_pred = c.dc_pred.wrapping_add(diff);
                                        blk[0] = c.dc_pred.wrapping_shl(al) as i16;
                                    }
                                    Kind::DcRefine => {
                                        if reader.bit() {
                                            blk[0] |= 1i16 << al;
                                        }
                                    }
                                    Kind::AcFirst => {
                                        let Some(ac) = ac_tabs[si] else {
                                            return Err(JpegError::Corrupt(
                                                "missing Huffman table",
                                            ));
                                        };
                                        decode_ac_first(reader, ac, blk, ss, se, al, &mut eobrun)?;
                                    }
                                    _ => {
                                        let Some(ac) = ac_tabs[si] else {
                                            return Err(JpegError::Corrupt(
                                                "missing Huffman table",
                                            ));
                                        };
                                        decode_ac_refine(reader, ac, blk, ss, se, al, &mut eobrun)?;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if reader.overrun() {
                return Err(JpegError::Truncated);
            }
        }
    }
    Ok(())
}

/// One block of a sequential scan (jdhuff.c `decode_mcu`), in natural order.
#[inline]
fn decode_block_sequential(
    r: &mut BitReader<'_>,
    dc: &HuffTable,
    ac: &HuffTable,
    pred: &mut i32,
    block: &mut [i16; 64],
) -> Result<(), JpegError> {
    *block = [0; 64];
    let s = r.decode(dc)?;
    let diff = r.receive_extend(u32::from(s));
    *pred = pred.wrapping_add(diff);
    block[0] = *pred as i16;
    let mut k = 1usize;
    while k < 64 {
        let rs = r.decode(ac)?;
        let run = usize::from(rs >> 4);
        let s = u32::from(rs & 15);
        if s != 0 {
            k += run;
            let v = r.receive_extend(s);
            block[NATURAL_ORDER[k]] = v as i16;
        } else {
            if run != 15 {
                break;
            }
            k += 15;
        }
        k += 1;
    }
    Ok(())
}

/// jdphuff.c `decode_mcu_AC_first` for one block.
#[inline]
fn decode_ac_first(
    r: &mut BitReader<'_>,
    t: &HuffTable,
    blk: &mut [i16; 64],
    ss: usize,
    se: usize,
    al: u32,
    eobrun: &mut u32,
) -> Result<(), JpegError> {
    if *eobrun > 0 {
        *eobrun -= 1;
        return Ok(());
    }
    let mut k = ss;
    while k <= se {
        let rs = r.decode(t)?;
        let run = usize::from(rs >> 4);
        let s = u32::from(rs & 15);
        if s != 0 {
            k += run;
            let v = r.receive_extend(s);
            blk[NATURAL_ORDER[k]] = v.wrapping_shl(al) as i16;
        } else if run == 15 {
            k += 15;
        } else {
            let mut e = 1u32 << run;
            if run > 0 {
                e += r.bits(run as u32);
            }
            *eobrun = e - 1;
            break;
        }
        k += 1;
    }
    Ok(())
}

/// Appends a correction bit to an already-nonzero coefficient.
#[inline]
fn refine_nonzero(r: &mut BitReader<'_>, c: &mut i16, p1: i16, m1: i16) {
    if r.bit() && (*c & p1) == 0 {
        *c = if *c >= 0 {
            c.wrapping_add(p1)
        } else {
            c.wrapping_add(m1)
        };
    }
}

/// jdphuff.c `decode_mcu_AC_refine` for one block.
#[inline]
fn decode_ac_refine(
    r: &mut BitReader<'_>,
    t: &HuffTable,
    blk: &mut [i16; 64],
    ss: usize,
    se: usize,
    al: u32,
    eobrun: &mut u32,
) -> Result<(), JpegError> {
    let p1: i16 = 1i16.wrapping_shl(al);
    let m1: i16 = (-1i16).wrapping_shl(al);
    let mut k = ss;
    if *eobrun == 0 {
        while k <= se {
            let rs = r.decode(t)?;
            let mut run = i32::from(rs >> 4);
            let s = rs & 15;
            let mut val = 0i16;
            if s != 0 {
                // The size of a newly nonzero coefficient should always be 1;
                // libjpeg only warns otherwise.
                val = if r.bit() { p1 } else { m1 };
            } else if run != 15 {
                let mut e = 1u32 << run;
                if run > 0 {
                    e += r.bits(run as u32);
                }
                *eobrun = e;
                break;
            }
            // Skip over already-nonzero coefficients (refining them) and
            // `run` zero coefficients.
            loop {
                let c = &mut blk[NATURAL_ORDER[k]];
                if *c != 0 {
                    refine_nonzero(r, c, p1, m1);
                } else {
                    run -= 1;
                    if run < 0 {
                        break;
                    }
                }
                k += 1;
                if k > se {
                    break;
                }
            }
            if val != 0 {
                blk[NATURAL_ORDER[k]] = val;
            }
            k += 1;
        }
    }
    if *eobrun > 0 {
        while k <= se {
            let c = &mut blk[NATURAL_ORDER[k]];
            if *c != 0 {
                refine_nonzero(r, c, p1, m1);
            }
            k += 1;
        }
        *eobrun -= 1;
    }
    Ok(())
}
