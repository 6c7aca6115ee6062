//! The largest face only: the fast detector's answer to "which face is the
//! largest?", scoring coarse pyramid levels first and finer ones only where
//! they could change that answer.
//!
//! A compare needs one face per photo, the largest, and in a KYC photo that
//! face is large: a selfie's face spans 30-70% of the frame. dlib's pyramid
//! level `i` finds boxes about `39.5 * 1.2^i` px wide, so large faces live on
//! the coarse levels, whose tiles are small. This search scores the tiles of
//! the coarse levels first (whole tiles, as [`super::fast`] does) and goes
//! down a stage of levels only while no face is certain to be the largest.
//!
//! A face found on level `L` is the answer only once it is certain to survive
//! dlib's non-max suppression and no larger one can exist. dlib's overlap
//! test (intersection over the bounding box, above 0.338) can only join two
//! boxes at most three levels apart (four levels: `(1/1.2)^8 = 0.23`), and
//! only when their centres are close; so the finer levels are scored only in
//! small windows around the detections whose fate is still open (with the
//! network's receptive field as margin, so every score is dlib's). Statuses
//! follow dlib's greedy order: a detection is kept when every higher-scoring
//! detection that overlaps it is known and suppressed, suppressed when one of
//! them is known and kept, and open otherwise.
//!
//! With [`LargestSearch::Exact`] the result is exactly the largest face (by
//! clipped area, ties to the higher score: [`pick_largest`]) of
//! [`super::fast::detect_fast`]'s output; the golden tests check that on
//! every image.
//!
//! [`LargestSearch::Screened`], the default, drops the proof for speed:
//! it screens every other level of the same stages, each tile in its own
//! window with a small context (approximate scores), then scores dlib-exact
//! windows around the candidate faces, largest first, and returns the
//! largest face dlib's suppression keeps among those exact detections
//! (`docs/engine.md`, "Screened largest face").
//!
//! The exact search's saving depends on the face: a face filling a third of
//! a 1 MP photo is found from the tiles of levels 10 and up (a tenth of the
//! pyramid) plus three small windows; a photo without a face costs what the
//! fast detector costs.

use std::collections::HashSet;

use image::RgbImage;
use rayon::prelude::*;

use crate::geometry::Rect;
use crate::imgproc::pyramid::rect_down;
use crate::models::mmod_net::{Layer3Cache, MmodNet};
use crate::nn::tensor::Tensor;

use super::fast::{
    effective_min_face, first_level, level_chain, pyramid_up_size, scored_regions, MARGIN,
};
use super::layout::PyramidLayout;
use super::nms::{candidate_cells, overlaps, suppress, Scored, OUTPUT_OFFSET, OUTPUT_STRIDE};
use super::pipeline::{detect_reference, RawDetection};

/// A cell's score is dlib's when its tensor point is at least this far from
/// every edge of the crop that is not the tensor's own edge: half the
/// network's 189-px receptive field, rounded up.
const HALF_FIELD: i64 = 96;

/// The first stage scores the levels that hold faces of at least this share
/// of the image's shorter side (the median golden face is 37%).
const FIRST_STAGE_FACE_FRACTION: f64 = 0.4;

/// Levels added to the whole-tile search per stage.
const STAGE_LEVELS: usize = 2;

/// Two detections further apart than this many levels never overlap in
/// dlib's NMS: even nested, the smaller covers `(1/1.2)^(2*4) = 0.23` of the
/// larger's box, under the 0.338 threshold; three levels apart it can cover
/// 0.335-0.34 with rounding, so three still count.
const NMS_LEVEL_REACH: usize = 3;

/// Rounds of local scoring before the search gives up and scores every
/// level (a guard; golden images need one or two).
const MAX_LOCAL_ROUNDS: usize = 16;

/// The screen's context around the tiles it scores, in tensor pixels (the
/// exact search uses [`MARGIN`], 112): its scores are approximate (off by up
/// to ~2 near tile edges with 24) but cost about half as much. With a window
/// per tile, 16 screens 1.4 ms faster than 24 on the benchmark photos and
/// finds the same candidates; 8 finds spurious ones whose refines cost more
/// than it saves.
const SCREEN_MARGIN: i64 = 16;

/// The screen keeps candidates scoring up to this much below the threshold,
/// so that a face whose approximate score dips under it is still refined.
const SCREEN_SLACK: f32 = 1.0;

/// The screen scores every this many levels of a stage, from its lowest:
/// a face one level (1.2x) away from a screened level still scores above
/// the threshold less [`SCREEN_SLACK`] there, and the refine's first
/// windows (the candidate's level +-1) reach its own. Every golden photo and
/// 285 transformed variants give the exact search's face with 2 and with 3;
/// 2 leaves every unscreened level between two screened ones.
const SCREEN_LEVEL_STEP: usize = 2;

