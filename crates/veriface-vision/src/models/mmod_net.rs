//! The MMOD face detector's network (`mmod_human_face_detector.dat`, spec:
//! `dlib-models.md` section 6.1): seven convolutions mapping a normalised RGB
//! tensor to a one-channel score map at 1/8 resolution.
//!
//! The detector runs this on tiled image pyramids of up to ~8000x10000
//! pixels, so the forward pass never holds a whole-image intermediate
//! tensor wider than the input's 1/8 scale. It runs in two phases, each over
//! horizontal strips processed in parallel with rayon:
//!
//! 1. the three stride-2 unpadded convs, strip by strip, into the layer-3
//!    map (32 channels at 1/8 scale): an unpadded conv needs only the input
//!    rows under its windows, so strips are exact;
//! 2. the four stride-1 "same" convs (paddings 2, 2, 2, 4) on strips of the
//!    layer-3 map extended by a halo of 10 rows on each side, run unpadded
//!    at a strip's inner edges (each conv shrinks the strip toward its own
//!    rows) and zero-padded only at the map's edges, as a whole-tensor run
//!    pads them. Results equal a whole-tensor run up to summation order.
//!
//! [`MmodNet::forward_cells`] restricts both phases to the cells a caller
//! needs, the same way; [`MmodNet::forward_cells_cached`] also keeps the
//! phase-1 results in a [`Layer3Cache`], so that overlapping crops of one
//! tensor compute each layer-3 cell once.

use rayon::prelude::*;

use crate::dlib::dnn::{self, Affine, Conv, InputLayer, Layer, Loss, MmodOptions};
use crate::dlib::serialize::FormatError;
use crate::nn::conv::{conv2d, Epilogue};
use crate::nn::tensor::Tensor;

/// f32 values a phase-1 strip's input may take (16 MiB): bounds the
/// per-thread working set whatever the image size.
pub const STRIP_BUDGET_FLOATS: usize = 1 << 22;

/// Number of leading stride-2 unpadded convs (phase 1).
const DOWN_LAYERS: usize = 3;

/// The detector network.
#[derive(Debug, Clone)]
pub struct MmodNet {
    options: MmodOptions,
    means: [f32; 3],
    padding: usize,
    outer_padding: usize,
    /// Each conv with its (folded batch-norm) affine; the affine is followed
    /// by a relu. The last conv has neither.
    layers: Vec<(Conv, Option<Affine>)>,
    /// The "same" convs of phase 2 without their padding, for
    /// [`MmodNet::forward_cells`], which pads only at the map's edges.
    valid: Vec<Conv>,
}

fn topology_error(reason: String) -> FormatError {
    FormatError {
        offset: 0,
        reason: format!("MMOD network topology: {reason}").into(),
    }
}

