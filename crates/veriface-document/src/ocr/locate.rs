//! Finding the MRZ band in a document photo without OCR: the MRZ is two or
//! three long, evenly spaced lines of dark monospace characters, so after a
//! local-contrast binarisation and a horizontal smear that joins each
//! line's characters, its lines are the widest, flattest blobs of ink.

use image::GrayImage;

/// A rectangle in pixels, `x..x+w`, `y..y+h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left.
    pub x: u32,
    /// Top.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

impl Rect {
    fn bottom(self) -> u32 {
        self.y + self.h
    }

    fn right(self) -> u32 {
        self.x + self.w
    }

    fn union(self, o: Rect) -> Rect {
        let x = self.x.min(o.x);
        let y = self.y.min(o.y);
        Rect {
            x,
            y,
            w: self.right().max(o.right()) - x,
            h: self.bottom().max(o.bottom()) - y,
        }
    }

    /// The rectangle scaled by `s` and grown by `mx`, `my` on each side,
    /// clipped to `w` x `h`.
    pub(crate) fn scaled_grown(self, s: f32, mx: f32, my: f32, w: u32, h: u32) -> Rect {
        let f = |v: u32| v as f32 * s;
        let x0 = (f(self.x) - mx).max(0.0) as u32;
        let y0 = (f(self.y) - my).max(0.0) as u32;
        let x1 = ((f(self.right()) + mx) as u32).min(w);
        let y1 = ((f(self.bottom()) + my) as u32).min(h);
        Rect {
            x: x0,
            y: y0,
            w: x1.saturating_sub(x0),
            h: y1.saturating_sub(y0),
        }
    }
}

/// A candidate MRZ band: the union of its text lines, and their mean
/// height (for choosing the OCR scale).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    /// Where.
    pub rect: Rect,
    /// Mean height of the lines in it.
    pub line_height: f32,
    /// How many line blobs it joins.
    pub lines: usize,
}

/// Ink mask: pixels darker than their neighbourhood's mean by a margin.
/// Dark print on a light, possibly patterned and unevenly lit background.
fn ink_mask(g: &GrayImage, radius: u32) -> Vec<bool> {
    let (w, h) = (g.width() as usize, g.height() as usize);
    // Integral image with a zero row and column.
    let mut integral = vec![0u64; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0u64;
        for x in 0..w {
            row += u64::from(g.as_raw()[y * w + x]);
            integral[(y + 1) * (w + 1) + x + 1] = integral[y * (w + 1) + x + 1] + row;
        }
    }
    let r = radius as usize;
    let mut mask = vec![false; w * h];
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
            let sum = integral[y1 * (w + 1) + x1] + integral[y0 * (w + 1) + x0]
                - integral[y0 * (w + 1) + x1]
                - integral[y1 * (w + 1) + x0];
            let n = ((y1 - y0) * (x1 - x0)) as u64;
            let mean = sum as f32 / n as f32;
            let v = f32::from(g.as_raw()[y * w + x]);
            mask[y * w + x] = v < mean * 0.82 - 4.0;
        }
    }
    mask
}

/// Fills horizontal gaps of at most `gap` pixels between ink.
fn smear(mask: &mut [bool], w: usize, gap: usize) {
    for row in mask.chunks_mut(w) {
        let mut last: Option<usize> = None;
        for x in 0..w {
            if row[x] {
                if let Some(l) = last {
                    if x - l > 1 && x - l <= gap + 1 {
                        for v in &mut row[l + 1..x] {
                            *v = true;
                        }
                    }
                }
                last = Some(x);
            }
        }
    }
}