/// The screen scores two tiles' windows as one when their bounding box is
/// at most this percentage of the two areas together (tiles further apart
/// would have the network score the unscreened tile between them).
const SCREEN_MERGE_PERCENT: i64 = 115;

/// Refine windows: output cells around a candidate's centre on each level.
const REFINE_RADIUS: i64 = 2;

/// Refine windows: levels on either side of a candidate's (one at first,
/// this many when dlib's best cell keeps sitting on the outermost level).
const REFINE_REACH: usize = 2;

/// dlib's coverage threshold from the model file (never fires at 1.0).
const COVERED_THRESH: f64 = 1.0;

/// How [`detect_largest`] decides which face is the largest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LargestSearch {
    /// Screen the coarse levels with approximate scores, then score
    /// dlib-exact windows around the candidate faces, largest first: the
    /// box is dlib's whenever dlib's best cell for the face lies within the
    /// windows (every golden photo and 285 transformed variants, the tests
    /// `golden_parity` and `largest_variants`), but that is not proven.
    /// 1.3-1.55x less detection time than [`Self::Exact`] on the golden set.
    #[default]
    Screened,
    /// Score until the answer is certain to be the fast detector's largest
    /// face (and so dlib's box): whole coarse levels and every window that
    /// could change dlib's non-max suppression.
    Exact,
}

/// The largest face [`super::fast::detect_fast`] would return for the same
/// arguments (certainly with [`LargestSearch::Exact`], found by screening
/// with [`LargestSearch::Screened`]), in the coordinates of `img`, or
/// `None` when it finds none.
pub fn detect_largest(
    net: &MmodNet,
    img: &RgbImage,
    min_face_size: u32,
    threshold: f32,
    how: LargestSearch,
) -> Option<RawDetection> {
    let (w, h) = img.dimensions();
    let k = first_level(effective_min_face(min_face_size, w, h));
    if k == 0 {
        return largest_of(detect_reference(net, img, 1, threshold), w, h);
    }
    let (up_w, up_h) = pyramid_up_size(w, h);
    let layout = PyramidLayout::new(up_h, up_w);
    let n = layout.levels.len();
    if k >= n {
        return None;
    }
    let crops: Vec<Crop> = scored_regions(&layout, k)
        .into_iter()
        .map(|(rect, tiles)| Crop { rect, tiles })
        .collect();
    let parts = level_parts(img, net.means(), &layout, k, &crops);
    let short = f64::from(w.min(h));
    let start = first_level((FIRST_STAGE_FACE_FRACTION * short).round() as u32).clamp(k, n - 1);
    let mut search = Search {
        net,
        layout: &layout,
        crops,
        parts,
        threshold,
        k,
        iou: net.nms_iou_thresh(),
        full: vec![false; n],
        exact: vec![Vec::new(); n],
        seen: HashSet::new(),
        found: Vec::new(),
        image: (w, h),
        layer3: Layer3Cache::new(),
    };
    match how {
        LargestSearch::Exact => search.run(start),
        LargestSearch::Screened => search.run_screened(start),
    }
}

/// The face a compare picks from a detector's list: the largest box once
/// clipped to the image, the higher score on ties ([`pick_largest`]).
pub fn largest_of(dets: Vec<RawDetection>, w: u32, h: u32) -> Option<RawDetection> {
    pick_largest(dets, |d| {
        (d.rect.clip_like_face_recognition(w, h).area(), d.score)
    })
}

/// The "largest face" rule every part of veriface uses: the item with the
/// largest area (`key`'s first value, the clipped box area in pixels); on a
/// tie the higher score (its second value); on a tie of both the first.
///
/// Ties are common, not a corner case: every box the detector finds on one
/// pyramid level has the same size, so two people at the same distance tie
/// unless a border clips one. The higher score is what face_recognition's
/// `max(locations, key=area)` gives over dlib's best-first list (the shared
/// reference scripts pick so), and the more confident face.
pub fn pick_largest<T>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> (i64, f32),
) -> Option<T> {
    // Each item's key once: for detections it clips a box.
    items
        .into_iter()
        .map(|x| (key(&x), x))
        .fold(None, |best, (kx, x)| match best {
            Some((kb, b)) if larger_face(kx, kb).is_le() => Some((kb, b)),
            _ => Some((kx, x)),
        })
        .map(|(_, x)| x)
}

/// [`pick_largest`]'s order on `(area, score)` keys: `Greater` when `a` is
/// the pick over `b`. Sorting by it, descending and stably, puts
/// [`pick_largest`]'s item first.
pub fn larger_face(a: (i64, f32), b: (i64, f32)) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then(a.1.total_cmp(&b.1))
}