impl MmodNet {
    /// Loads and validates the network from the model file's bytes.
    ///
    /// # Errors
    ///
    /// A [`FormatError`] when the bytes are not a dlib DNN file or the chain
    /// is not the 7-conv network of section 6.1.
    pub fn from_bytes(bytes: &[u8]) -> Result<MmodNet, FormatError> {
        let file = dnn::parse(bytes)?;
        let Loss::Mmod(options) = file.loss else {
            return Err(topology_error("loss is not loss_mmod_".into()));
        };
        let InputLayer::RgbImagePyramid {
            means,
            padding,
            outer_padding,
        } = file.input
        else {
            return Err(topology_error("input is not an image pyramid".into()));
        };
        let mut layers = Vec::new();
        let mut it = file.layers.into_iter().peekable();
        while let Some(layer) = it.next() {
            let Layer::Conv(conv) = layer else {
                return Err(topology_error(format!("expected a conv, found {layer:?}")));
            };
            let affine = match it.next_if(|l| matches!(l, Layer::Affine(_))) {
                Some(Layer::Affine(a)) => {
                    if it.next() != Some(Layer::Relu) {
                        return Err(topology_error("affine not followed by relu".into()));
                    }
                    Some(a)
                }
                _ => None,
            };
            layers.push((conv, affine));
        }
        // (filters, kernel, stride, pad) of section 6.1.
        let expected = [
            (16, 5, 2, 0),
            (32, 5, 2, 0),
            (32, 5, 2, 0),
            (45, 5, 1, 2),
            (45, 5, 1, 2),
            (45, 5, 1, 2),
            (1, 9, 1, 4),
        ];
        let mut channels = 3;
        if layers.len() != expected.len() {
            return Err(topology_error(format!(
                "{} convs, expected 7",
                layers.len()
            )));
        }
        for (i, ((conv, affine), &(f, k, s, p))) in layers.iter().zip(&expected).enumerate() {
            let square = conv.kernel_h == conv.kernel_w
                && conv.stride_y == conv.stride_x
                && conv.pad_y == conv.pad_x;
            let has_affine = i + 1 < expected.len();
            if !square
                || (
                    conv.in_channels,
                    conv.filters,
                    conv.kernel_h,
                    conv.stride_y,
                    conv.pad_y,
                ) != (channels, f, k, s, p)
                || affine.is_some() != has_affine
                || affine.as_ref().is_some_and(|a| a.gamma.len() != f)
            {
                return Err(topology_error(format!(
                    "conv {i} does not match section 6.1"
                )));
            }
            channels = f;
        }
        let valid = layers[DOWN_LAYERS..]
            .iter()
            .map(|(conv, _)| Conv {
                pad_y: 0,
                pad_x: 0,
                ..conv.clone()
            })
            .collect();
        Ok(MmodNet {
            options,
            means,
            padding,
            outer_padding,
            layers,
            valid,
        })
    }

    /// Detector window size `(width, height)` in pyramid pixels (80x80).
    pub fn window_size(&self) -> (usize, usize) {
        (self.options.window_width, self.options.window_height)
    }

    /// Non-max-suppression IoU threshold (0.3382761351109955).
    pub fn nms_iou_thresh(&self) -> f64 {
        self.options.nms_iou_thresh
    }

    /// All `mmod_options` from the file.
    pub fn options(&self) -> &MmodOptions {
        &self.options
    }

    /// R, G, B means subtracted before scaling by 1/256.
    pub fn means(&self) -> [f32; 3] {
        self.means
    }

    /// Pyramid padding between tiles and around the tiled image
    /// `(padding, outer_padding)` = (10, 11).
    pub fn pyramid_padding(&self) -> (usize, usize) {
        (self.padding, self.outer_padding)
    }

    /// The score map (1 x H3 x W3) of a normalised 3-plane tensor, in
    /// parallel strips sized to bound memory: each phase-1 strip reads about
    /// [`STRIP_BUDGET_FLOATS`] input values, each phase-2 strip holds about
    /// twice that many 45-channel values, and the 32-channel 1/8-scale
    /// layer-3 map (1/6 of the input's size) is held whole.
    pub fn forward(&self, input: &Tensor) -> Tensor {
        let (down, same) = self.strip_rows(input);
        self.forward_in_strips(input, down, same)
    }

    /// Strip heights, in output rows, for phases 1 and 2: at least one
    /// strip per thread (more strips cost more overlap), each within
    /// [`STRIP_BUDGET_FLOATS`].
    fn strip_rows(&self, input: &Tensor) -> (usize, usize) {
        let threads = rayon::current_num_threads().max(1);
        let h3 = self.layer3_size(input.h);
        let per_thread = h3.div_ceil(threads).max(8);
        let down = (STRIP_BUDGET_FLOATS / (3 * 8 * input.w).max(1))
            .max(8)
            .min(per_thread);
        let same = (2 * STRIP_BUDGET_FLOATS / (45 * (input.w / 8).max(1)))
            .max(32)
            .min(per_thread);
        (down, same)
    }

