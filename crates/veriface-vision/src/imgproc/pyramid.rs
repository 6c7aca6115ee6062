//! dlib's `pyramid_down<2>` geometry and filters (spec: `dlib-models.md`
//! sections 6.2 and 7.2).
//!
//! The same geometry serves two purposes: `pyramid_up` (detector input
//! upsampling, whose pixels are a plain bilinear resize) and the chip
//! extractor's pre-shrinking with the 5-tap `pyr_down2` filter. The box
//! mapping carries a (1.25, 0.75) offset, so boxes found on an upsampled image
//! must be mapped back with [`point_down`], not halved.

use image::RgbImage;
use rayon::prelude::*;

use super::resize::resize_rgb;
use crate::geometry::{lround, DRect, Point, Rect};

/// Maps a point of an image to the image one pyramid level up (twice the
/// size): `(p + (1.25, 0.75)) * 2`.
pub fn point_up(p: Point) -> Point {
    Point::new((p.x + 1.25) * 2.0, (p.y + 0.75) * 2.0)
}

/// Maps a point one pyramid level down (half the size): `p / 2 - (1.25,
/// 0.75)`, the inverse of [`point_up`].
pub fn point_down(p: Point) -> Point {
    Point::new(p.x / 2.0 - 1.25, p.y / 2.0 - 0.75)
}

/// [`point_up`] on both corners of an integer rectangle, rounded with
/// `lround`.
pub fn rect_up(r: Rect) -> Rect {
    map_rect(r, point_up)
}

/// [`point_down`] on both corners of an integer rectangle, rounded with
/// `lround` (how the detector undoes its upsampling).
pub fn rect_down(r: Rect) -> Rect {
    map_rect(r, point_down)
}

/// [`point_down`] on both corners of an f64 rectangle.
pub fn drect_down(r: DRect) -> DRect {
    let tl = point_down(Point::new(r.left, r.top));
    let br = point_down(Point::new(r.right, r.bottom));
    DRect {
        left: tl.x,
        top: tl.y,
        right: br.x,
        bottom: br.y,
    }
}

fn map_rect(r: Rect, f: fn(Point) -> Point) -> Rect {
    let tl = f(Point::new(r.left as f64, r.top as f64));
    let br = f(Point::new(r.right as f64, r.bottom as f64));
    Rect::new(lround(tl.x), lround(tl.y), lround(br.x), lround(br.y))
}

/// dlib's `pyramid_up` of an RGB image: the image rectangle mapped up gives
/// the size, `(2H + 1) x (2W + 2)`, and the pixels are a plain bilinear
/// [`resize_rgb`] of the whole image to it. An empty image stays empty.
pub fn pyramid_up(img: &RgbImage) -> RgbImage {
    if img.width() == 0 || img.height() == 0 {
        return RgbImage::new(0, 0);
    }
    let up = rect_up(Rect::new(
        0,
        0,
        i64::from(img.width()) - 1,
        i64::from(img.height()) - 1,
    ));
    let out_w = u32::try_from(up.right + 1).unwrap_or(0);
    let out_h = u32::try_from(up.bottom + 1).unwrap_or(0);
    resize_rgb(img, out_w, out_h)
}

/// A borrowed RGB image region: `w x h` pixels starting at byte `offset` of
/// `data`, rows `stride` bytes apart.
#[derive(Clone, Copy)]
pub(crate) struct RgbView<'a> {
    pub data: &'a [u8],
    pub offset: usize,
    pub stride: usize,
    pub w: usize,
    pub h: usize,
}

impl<'a> RgbView<'a> {
    /// The whole image.
    pub fn whole(img: &'a RgbImage) -> Self {
        Self {
            data: img.as_raw(),
            offset: 0,
            stride: img.width() as usize * 3,
            w: img.width() as usize,
            h: img.height() as usize,
        }
    }

    /// The sub-image `w x h` at `(x, y)`; the caller keeps it inside.
    pub fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> Self {
        Self {
            data: self.data,
            offset: self.offset + y * self.stride + x * 3,
            stride: self.stride,
            w,
            h,
        }
    }

    /// Row `y` as `3 * w` bytes.
    pub fn row(&self, y: usize) -> &'a [u8] {
        let s = self.offset + y * self.stride;
        &self.data[s..s + self.w * 3]
    }
}

/// dlib's `pyramid_down<2>` on an RGB image: a separable 1-4-6-4-1 filter
/// in integer arithmetic, output `((H - 3) / 2) x ((W - 3) / 2)`, values
/// truncated. Images of 8 rows or columns or fewer give an empty output.
pub fn pyr_down2(img: &RgbImage) -> RgbImage {
    pyr_down2_view(RgbView::whole(img))
}

pub(crate) fn pyr_down2_view(src: RgbView<'_>) -> RgbImage {
    if src.w <= 8 || src.h <= 8 {
        return RgbImage::new(0, 0);
    }
    let (ow, oh) = ((src.w - 3) / 2, (src.h - 3) / 2);
    let n = ow * 3;
    let parallel = src.w * src.h >= 1 << 18;
    // Horizontal pass over every input row: at most 16 * 255, fits u16.
    let mut tmp = vec![0u16; src.h * n];
    let hpass = |(y, trow): (usize, &mut [u16])| {
        let s = src.row(y);
        for (x, t) in trow.chunks_exact_mut(3).enumerate() {
            let w: &[u8; 15] = match s[6 * x..6 * x + 15].try_into() {
                Ok(w) => w,
                Err(_) => continue,
            };
            for ch in 0..3 {
                let p = |k: usize| u16::from(w[3 * k + ch]);
                t[ch] = p(0) + 4 * p(1) + 6 * p(2) + 4 * p(3) + p(4);
            }
        }
    };
    if parallel {
        tmp.par_chunks_exact_mut(n).enumerate().for_each(hpass);
    } else {
        tmp.chunks_exact_mut(n).enumerate().for_each(hpass);
    }
    let mut out = vec![0u8; oh * n];
    let vpass = |(y, orow): (usize, &mut [u8])| {
        let t = |k: usize| &tmp[(2 * y + k) * n..(2 * y + k + 1) * n];
        let rows = t(0).iter().zip(t(1)).zip(t(2)).zip(t(3)).zip(t(4));
        for (o, ((((&a, &b), &c), &d), &e)) in orow.iter_mut().zip(rows) {
            let v = u32::from(a)
                + 4 * u32::from(b)
                + 6 * u32::from(c)
                + 4 * u32::from(d)
                + u32::from(e);
            *o = (v / 256) as u8;
        }
    };
    if parallel {
        out.par_chunks_exact_mut(n).enumerate().for_each(vpass);
    } else {
        out.chunks_exact_mut(n).enumerate().for_each(vpass);
    }
    RgbImage::from_raw(ow as u32, oh as u32, out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_and_down_are_inverse() {
        let p = Point::new(17.0, -3.5);
        assert_eq!(point_down(point_up(p)), p);
    }

    #[test]
    fn pyramid_up_size_is_2h_plus_1_by_2w_plus_2() {
        let img = RgbImage::new(330, 512);
        let up = pyramid_up(&img);
        assert_eq!((up.width(), up.height()), (662, 1025));
    }

    #[test]
    fn pyr_down2_of_constant_image_keeps_the_value() {
        let img = RgbImage::from_pixel(21, 12, image::Rgb([10, 128, 255]));
        let down = pyr_down2(&img);
        assert_eq!((down.width(), down.height()), (9, 4));
        assert!(down.pixels().all(|p| p.0 == [10, 128, 255]));
        assert_eq!(pyr_down2(&RgbImage::new(8, 100)).width(), 0);
    }
}