/// One of [`super::fast`]'s crops of dlib's tiled tensor: a rectangle that
/// holds the tiles `tiles` with their margins. The search scores windows
/// inside them.
struct Crop {
    rect: Rect,
    tiles: Vec<usize>,
}

/// A rectangle of dlib's tiled tensor whose values are kept: a whole tile
/// (levels `k..`) or the part of a finer tile inside a crop's margin.
struct Part {
    rect: Rect,
    channels: [Vec<f32>; 3],
}

/// Every value a window inside the crops can need, computed once: the whole
/// tiles of levels `k..` and, of the finer levels, only the strips the
/// crops' margins reach. Unlike the fast detector's crop tensors, nothing is
/// copied into crop-sized buffers that the search would mostly not score.
fn level_parts(
    img: &RgbImage,
    means: [f32; 3],
    layout: &PyramidLayout,
    k: usize,
    crops: &[Crop],
) -> Vec<Part> {
    // The kept rectangles, level by level: a whole tile from `k` on, the
    // tile's part inside each crop before it.
    let mut plan: Vec<Rect> = Vec::new();
    let mut by_level: Vec<Vec<usize>> = vec![Vec::new(); layout.levels.len()];
    for (i, tile) in layout.levels.iter().enumerate() {
        let rects: Vec<Rect> = if i >= k {
            vec![*tile]
        } else {
            crops
                .iter()
                .map(|crop| tile.intersect(&crop.rect))
                .filter(|part| !part.is_empty())
                .collect()
        };
        for r in rects {
            by_level[i].push(plan.len());
            plan.push(r);
        }
    }
    let per_channel: Vec<Vec<(Rect, Vec<f32>)>> = (0..3)
        .into_par_iter()
        .map(|c| {
            let mut out: Vec<(Rect, Vec<f32>)> = plan
                .iter()
                .map(|r| (*r, Vec::with_capacity(r.area() as usize)))
                .collect();
            level_chain(img, c, means[c], layout, |i, tile, y, row| {
                let ty = tile.top + y as i64;
                for &p in &by_level[i] {
                    let (part, values) = &mut out[p];
                    if ty >= part.top && ty <= part.bottom {
                        let x0 = (part.left - tile.left) as usize;
                        values.extend_from_slice(&row[x0..x0 + part.width() as usize]);
                    }
                }
            });
            out
        })
        .collect();
    let mut channels = per_channel.into_iter();
    let (Some(r), Some(g), Some(b)) = (channels.next(), channels.next(), channels.next()) else {
        return Vec::new();
    };
    r.into_iter()
        .zip(g)
        .zip(b)
        .map(|(((rect, r), (_, g)), (_, b))| Part {
            rect,
            channels: [r, g, b],
        })
        .collect()
}

/// Where a detection stands in dlib's greedy suppression, given what has
/// been scored so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Kept,
    Suppressed,
    Open,
}

struct Search<'a> {
    net: &'a MmodNet,
    layout: &'a PyramidLayout,
    crops: Vec<Crop>,
    parts: Vec<Part>,
    threshold: f32,
    /// The first level the fast detector scores.
    k: usize,
    iou: f64,
    /// Levels whose whole tile has been scored.
    full: Vec<bool>,
    /// Per level: tensor-point rectangles inside which every cell is scored.
    exact: Vec<Vec<Rect>>,
    /// Tensor points already scored (each cell counted once).
    seen: HashSet<(i64, i64)>,
    /// Every detection above the threshold on levels `k..` scored so far.
    found: Vec<Scored>,
    image: (u32, u32),
    /// The network's phase-1 results so far, shared by the overlapping
    /// windows the search scores (12% of their phase-1 work on the golden
    /// images).
    layer3: Layer3Cache,
}