    /// [`MmodNet::forward`] with explicit strip heights, in output rows, for
    /// phase 1 (`down_rows`) and phase 2 (`same_rows`). Any heights give the
    /// same map; they only trade memory for overlap.
    ///
    /// # Panics
    ///
    /// If `input` does not have 3 channels.
    pub fn forward_in_strips(&self, input: &Tensor, down_rows: usize, same_rows: usize) -> Tensor {
        let (h3, w3) = self.output_size(input.h, input.w);
        self.cells_in_strips(input, (0..h3, 0..w3), down_rows, same_rows, None)
    }

    /// The score map's size `(rows, cols)` for an input of `h x w`.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        (self.layer3_size(h), self.layer3_size(w))
    }

    /// The score map of `input` computed only on the cells `need` (rows
    /// `need.0`, columns `need.1`); every other cell is `-inf`. The cells in
    /// `need` get [`MmodNet::forward`]'s values, up to summation order
    /// (planes narrower than the direct kernel's minimum take the GEMM
    /// route; differences of a few 1e-7).
    ///
    /// A crop of dlib's tensor is scored for the cells far enough from its
    /// cut edges to see their whole receptive field; `forward` spends up to
    /// half of its phase-2 work on the rest (each "same" conv computes a
    /// border the next one's padding corrupts). Here phase 1 computes only
    /// the layer-3 cells under `need` and its 10-cell phase-2 halo, and the
    /// phase-2 convs run unpadded, shrinking toward `need`, except at the
    /// map's own edges when the halo reaches them, where they are padded
    /// with zeros exactly as `forward` pads them.
    ///
    /// # Panics
    ///
    /// If `input` does not have 3 channels.
    pub fn forward_cells(
        &self,
        input: &Tensor,
        need: (std::ops::Range<usize>, std::ops::Range<usize>),
    ) -> Tensor {
        let (down, same) = self.strip_rows(input);
        self.cells_in_strips(input, need, down, same, None)
    }

    /// [`MmodNet::forward_cells`] for a crop of a larger tensor whose
    /// phase-1 results are kept in `cache` between calls: `input` is the
    /// part of that tensor whose top-left pixel is pixel `(8 * origin.0, 8 *
    /// origin.1)` of it. A layer-3 cell reads only the 29x29 input pixels
    /// under it (the phase-1 convs are unpadded), so it has the same value in
    /// every crop that holds them, and cells an earlier call computed are
    /// taken from the cache rather than computed again. The caller must
    /// give every call the same tensor's values (up to summation order, as
    /// `forward_cells`: a cell computed in a narrow strip takes the GEMM
    /// route).
    ///
    /// # Panics
    ///
    /// If `input` does not have 3 channels.
    pub fn forward_cells_cached(
        &self,
        input: &Tensor,
        need: (std::ops::Range<usize>, std::ops::Range<usize>),
        origin: (i64, i64),
        cache: &mut Layer3Cache,
    ) -> Tensor {
        let (down, same) = self.strip_rows(input);
        self.cells_in_strips(input, need, down, same, Some((cache, origin)))
    }

    /// [`MmodNet::forward_cells`] with explicit strip heights (in layer-3
    /// rows for phase 1, score-map rows for phase 2), taking and keeping
    /// phase-1 results in `cache` when one is given (see
    /// [`MmodNet::forward_cells_cached`]). A strip's inner edges are handled
    /// as `need`'s are: unpadded convs over the halo.
    fn cells_in_strips(
        &self,
        input: &Tensor,
        need: (std::ops::Range<usize>, std::ops::Range<usize>),
        down_rows: usize,
        same_rows: usize,
        cache: Option<(&mut Layer3Cache, (i64, i64))>,
    ) -> Tensor {
        assert_eq!(input.c, 3, "MMOD input channels");
        let (h3, w3) = self.output_size(input.h, input.w);
        let mut out = Tensor {
            c: 1,
            h: h3,
            w: w3,
            data: vec![f32::NEG_INFINITY; h3 * w3],
        };
        let (rows, cols) = (
            need.0.start..need.0.end.min(h3),
            need.1.start..need.1.end.min(w3),
        );
        if rows.is_empty() || cols.is_empty() {
            return out;
        }
        let halo: usize = self.layers[DOWN_LAYERS..]
            .iter()
            .map(|(c, _)| c.pad_y)
            .sum();
        // Layer-3 cells to compute: `need` and its halo, inside the map; a
        // side is padded (as `forward` pads it) when the halo reaches the
        // map's edge.
        let span = |r: &std::ops::Range<usize>, n: usize| {
            let pad_lo = r.start < halo;
            let pad_hi = r.end + halo > n;
            let lo = if pad_lo { 0 } else { r.start - halo };
            let hi = if pad_hi { n } else { r.end + halo };
            (lo..hi, pad_lo, pad_hi)
        };
        let (mrows, _, _) = span(&rows, h3);
        let (mcols, pad_left, pad_right) = span(&cols, w3);
        let input_span = |r: &std::ops::Range<usize>| {
            let (mut lo, mut hi) = (r.start, r.end);
            for (conv, _) in self.layers[..DOWN_LAYERS].iter().rev() {
                (lo, hi) = (lo * conv.stride_y, (hi - 1) * conv.stride_y + conv.kernel_h);
            }
            lo..hi
        };
        let strips = |r: std::ops::Range<usize>, n: usize| -> Vec<std::ops::Range<usize>> {
            r.clone()
                .step_by(n.max(1))
                .map(|a| a..(a + n.max(1)).min(r.end))
                .collect()
        };
        // Phase 1: the layer-3 block `mrows x mcols`, in row strips.
        let phase1 = |r: &std::ops::Range<usize>, c: &std::ops::Range<usize>| {
            let mut x = block_of(input, input_span(r), input_span(c));
            for layer in &self.layers[..DOWN_LAYERS] {
                x = run(layer, &x);
            }
            x
        };
        let map3 = match cache {
            None => {
                let parts: Vec<Tensor> = strips(mrows.clone(), down_rows)
                    .par_iter()
                    .map(|r| phase1(r, &mcols))
                    .collect();
                stack_rows(&parts)
            }
            Some((cache, (oy, ox))) => {
                // Only the cells no earlier call computed: per row, the span
                // from its first to its last missing cell; rows with the
                // same span make one block (an overlap with earlier crops
                // leaves a few rectangles).
                let at = |y: usize, x: usize| (oy + y as i64, ox + x as i64);
                let mut blocks: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> = Vec::new();
                for y in mrows.clone() {
                    let Some(span) = cache.missing_span((oy, ox), y, &mcols) else {
                        continue;
                    };
                    match blocks.last_mut() {
                        Some((r, c)) if r.end == y && *c == span => r.end = y + 1,
                        _ => blocks.push((y..y + 1, span)),
                    }
                }
                let pieces: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> = blocks
                    .into_iter()
                    .flat_map(|(r, c)| {
                        strips(r, down_rows)
                            .into_iter()
                            .map(move |s| (s, c.clone()))
                    })
                    .collect();
                let computed: Vec<(usize, usize, Tensor)> = pieces
                    .par_iter()
                    .map(|(r, c)| (r.start, c.start, phase1(r, c)))
                    .collect();
                for (y, x, t) in &computed {
                    cache.store(at(*y, *x), t);
                }
                drop(computed);
                let channels = self.layers[DOWN_LAYERS - 1].0.filters;
                cache.block(
                    at(mrows.start, mcols.start),
                    channels,
                    mrows.len(),
                    mcols.len(),
                )
            }
        };
        // Phase 2: strips of `need`'s rows, unpadded but at the map's edges.
        let outs: Vec<(std::ops::Range<usize>, usize, Tensor)> = strips(rows.clone(), same_rows)
            .par_iter()
            .map(|r| {
                let (srows, pad_top, pad_bottom) = span(r, h3);
                let mut x = block_of(
                    &map3,
                    srows.start - mrows.start..srows.end - mrows.start,
                    0..map3.w,
                );
                for ((conv, affine), valid) in self.layers[DOWN_LAYERS..].iter().zip(&self.valid) {
                    let p = conv.pad_y;
                    let pads =
                        [pad_top, pad_bottom, pad_left, pad_right].map(|b| if b { p } else { 0 });
                    x = if pads == [0; 4] {
                        run_conv(valid, affine.as_ref(), &x)
                    } else {
                        run_conv(valid, affine.as_ref(), &pad(&x, pads))
                    };
                }
                // The strip's first row is map row 0 when padded, else r.start.
                let first = if pad_top { 0 } else { r.start };
                (r.clone(), first, x)
            })
            .collect();
        // The strips' columns start at map column 0 when padded, else at
        // `need`'s first column.
        let c0 = if pad_left { 0 } else { cols.start };
        for (r, first, x) in outs {
            for y in r {
                let src = &x.data[(y - first) * x.w..(y - first + 1) * x.w];
                let dst = &mut out.data[y * w3..(y + 1) * w3];
                dst[cols.clone()].copy_from_slice(&src[cols.start - c0..cols.end - c0]);
            }
        }
        out
    }

    /// Rows of the layer-3 map (= of the score map) for `h` input rows.
    fn layer3_size(&self, h: usize) -> usize {
        self.layers[..DOWN_LAYERS].iter().fold(h, |h, (c, _)| {
            crate::nn::conv::out_size(h, c.kernel_h, c.stride_y, c.pad_y)
        })
    }
}

