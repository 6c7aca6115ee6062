//! The whole MMOD detection pass (spec: `dlib-models.md` section 6.2).

use image::RgbImage;
use rayon::prelude::*;

use crate::geometry::Rect;
use crate::imgproc::pyramid::{pyramid_up, rect_down};
use crate::imgproc::resize::resize_plane_f32_strided;
use crate::models::mmod_net::MmodNet;
use crate::nn::tensor::Tensor;

use super::layout::PyramidLayout;
use super::nms::{candidates, suppress, Scored};

/// dlib's NMS coverage threshold (`percent_covered_thresh`) in the model file.
/// With 1.0 the coverage tests never fire.
const COVERED_THRESH: f64 = 1.0;

/// A raw detection in the coordinates of the image passed in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawDetection {
    /// The box, inclusive corners, **not** clipped: dlib boxes may extend
    /// past the image border.
    pub rect: Rect,
    /// dlib's detection confidence (the raw network score; > 0 is a face).
    pub score: f32,
}

/// Builds the normalised, tiled pyramid tensor of `img` (step 2): level 0
/// holds `(v - mean) / 256` of the image, each further level is a bilinear
/// resize of the previous level's *tensor values*, and everything else is 0
/// (the mean colour).
pub fn pyramid_tensor(img: &RgbImage, means: [f32; 3], layout: &PyramidLayout) -> Tensor {
    let mut t = Tensor::zeros(3, layout.rows, layout.cols);
    let Some(&l0) = layout.levels.first() else {
        return t;
    };
    let cols = layout.cols;
    let (w0, h0) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    for_each_plane(&mut t, |ch, plane| {
        let mean = means[ch];
        for y in 0..h0 {
            let dst = &mut plane[(l0.top as usize + y) * cols + l0.left as usize..][..w0];
            let src = &raw[y * w0 * 3..(y + 1) * w0 * 3];
            for (d, px) in dst.iter_mut().zip(src.chunks_exact(3)) {
                // v - mean in f32, then an exact division by 256.
                *d = (f32::from(px[ch]) - mean) / 256.0;
            }
        }
    });
    fill_smaller_levels(&mut t, layout);
    t
}

/// Runs `f(channel, plane)` on the three planes in parallel.
pub(crate) fn for_each_plane(t: &mut Tensor, f: impl Fn(usize, &mut [f32]) + Sync) {
    let plane_len = t.h * t.w;
    t.data
        .par_chunks_mut(plane_len.max(1))
        .enumerate()
        .for_each(|(ch, plane)| f(ch, plane));
}

/// Fills tiles 1.. of `layout`, each a bilinear resize (dlib's f32 path) of
/// the previous tile's values, given tile 0.
pub(crate) fn fill_smaller_levels(t: &mut Tensor, layout: &PyramidLayout) {
    let cols = layout.cols;
    for_each_plane(t, |_, plane| {
        let mut scratch = Vec::new();
        for pair in layout.levels.windows(2) {
            let (src, dst) = (pair[0], pair[1]);
            let (sw, sh) = (src.width() as usize, src.height() as usize);
            // Tiles never overlap, but they share one plane: copy the
            // source tile out so the borrow checker sees two buffers.
            scratch.clear();
            for y in 0..sh {
                let off = (src.top as usize + y) * cols + src.left as usize;
                scratch.extend_from_slice(&plane[off..off + sw]);
            }
            let off = dst.top as usize * cols + dst.left as usize;
            resize_plane_f32_strided(
                &scratch,
                sw,
                sw,
                sh,
                &mut plane[off..],
                cols,
                dst.width() as usize,
                dst.height() as usize,
            );
        }
    });
}

/// dlib's `cnn_face_detection_model_v1(img, upsample)`: `upsample` rounds of
/// `pyramid_up`, the tiled pyramid, one network pass, candidates with score
/// above `threshold`, NMS, and the boxes mapped back to `img`'s pixels.
pub fn detect_reference(
    net: &MmodNet,
    img: &RgbImage,
    upsample: u32,
    threshold: f32,
) -> Vec<RawDetection> {
    let mut up = None;
    for _ in 0..upsample {
        up = Some(pyramid_up(up.as_ref().unwrap_or(img)));
    }
    let work = up.as_ref().unwrap_or(img);
    let mut found = detect_on(net, work, threshold);
    for d in &mut found {
        for _ in 0..upsample {
            d.rect = rect_down(d.rect);
        }
    }
    found
        .into_iter()
        .map(|s| RawDetection {
            rect: s.rect,
            score: s.score,
        })
        .collect()
}

/// Runs the pyramid and the network on `img` as is (no upsampling).
pub fn detect_on(net: &MmodNet, img: &RgbImage, threshold: f32) -> Vec<Scored> {
    let layout = PyramidLayout::new(img.height() as usize, img.width() as usize);
    if layout.levels.is_empty() {
        return Vec::new();
    }
    let tensor = pyramid_tensor(img, net.means(), &layout);
    let scores = net.forward(&tensor);
    drop(tensor);
    let cands = candidates(&scores, &layout, net.window_size(), threshold, 0);
    suppress(cands, net.nms_iou_thresh(), COVERED_THRESH)
}