impl Search<'_> {
    fn run(&mut self, start: usize) -> Option<RawDetection> {
        let n = self.layout.levels.len();
        let mut m = n;
        let mut next = start;
        let mut rounds = 0;
        loop {
            if next < m {
                self.score_levels(next, m);
                m = next;
            }
            let (order, status) = self.resolve();
            let best = pick_largest(
                order.iter().copied().filter(|&i| status[i] == Status::Kept),
                |&i| (self.area(i), self.found[i].score),
            );
            let best_area = best.map_or(0, |b| self.area(b));
            // First settle the open detections that could still be the
            // answer (or decide it): scoring small windows around them is
            // cheaper than a stage of whole tiles.
            let relevant = order
                .iter()
                .any(|&i| status[i] == Status::Open && self.area(i) >= best_area);
            if !relevant {
                // Every level that could hold a box at least as large must
                // be scored whole (every level, when nothing is kept).
                let needed = (self.k..n)
                    .find(|&l| best.is_none() || max_area(l) >= best_area)
                    .unwrap_or(n);
                if m > needed {
                    next = m.saturating_sub(STAGE_LEVELS).max(needed).max(self.k);
                    continue;
                }
                return best.map(|b| RawDetection {
                    rect: rect_down(self.found[b].rect),
                    score: self.found[b].score,
                });
            }
            // An open status traces back to exposed detections (maybe ones
            // that cannot be the answer themselves): score around all.
            let all_open: Vec<usize> = order
                .iter()
                .copied()
                .filter(|&i| status[i] == Status::Open)
                .collect();
            let requests = self.requests(&all_open);
            rounds += 1;
            if requests.is_empty() || rounds > MAX_LOCAL_ROUNDS {
                // Each round covers the exposures it scores, so this is a
                // guard, not a path: scoring every level settles all.
                if m > self.k {
                    next = self.k;
                    rounds = 0;
                    continue;
                }
                // Everything is scored, so nothing can be open.
                return best.map(|b| RawDetection {
                    rect: rect_down(self.found[b].rect),
                    score: self.found[b].score,
                });
            }
            for (level, points) in requests {
                self.score_local(level, points);
            }
        }
    }

    /// [`LargestSearch::Screened`]: screens stages of levels (as
    /// [`Self::run`] scores them, coarsest first) with [`SCREEN_MARGIN`],
    /// then refines the candidate faces largest first with dlib-exact
    /// windows; the answer is the largest face dlib's suppression keeps
    /// among the exact detections. A stage lower down is screened only while
    /// it could hold a larger face than the best so far, and once a face is
    /// in hand it holds only the levels that could.
    fn run_screened(&mut self, start: usize) -> Option<RawDetection> {
        let n = self.layout.levels.len();
        let (mut lo, mut hi) = (start, n);
        let mut best: Option<Scored> = None;
        loop {
            let mut candidates = suppress(self.screen_levels(lo, hi), self.iou, COVERED_THRESH);
            candidates.sort_by_key(|c| std::cmp::Reverse(self.area_of(c)));
            for c in &candidates {
                // Refining finds boxes at most REFINE_REACH levels larger.
                let bound = max_area((c.level + REFINE_REACH).min(n - 1));
                if best.as_ref().is_some_and(|b| bound < self.area_of(b)) {
                    break;
                }
                self.refine(c);
                best = pick_largest(
                    suppress(self.found.clone(), self.iou, COVERED_THRESH),
                    |d| (self.area_of(d), d.score),
                );
            }
            // Lower levels hold smaller boxes: go on only while one could
            // still be larger than the best so far.
            let done = lo <= self.k
                || best
                    .as_ref()
                    .is_some_and(|b| max_area(lo - 1) < self.area_of(b));
            if done {
                return best.map(|b| RawDetection {
                    rect: rect_down(b.rect),
                    score: b.score,
                });
            }
            hi = lo;
            lo = lo.saturating_sub(STAGE_LEVELS).max(self.k);
            // With a face in hand, only the levels whose boxes could beat
            // it: usually one (a face found on level L leaves level L to
            // screen, not also L - 1, whose tile is 1.44x larger).
            if let Some(b) = &best {
                let area = self.area_of(b);
                lo = lo.max((lo..hi).find(|&l| max_area(l) >= area).unwrap_or(hi - 1));
            }
        }
    }

    /// The screen's candidates on every [`SCREEN_LEVEL_STEP`]th level of
    /// `lo..hi`, from `lo` up: every cell scoring above the threshold less
    /// [`SCREEN_SLACK`], from a window per tile (inside the crop that holds
    /// it) with only [`SCREEN_MARGIN`] of context. They only say where to
    /// refine; none is kept in `found`.
    fn screen_levels(&mut self, lo: usize, hi: usize) -> Vec<Scored> {
        let snap = |v: i64| (v - SCREEN_MARGIN).max(0) / OUTPUT_STRIDE * OUTPUT_STRIDE;
        let (cols, rows) = (self.layout.cols as i64 - 1, self.layout.rows as i64 - 1);
        // One window per screened tile, merged with the next one only when
        // their bounding box wastes little: a crop's bounding box would
        // also run the network on the unscreened tiles between them.
        let mut jobs: Vec<(usize, Rect, Vec<usize>)> = Vec::new();
        for (ci, crop) in self.crops.iter().enumerate() {
            let mut open: Option<(Rect, i64, Vec<usize>)> = None;
            for &l in crop.tiles.iter() {
                if l < lo || l >= hi || (l - lo) % SCREEN_LEVEL_STEP != 0 {
                    continue;
                }
                let t = self.layout.levels[l];
                let w = Rect::new(
                    snap(t.left),
                    snap(t.top),
                    (t.right + SCREEN_MARGIN).min(cols),
                    (t.bottom + SCREEN_MARGIN).min(rows),
                )
                .intersect(&crop.rect);
                open = match open {
                    Some((r, sum, mut tiles)) => {
                        let u = r.bounding_union(&w);
                        if u.area() * 100 <= (sum + w.area()) * SCREEN_MERGE_PERCENT {
                            tiles.push(l);
                            Some((u, sum + w.area(), tiles))
                        } else {
                            jobs.push((ci, r, tiles));
                            Some((w, w.area(), vec![l]))
                        }
                    }
                    None => Some((w, w.area(), vec![l])),
                };
            }
            if let Some((r, _, tiles)) = open {
                jobs.push((ci, r, tiles));
            }
        }
        // The screen's scores are approximate: they are returned, never
        // recorded as detections or as scored points; a point the refine
        // already scored exactly is no candidate (its detection is known).
        let threshold = self.threshold - SCREEN_SLACK;
        let mut out = Vec::new();
        for (ci, r, tiles) in jobs {
            let cells = self.cells(ci, r, threshold, |level, _| tiles.contains(&level));
            out.extend(
                cells
                    .into_iter()
                    .filter(|(_, p)| !self.seen.contains(p))
                    .map(|(s, _)| s),
            );
        }
        out
    }

    /// Scores dlib-exact windows around candidate `x`: [`REFINE_RADIUS`]
    /// cells around its centre on its level and the levels next to it,
    /// going up to [`REFINE_REACH`] levels away while the best exact
    /// detection sits on the outermost level scored.
    fn refine(&mut self, x: &Scored) {
        let n = self.layout.levels.len();
        let (mut lo, mut hi) = (
            x.level.saturating_sub(1).max(self.k),
            (x.level + 1).min(n - 1),
        );
        let before = self.found.len();
        let mut pending: Vec<usize> = (lo..=hi).collect();
        loop {
            for l in pending.drain(..) {
                if let Some(points) = self.around(x, l) {
                    self.score_local(l, points);
                }
            }
            let mine = self.found[before..].to_vec();
            let Some(b) = suppress(mine, self.iou, COVERED_THRESH).into_iter().next() else {
                return;
            };
            if b.level == lo && lo > self.k && x.level - lo < REFINE_REACH {
                lo -= 1;
                pending.push(lo);
            }
            if b.level == hi && hi + 1 < n && hi - x.level < REFINE_REACH {
                hi += 1;
                pending.push(hi);
            }
            if pending.is_empty() {
                return;
            }
        }
    }

    /// The tensor points of level `l`'s tile within [`REFINE_RADIUS`] output
    /// cells of the point whose box is centred where `x`'s is.
    fn around(&self, x: &Scored, l: usize) -> Option<Rect> {
        let tile = self.layout.levels[l];
        let (scale, shift) = level_map(l);
        let to_point = |v: f64| ((v - shift) / scale).round() as i64;
        let px = to_point((x.rect.left + x.rect.right) as f64 / 2.0) + tile.left;
        let py = to_point((x.rect.top + x.rect.bottom) as f64 / 2.0) + tile.top;
        let d = REFINE_RADIUS * OUTPUT_STRIDE;
        let r = Rect::new(px - d, py - d, px + d, py + d).intersect(&tile);
        (!r.is_empty()).then_some(r)
    }

    /// The clipped area of `s` in the input image.
    fn area_of(&self, s: &Scored) -> i64 {
        rect_down(s.rect)
            .clip_like_face_recognition(self.image.0, self.image.1)
            .area()
    }

    /// The clipped area of detection `i` in the input image.
    fn area(&self, i: usize) -> i64 {
        self.area_of(&self.found[i])
    }

    /// dlib's greedy suppression over what is known: detections in score
    /// order (stable, as [`super::nms::suppress`]) and their statuses.
    fn resolve(&self) -> (Vec<usize>, Vec<Status>) {
        let mut order: Vec<usize> = (0..self.found.len()).collect();
        order.sort_by(|&a, &b| self.found[b].score.total_cmp(&self.found[a].score));
        let mut status = vec![Status::Open; self.found.len()];
        for (pos, &i) in order.iter().enumerate() {
            let x = &self.found[i];
            let mut open = !self.exposures(x).is_empty();
            let mut suppressed = false;
            for &j in &order[..pos] {
                if overlaps(&self.found[j].rect, &x.rect, self.iou, COVERED_THRESH) {
                    match status[j] {
                        Status::Kept => {
                            suppressed = true;
                            break;
                        }
                        Status::Open => open = true,
                        Status::Suppressed => {}
                    }
                }
            }
            status[i] = if suppressed {
                Status::Suppressed
            } else if open {
                Status::Open
            } else {
                Status::Kept
            };
        }
        (order, status)
    }

    /// The not yet scored tensor points, per level, whose boxes could
    /// overlap `x` in dlib's NMS.
    fn exposures(&self, x: &Scored) -> Vec<(usize, Rect)> {
        let n = self.layout.levels.len();
        let lo = x.level.saturating_sub(NMS_LEVEL_REACH).max(self.k);
        let hi = (x.level + NMS_LEVEL_REACH).min(n - 1);
        (lo..=hi)
            .filter(|&l| !self.full[l])
            .filter_map(|l| {
                let p = self.reach(x, l)?;
                let covered = self.exact[l].iter().any(|e| e.intersect(&p) == p);
                (!covered).then_some((l, p))
            })
            .collect()
    }

    /// The tensor points of level `l`'s tile whose boxes could overlap `x`
    /// by more than dlib's threshold, or `None` if none can.
    ///
    /// For squares of sides `a >= b` whose centres are `d` apart along one
    /// axis, the intersection over the bounding box is at most `(b/a)^2`,
    /// and at most `((a + b)/2 - d) * b / a^2` once the smaller one sticks
    /// out; so overlap needs `(b/a)^2 > t` and `d < (a + b)/2 - t a^2 / b`.
    fn reach(&self, x: &Scored, l: usize) -> Option<Rect> {
        let tile = self.layout.levels[l];
        let (scale, shift) = level_map(l);
        // Sides as `right - left + 1`; a level's boxes are 79 * 1.2^l wide
        // before rounding each corner.
        let side_x = (x.rect.width() as f64, x.rect.height() as f64);
        let side_l = 79.0 * scale + 1.0;
        let half_reach = |sx: f64| -> Option<f64> {
            // Bounds that can only widen the reach: the larger side 1 px
            // smaller, the smaller 1 px larger.
            let a = sx.max(side_l) - 1.0;
            let b = (sx.min(side_l) + 1.0).min(a);
            if (b / a).powi(2) <= self.iou {
                return None;
            }
            Some((a + b) / 2.0 - self.iou * a * a / b + 2.0)
        };
        let dx = half_reach(side_x.0)?;
        let dy = half_reach(side_x.1)?;
        let cx = (x.rect.left + x.rect.right) as f64 / 2.0;
        let cy = (x.rect.top + x.rect.bottom) as f64 / 2.0;
        // A cell at tensor point p has its box centred at
        // scale * (p - tile origin) + shift.
        let to_point = |v: f64| (v - shift) / scale;
        let r = Rect::new(
            (to_point(cx - dx).floor() as i64 - 1) + tile.left,
            (to_point(cy - dy).floor() as i64 - 1) + tile.top,
            (to_point(cx + dx).ceil() as i64 + 1) + tile.left,
            (to_point(cy + dy).ceil() as i64 + 1) + tile.top,
        )
        .intersect(&tile);
        (!r.is_empty()).then_some(r)
    }

    /// The exposures of the `open` detections, merged per level where
    /// their scoring windows would overlap.
    fn requests(&self, open: &[usize]) -> Vec<(usize, Rect)> {
        let mut out: Vec<(usize, Rect)> = Vec::new();
        for &i in open {
            for (l, p) in self.exposures(&self.found[i]) {
                let grown = |r: &Rect| {
                    Rect::new(
                        r.left - MARGIN,
                        r.top - MARGIN,
                        r.right + MARGIN,
                        r.bottom + MARGIN,
                    )
                };
                match out
                    .iter_mut()
                    .find(|(ol, or)| *ol == l && !grown(or).intersect(&grown(&p)).is_empty())
                {
                    Some((_, or)) => *or = or.bounding_union(&p),
                    None => out.push((l, p)),
                }
            }
        }
        out
    }

    /// Scores the whole tiles of levels `lo..hi`.
    fn score_levels(&mut self, lo: usize, hi: usize) {
        let wanted = |l: usize| l >= lo && l < hi;
        let mut jobs = Vec::new();
        for (ci, crop) in self.crops.iter().enumerate() {
            let tiles: Vec<usize> = crop.tiles.iter().copied().filter(|&l| wanted(l)).collect();
            let Some(r) = tiles
                .iter()
                .map(|&l| self.with_margin(self.layout.levels[l]))
                .reduce(|a, b| a.bounding_union(&b))
            else {
                continue;
            };
            jobs.push((ci, r.intersect(&crop.rect), tiles));
        }
        for (ci, r, tiles) in jobs {
            // As the fast detector: a tile's cells are exact when the crop
            // holds the tile and its margin.
            self.score(ci, r, |level, _| tiles.contains(&level));
        }
        for l in lo..hi {
            self.full[l] = true;
        }
    }

    /// Scores the cells of level `level` at the tensor points `points`
    /// (inside its tile), with the margin that makes their scores exact.
    fn score_local(&mut self, level: usize, points: Rect) {
        let Some(ci) = self.crops.iter().position(|c| c.tiles.contains(&level)) else {
            return;
        };
        let r = self.with_margin(points).intersect(&self.crops[ci].rect);
        let (rows, cols) = (self.layout.rows as i64, self.layout.cols as i64);
        let exact = Rect::new(
            if r.left > 0 {
                r.left + HALF_FIELD
            } else {
                r.left
            },
            if r.top > 0 { r.top + HALF_FIELD } else { r.top },
            if r.right < cols - 1 {
                r.right - HALF_FIELD
            } else {
                r.right
            },
            if r.bottom < rows - 1 {
                r.bottom - HALF_FIELD
            } else {
                r.bottom
            },
        );
        // Only the requested points: the margin makes more cells exact, but
        // scoring them too would grow both network phases by a quarter.
        let exact = exact.intersect(&points);
        if exact.is_empty() {
            return;
        }
        self.score(ci, r, |_, p| exact.contains(p.0, p.1));
        for (l, tile) in self.layout.levels.iter().enumerate() {
            if !tile.intersect(&exact).is_empty() {
                self.exact[l].push(exact);
            }
        }
    }

    /// `r` grown by the margin, its origin on the network's output stride
    /// (so cells fall on dlib's window positions), inside the tensor.
    fn with_margin(&self, r: Rect) -> Rect {
        let snap = |v: i64| (v - MARGIN).max(0) / OUTPUT_STRIDE * OUTPUT_STRIDE;
        Rect::new(
            snap(r.left),
            snap(r.top),
            (r.right + MARGIN).min(self.layout.cols as i64 - 1),
            (r.bottom + MARGIN).min(self.layout.rows as i64 - 1),
        )
    }

    /// Runs the network on the part `r` of crop `ci` and records the
    /// detections above the threshold, on levels `k..`, that `keep(level,
    /// tensor point)` accepts, each tensor point once.
    fn score(&mut self, ci: usize, r: Rect, keep: impl Fn(usize, (i64, i64)) -> bool) {
        for (s, p) in self.cells(ci, r, self.threshold, keep) {
            if self.seen.insert(p) {
                self.found.push(s);
            }
        }
    }

    /// Runs the network on the part `r` of crop `ci` and returns the cells
    /// scoring above `threshold`, on levels `k..`, that `keep(level, tensor
    /// point)` accepts, with their tensor points.
    fn cells(
        &mut self,
        ci: usize,
        r: Rect,
        threshold: f32,
        keep: impl Fn(usize, (i64, i64)) -> bool,
    ) -> Vec<(Scored, (i64, i64))> {
        if r.is_empty() {
            return Vec::new();
        }
        debug_assert!(self.crops[ci].rect.intersect(&r) == r);
        let shifted = self.layout.shifted(r);
        // Only the cells `keep` can accept are scored: the crop's margin is
        // there for their receptive fields, and the network need not score
        // it (`MmodNet::forward_cells`).
        let (h3, w3) = self
            .net
            .output_size(r.height() as usize, r.width() as usize);
        let (mut rows, mut cols) = ((usize::MAX, 0), (usize::MAX, 0));
        for cy in 0..h3 {
            for cx in 0..w3 {
                let (px, py) = (
                    cx as i64 * OUTPUT_STRIDE + OUTPUT_OFFSET,
                    cy as i64 * OUTPUT_STRIDE + OUTPUT_OFFSET,
                );
                let Some(level) = shifted.level_of(px, py) else {
                    continue;
                };
                if level >= self.k && keep(level, (px + r.left, py + r.top)) {
                    rows = (rows.0.min(cy), rows.1.max(cy + 1));
                    cols = (cols.0.min(cx), cols.1.max(cx + 1));
                }
            }
        }
        if rows.0 >= rows.1 {
            return Vec::new();
        }
        let input = sub_tensor(&self.parts, r);
        let need = (rows.0..rows.1, cols.0..cols.1);
        // Windows start on the output stride (`with_margin`, and the crops
        // they are cut from), so their layer-3 cells are the whole tensor's.
        let scores = if r.top % OUTPUT_STRIDE == 0 && r.left % OUTPUT_STRIDE == 0 {
            let origin = (r.top / OUTPUT_STRIDE, r.left / OUTPUT_STRIDE);
            self.net
                .forward_cells_cached(&input, need, origin, &mut self.layer3)
        } else {
            self.net.forward_cells(&input, need)
        };
        drop(input);
        candidate_cells(&scores, &shifted, self.net.window_size(), threshold, 0)
            .into_iter()
            .map(|(s, (px, py))| (s, (px + r.left, py + r.top)))
            .filter(|(s, p)| s.level >= self.k && keep(s.level, *p))
            .collect()
    }
}

