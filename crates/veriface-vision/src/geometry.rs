//! Rectangles and points with dlib's conventions.
//!
//! dlib rectangles have **inclusive** corners: `width = right - left + 1`.
//! A rectangle with `left > right` or `top > bottom` is empty.

use serde::{Deserialize, Serialize};

/// An integer rectangle with inclusive corners, as dlib's `rectangle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rect {
    /// Leftmost column (inclusive).
    pub left: i64,
    /// Top row (inclusive).
    pub top: i64,
    /// Rightmost column (inclusive).
    pub right: i64,
    /// Bottom row (inclusive).
    pub bottom: i64,
}

impl Rect {
    /// A rectangle from its four inclusive corners.
    pub const fn new(left: i64, top: i64, right: i64, bottom: i64) -> Self {
        Self {
            left,
            top,
            right,
            bottom,
        }
    }

    /// `right - left + 1`, or 0 when empty.
    pub fn width(&self) -> i64 {
        (self.right - self.left + 1).max(0)
    }

    /// `bottom - top + 1`, or 0 when empty.
    pub fn height(&self) -> i64 {
        (self.bottom - self.top + 1).max(0)
    }

    /// Number of pixels covered.
    pub fn area(&self) -> i64 {
        self.width() * self.height()
    }

    /// True when the rectangle covers no pixel.
    pub fn is_empty(&self) -> bool {
        self.left > self.right || self.top > self.bottom
    }

    /// The overlap of two rectangles (may be empty).
    pub fn intersect(&self, o: &Rect) -> Rect {
        Rect::new(
            self.left.max(o.left),
            self.top.max(o.top),
            self.right.min(o.right),
            self.bottom.min(o.bottom),
        )
    }

    /// The smallest rectangle containing both.
    pub fn bounding_union(&self, o: &Rect) -> Rect {
        Rect::new(
            self.left.min(o.left),
            self.top.min(o.top),
            self.right.max(o.right),
            self.bottom.max(o.bottom),
        )
    }

    /// Intersection over union (the usual one: union = sum of areas minus overlap).
    pub fn iou(&self, o: &Rect) -> f64 {
        let inter = self.intersect(o).area() as f64;
        let union = (self.area() + o.area()) as f64 - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }

    /// True when the pixel `(x, y)` lies inside.
    pub fn contains(&self, x: i64, y: i64) -> bool {
        x >= self.left && x <= self.right && y >= self.top && y <= self.bottom
    }

    /// Clips to `[0, width] x [0, height]` the way face_recognition's
    /// `_trim_css_to_bounds` does (note: to W and H, not W-1 and H-1).
    pub fn clip_like_face_recognition(&self, width: u32, height: u32) -> Rect {
        Rect::new(
            self.left.max(0),
            self.top.max(0),
            self.right.min(i64::from(width)),
            self.bottom.min(i64::from(height)),
        )
    }
}

/// A rectangle with f64 corners, as dlib's `drectangle`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DRect {
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Right edge.
    pub right: f64,
    /// Bottom edge.
    pub bottom: f64,
}

impl DRect {
    /// dlib's area of a drectangle: `(r - l + 1) * (b - t + 1)`, 0 when empty.
    pub fn area(&self) -> f64 {
        if self.left > self.right || self.top > self.bottom {
            0.0
        } else {
            (self.right - self.left + 1.0) * (self.bottom - self.top + 1.0)
        }
    }
}

/// A point with f64 coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    /// Column.
    pub x: f64,
    /// Row.
    pub y: f64,
}

impl Point {
    /// A point from its coordinates.
    pub const fn new(x: f64, y: f64) -> Self {
        Self { x, y }
    }
}

/// An integer pixel position (landmarks are integers in dlib).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct IPoint {
    /// Column.
    pub x: i64,
    /// Row.
    pub y: i64,
}

impl IPoint {
    /// A point from its coordinates.
    pub const fn new(x: i64, y: i64) -> Self {
        Self { x, y }
    }
}

/// The five landmarks of dlib's 5-point model, in its order: 0 outer and 1
/// inner corner of the eye on the image's right side, 2 outer and 3 inner
/// corner of the other eye, 4 base of the nose.
pub type Landmarks = [IPoint; 5];

/// C's `lround`: round half away from zero (dlib's rounding for rectangle corners).
pub fn lround(v: f64) -> i64 {
    v.round() as i64
}

/// dlib's rounding for points: `floor(v + 0.5)`.
pub fn round_point(v: f64) -> i64 {
    (v + 0.5).floor() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inclusive_corners() {
        let r = Rect::new(0, 0, 9, 4);
        assert_eq!((r.width(), r.height(), r.area()), (10, 5, 50));
        assert!(Rect::new(3, 0, 2, 5).is_empty());
        assert_eq!(Rect::new(3, 0, 2, 5).area(), 0);
    }

    #[test]
    fn iou_of_identical_and_disjoint() {
        let a = Rect::new(0, 0, 9, 9);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&Rect::new(20, 20, 29, 29)), 0.0);
        assert!((a.iou(&Rect::new(5, 0, 14, 9)) - 50.0 / 150.0).abs() < 1e-12);
    }

    #[test]
    fn rounding_conventions_differ_at_negative_halves() {
        assert_eq!(lround(-2.5), -3);
        assert_eq!(round_point(-2.5), -2);
        assert_eq!(lround(2.5), 3);
        assert_eq!(round_point(2.5), 3);
    }
}