/// Side of a [`Layer3Cache`] block, in layer-3 cells.
const CACHE_BLOCK: usize = 16;

/// The phase-1 results (the 32-channel layer-3 map) of one large tensor,
/// kept across [`MmodNet::forward_cells_cached`] calls that score
/// overlapping crops of it, addressed by layer-3 cell of the whole tensor
/// and stored in blocks of 16x16 cells that exist only where a call
/// computed something.
#[derive(Debug, Default)]
pub struct Layer3Cache {
    blocks: std::collections::HashMap<(i64, i64), CacheBlock>,
}

#[derive(Debug)]
struct CacheBlock {
    /// `[channel][row][column]` of the block's cells.
    values: Vec<f32>,
    /// Which cells hold a value.
    done: Vec<bool>,
}

impl Layer3Cache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Layer-3 cells held.
    pub fn cells(&self) -> usize {
        self.blocks
            .values()
            .map(|b| b.done.iter().filter(|&&d| d).count())
            .sum()
    }

    /// The cells `x0..x0 + w` of row `y` as runs inside one block each:
    /// `(block key, index of the run's first cell in the block, offset of
    /// the run in the row, length)`, so that callers hash once per run and
    /// copy slices.
    fn runs(y: i64, x0: i64, w: usize) -> impl Iterator<Item = ((i64, i64), usize, usize, usize)> {
        let b = CACHE_BLOCK as i64;
        let mut dx = 0usize;
        std::iter::from_fn(move || {
            if dx >= w {
                return None;
            }
            let x = x0 + dx as i64;
            let n = ((b - x.rem_euclid(b)) as usize).min(w - dx);
            let key = (y.div_euclid(b), x.div_euclid(b));
            let at = (y.rem_euclid(b) * b + x.rem_euclid(b)) as usize;
            let run = (key, at, dx, n);
            dx += n;
            Some(run)
        })
    }

    /// The columns of `cols` in row `y` (cells `(oy + y, ox + x)`) from the
    /// first to the last one not held, or `None` when all are held.
    fn missing_span(
        &self,
        (oy, ox): (i64, i64),
        y: usize,
        cols: &std::ops::Range<usize>,
    ) -> Option<std::ops::Range<usize>> {
        let (mut first, mut last) = (None, 0);
        for (key, at, dx, n) in Self::runs(oy + y as i64, ox + cols.start as i64, cols.len()) {
            let done = self.blocks.get(&key).map(|b| &b.done[at..at + n]);
            for (i, held) in (0..n).map(|i| done.is_some_and(|d| d[i])).enumerate() {
                if !held {
                    let x = cols.start + dx + i;
                    first.get_or_insert(x);
                    last = x;
                }
            }
        }
        first.map(|f| f..last + 1)
    }

    /// Keeps `t` (channels x rows x columns of layer-3 cells) as the cells
    /// from `origin` on.
    fn store(&mut self, origin: (i64, i64), t: &Tensor) {
        let plane = CACHE_BLOCK * CACHE_BLOCK;
        for y in 0..t.h {
            for (key, at, dx, n) in Self::runs(origin.0 + y as i64, origin.1, t.w) {
                let block = self.blocks.entry(key).or_insert_with(|| CacheBlock {
                    values: vec![0.0; t.c * plane],
                    done: vec![false; plane],
                });
                for c in 0..t.c {
                    let src = (c * t.h + y) * t.w + dx;
                    block.values[c * plane + at..c * plane + at + n]
                        .copy_from_slice(&t.data[src..src + n]);
                }
                block.done[at..at + n].fill(true);
            }
        }
    }

    /// The `channels x h x w` cells from `origin` on, all of which must be
    /// held.
    fn block(&self, origin: (i64, i64), channels: usize, h: usize, w: usize) -> Tensor {
        let mut out = Tensor::zeros(channels, h, w);
        let plane = CACHE_BLOCK * CACHE_BLOCK;
        for y in 0..h {
            for (key, at, dx, n) in Self::runs(origin.0 + y as i64, origin.1, w) {
                let Some(block) = self.blocks.get(&key) else {
                    debug_assert!(false, "layer-3 cells not cached");
                    continue;
                };
                debug_assert!(block.done[at..at + n].iter().all(|&d| d));
                for c in 0..channels {
                    let dst = (c * h + y) * w + dx;
                    out.data[dst..dst + n]
                        .copy_from_slice(&block.values[c * plane + at..c * plane + at + n]);
                }
            }
        }
        out
    }
}