/// The affine map from a level-`l` tile coordinate to level 0's,
/// `x -> scale * x + shift`: `l` times dlib's `point_up` (`x * 1.2 + 0.3`).
fn level_map(l: usize) -> (f64, f64) {
    let (mut scale, mut shift) = (1.0, 0.0);
    for _ in 0..l {
        scale *= 1.2;
        shift = shift * 1.2 + 0.3;
    }
    (scale, shift)
}

/// An upper bound on the clipped area, in input pixels, of a box found on
/// level `l` (79 * 1.2^l px at level 0, halved by the upsampling, with
/// rounding slack).
fn max_area(l: usize) -> i64 {
    let side = (79.0 * level_map(l).0 + 3.0) / 2.0 + 2.0;
    (side * side).ceil() as i64
}

/// The values of dlib's tiled tensor inside `r` (zero between the tiles),
/// from the kept `parts`.
fn sub_tensor(parts: &[Part], r: Rect) -> Tensor {
    let (h, w) = (r.height() as usize, r.width() as usize);
    let mut out = Tensor::zeros(3, h, w);
    for part in parts {
        let x = part.rect.intersect(&r);
        if x.is_empty() {
            continue;
        }
        let pw = part.rect.width() as usize;
        let (n, sx, dx) = (
            x.width() as usize,
            (x.left - part.rect.left) as usize,
            (x.left - r.left) as usize,
        );
        for (c, src) in part.channels.iter().enumerate() {
            for y in x.top..=x.bottom {
                let s0 = (y - part.rect.top) as usize * pw + sx;
                let d0 = (c * h + (y - r.top) as usize) * w + dx;
                out.data[d0..d0 + n].copy_from_slice(&src[s0..s0 + n]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_map_is_point_up_iterated() {
        let (s, t) = level_map(3);
        let mut x = 10.0f64;
        for _ in 0..3 {
            x = x * 1.2 + 0.3;
        }
        assert!((s * 10.0 + t - x).abs() < 1e-12);
    }

    #[test]
    fn max_area_bounds_every_box_of_a_level() {
        for l in 0..20 {
            let (s, t) = level_map(l);
            // The widest box a cell of level l can give, mapped down.
            let left = (s * -39.5 + t).round() as i64;
            let right = (s * 39.5 + t).round() as i64;
            let r = rect_down(Rect::new(left, left, right, right));
            assert!(r.area() <= max_area(l), "level {l}");
            assert!(max_area(l) < max_area(l + 1));
        }
    }

    #[test]
    fn largest_of_prefers_area_then_the_higher_score() {
        let d = |l, r, score| RawDetection {
            rect: Rect::new(l, l, r, r),
            score,
        };
        // Two 30-px boxes tie on area: the higher score wins, wherever it is.
        let got = largest_of(vec![d(0, 9, 2.0), d(20, 49, 1.0), d(60, 89, 1.5)], 100, 100);
        assert_eq!(got.map(|d| d.score), Some(1.5));
        let got = largest_of(vec![d(0, 9, 2.0), d(60, 89, 1.5), d(20, 49, 1.0)], 100, 100);
        assert_eq!(got.map(|d| d.score), Some(1.5));
        // Area first: a larger box with a lower score beats a smaller one.
        let got = largest_of(vec![d(0, 29, 2.0), d(40, 79, 0.5)], 100, 100);
        assert_eq!(got.map(|d| d.score), Some(0.5));
        // Areas are clipped to the image: a box hanging over the edge can lose.
        let got = largest_of(vec![d(80, 129, 2.0), d(0, 39, 0.5)], 100, 100);
        assert_eq!(got.map(|d| d.score), Some(0.5));
        assert!(largest_of(Vec::new(), 10, 10).is_none());
    }

    #[test]
    fn pick_largest_keeps_the_first_of_full_ties() {
        let items = [(1, 10, 0.5f32), (2, 10, 0.5), (3, 5, 0.9)];
        let got = pick_largest(items, |&(_, a, s)| (a, s));
        assert_eq!(got.map(|x| x.0), Some(1));
        assert_eq!(pick_largest(Vec::<(i64, f32)>::new(), |&x| x), None);
    }
}