/// Bounding boxes of the 4-connected components of `mask`.
fn components(mask: &[bool], w: usize, h: usize) -> Vec<Rect> {
    let mut seen = vec![false; mask.len()];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
            let mut visit = |j: usize| {
                if mask[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
        let r = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        out.push(Rect {
            x: r(x0),
            y: r(y0),
            w: r(x1 - x0 + 1),
            h: r(y1 - y0 + 1),
        });
    }
    out
}

/// Extends a band through blobs on its rows that start within three line
/// heights of either end: the faint filler runs that end most MRZ lines
/// often break off their line's blob, and a band cut short loses whole
/// characters.
fn grow_sideways(mut band: Rect, line_height: f32, blobs: &[Rect]) -> Rect {
    let reach = (3.0 * line_height) as u32;
    loop {
        let mut grown = band;
        for b in blobs {
            let top = b.y.max(band.y);
            let bottom = b.bottom().min(band.bottom());
            let on_rows =
                bottom > top && (bottom - top) * 2 >= b.h && b.h as f32 <= 2.0 * line_height;
            if !on_rows {
                continue;
            }
            if b.x <= grown.right() + reach && b.right() > grown.right() {
                grown.w = b.right() - grown.x;
            }
            if b.right() + reach >= grown.x && b.x < grown.x {
                grown.w += grown.x - b.x;
                grown.x = b.x;
            }
        }
        if grown == band {
            return band;
        }
        band = grown;
    }
}

/// Candidate MRZ bands in `g`, most MRZ-like first: two or three stacked
/// lines with the same left and right ends (fillers run every MRZ line to
/// its full width), low on the page, wide. `g` should be about 800 px
/// wide: the filters are sized in proportion to it.
pub fn find_bands(g: &GrayImage) -> Vec<Band> {
    let (w, h) = (g.width() as usize, g.height() as usize);
    if w < 40 || h < 20 {
        return Vec::new();
    }
    let mut mask = ink_mask(g, (w / 40).max(6) as u32);
    smear(&mut mask, w, (w / 70).max(3));
    let blobs = components(&mask, w, h);
    let mut lines: Vec<Rect> = blobs
        .iter()
        .copied()
        .filter(|r| r.h >= 4 && r.w as usize >= w / 7 && r.w >= 10 * r.h && (r.h as usize) < h / 5)
        .collect();
    lines.sort_by_key(|r| r.y);
    let aligned = |a: &Rect, b: &Rect| {
        // Left ends agree closely; right ends much less so, because a
        // faint trailing filler run may not join its line's blob (the OCR
        // and the check digits reject any wrong grouping).
        let tol = 0.05 * a.w.max(b.w) as f32 + 3.0;
        let similar_height = (b.h as f32 / a.h as f32) > 0.55 && (b.h as f32 / a.h as f32) < 1.8;
        (a.x.abs_diff(b.x) as f32) <= tol
            && (a.right().abs_diff(b.right()) as f32) <= 0.5 * a.w.max(b.w) as f32
            && similar_height
    };
    let mut bands: Vec<Band> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        // Chain aligned lines downwards from this one, each within 2.5
        // line heights of the previous.
        let mut rect = *l;
        let mut heights = vec![l.h as f32];
        let mut last = *l;
        for o in &lines[i + 1..] {
            if heights.len() == 3 {
                break;
            }
            let gap = o.y.saturating_sub(last.bottom()) as f32;
            if aligned(l, o) && o.y >= last.bottom() && gap <= 2.5 * last.h as f32 {
                rect = rect.union(*o);
                heights.push(o.h as f32);
                last = *o;
            }
        }
        let line_height = heights.iter().sum::<f32>() / heights.len() as f32;
        let rect = grow_sideways(rect, line_height, &blobs);
        let band = Band {
            rect,
            line_height,
            lines: heights.len(),
        };
        if !bands.iter().any(|b| {
            b.rect.y <= band.rect.y
                && b.rect.bottom() >= band.rect.bottom()
                && b.rect.x == band.rect.x
        }) {
            bands.push(band);
        }
    }
    let score = |b: &Band| {
        let lines = if b.lines >= 2 { 3.0 } else { 0.0 };
        let low = b.rect.bottom() as f32 / h as f32;
        let wide = b.rect.w as f32 / w as f32;
        lines + low + wide
    };
    bands.sort_by(|a, b| score(b).total_cmp(&score(a)));
    bands
}