fn run((conv, affine): &(Conv, Option<Affine>), x: &Tensor) -> Tensor {
    run_conv(conv, affine.as_ref(), x)
}

/// One conv with its affine and relu (the last conv has neither).
fn run_conv(conv: &Conv, affine: Option<&Affine>, x: &Tensor) -> Tensor {
    conv2d(
        x,
        conv,
        Epilogue {
            affine,
            relu: affine.is_some(),
        },
    )
}

/// A copy of rows `rows` and columns `cols` of every channel (clamped to
/// the tensor).
fn block_of(t: &Tensor, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>) -> Tensor {
    let (r1, c1) = (rows.end.min(t.h), cols.end.min(t.w));
    let (r0, c0) = (rows.start.min(r1), cols.start.min(c1));
    let (h, w) = (r1 - r0, c1 - c0);
    let mut out = Tensor::zeros(t.c, h, w);
    for c in 0..t.c {
        let src = t.plane(c);
        for (y, dst) in out.plane_mut(c).chunks_exact_mut(w.max(1)).enumerate() {
            let s = (r0 + y) * t.w + c0;
            dst.copy_from_slice(&src[s..s + w]);
        }
    }
    out
}

/// `t` with `[top, bottom, left, right]` rows and columns of zeros added.
fn pad(t: &Tensor, [top, bottom, left, right]: [usize; 4]) -> Tensor {
    let (h, w) = (t.h + top + bottom, t.w + left + right);
    let mut out = Tensor::zeros(t.c, h, w);
    for c in 0..t.c {
        let src = t.plane(c);
        let dst = out.plane_mut(c);
        for y in 0..t.h {
            let d = (top + y) * w + left;
            dst[d..d + t.w].copy_from_slice(&src[y * t.w..(y + 1) * t.w]);
        }
    }
    out
}

/// Concatenates tensors of equal channels and widths along rows.
fn stack_rows(parts: &[Tensor]) -> Tensor {
    let (c, w) = parts.first().map_or((1, 0), |p| (p.c, p.w));
    let h = parts.iter().map(|p| p.h).sum();
    let mut out = Tensor::zeros(c, h, w);
    let mut y = 0;
    for p in parts {
        for ch in 0..c {
            let start = (ch * h + y) * w;
            out.data[start..start + p.h * w].copy_from_slice(p.plane(ch));
        }
        y += p.h;
    }
    out
}
