//! Least-squares similarity transforms (Umeyama 1991), as dlib's
//! `find_similarity_transform` (spec: `dlib-models.md` sections 5.2 and 7.1).
//!
//! dlib takes an SVD of the 2x2 cross-covariance. In two dimensions the
//! Umeyama solution has a closed form: writing the covariance as
//! `[[a, b], [c, d]]`, the rotation is by `atan2(c - b, a + d)` (also when
//! `det < 0`, where Umeyama flips the smaller singular value) and
//! `c R = [[a + d, b - c], [c - b, a + d]] / sigma_from`. This agrees with
//! dlib's SVD to a few ulps, which disappear in the f32 cast of the shape
//! predictor and stay far below the chip geometry's tolerance.

use crate::geometry::Point;

/// A 2-D affine map `p -> m p + b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Affine {
    /// Row-major 2x2 linear part.
    pub m: [[f64; 2]; 2],
    /// Translation.
    pub b: [f64; 2],
}

impl Affine {
    /// Applies the map with dlib's operation order: `(m00 x + m01 y) + b0`.
    pub fn apply(&self, p: Point) -> Point {
        Point::new(
            self.m[0][0] * p.x + self.m[0][1] * p.y + self.b[0],
            self.m[1][0] * p.x + self.m[1][1] * p.y + self.b[1],
        )
    }
}

/// The similarity transform (rotation, uniform scale, translation) that maps
/// `from` onto `to` in the least-squares sense. Both slices have the same,
/// non-zero length.
pub(crate) fn similarity(from: &[Point], to: &[Point]) -> Affine {
    let n = from.len().min(to.len());
    if n == 0 {
        return Affine {
            m: [[1.0, 0.0], [0.0, 1.0]],
            b: [0.0, 0.0],
        };
    }
    let nf = n as f64;
    let (mut mfx, mut mfy, mut mtx, mut mty) = (0.0, 0.0, 0.0, 0.0);
    for (f, t) in from.iter().zip(to) {
        mfx += f.x;
        mfy += f.y;
        mtx += t.x;
        mty += t.y;
    }
    let (mfx, mfy, mtx, mty) = (mfx / nf, mfy / nf, mtx / nf, mty / nf);
    let mut sigma_from = 0.0;
    let mut cov = [[0.0f64; 2]; 2];
    for (f, t) in from.iter().zip(to) {
        let (fx, fy) = (f.x - mfx, f.y - mfy);
        let (tx, ty) = (t.x - mtx, t.y - mty);
        sigma_from += fx * fx + fy * fy;
        cov[0][0] += tx * fx;
        cov[0][1] += tx * fy;
        cov[1][0] += ty * fx;
        cov[1][1] += ty * fy;
    }
    sigma_from /= nf;
    for row in &mut cov {
        for v in row {
            *v /= nf;
        }
    }
    let p = cov[0][0] + cov[1][1];
    let q = cov[1][0] - cov[0][1];
    let m = if sigma_from != 0.0 {
        [
            [p / sigma_from, -q / sigma_from],
            [q / sigma_from, p / sigma_from],
        ]
    } else {
        // dlib keeps c = 1 and the rotation alone.
        let norm = (p * p + q * q).sqrt();
        if norm == 0.0 {
            [[1.0, 0.0], [0.0, 1.0]]
        } else {
            [[p / norm, -q / norm], [q / norm, p / norm]]
        }
    };
    let b = [
        mtx - (m[0][0] * mfx + m[0][1] * mfy),
        mty - (m[1][0] * mfx + m[1][1] * mfy),
    ];
    Affine { m, b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_an_exact_similarity() {
        let (s, th, tx, ty) = (1.7f64, 0.3f64, 5.0, -2.0);
        let from = [
            Point::new(0.0, 0.0),
            Point::new(3.0, 1.0),
            Point::new(-1.0, 4.0),
            Point::new(2.0, 2.0),
        ];
        let to: Vec<Point> = from
            .iter()
            .map(|p| {
                Point::new(
                    s * (th.cos() * p.x - th.sin() * p.y) + tx,
                    s * (th.sin() * p.x + th.cos() * p.y) + ty,
                )
            })
            .collect();
        let a = similarity(&from, &to);
        assert!((a.m[0][0] - s * th.cos()).abs() < 1e-12);
        assert!((a.m[1][0] - s * th.sin()).abs() < 1e-12);
        assert!((a.b[0] - tx).abs() < 1e-12 && (a.b[1] - ty).abs() < 1e-12);
    }

    #[test]
    fn a_mirrored_target_still_gives_a_rotation() {
        let from = [
            Point::new(0.0, 0.0),
            Point::new(1.0, 0.0),
            Point::new(0.0, 2.0),
        ];
        let to = [
            Point::new(0.0, 0.0),
            Point::new(-1.0, 0.0),
            Point::new(0.0, 2.0),
        ];
        let a = similarity(&from, &to);
        let det = a.m[0][0] * a.m[1][1] - a.m[0][1] * a.m[1][0];
        assert!(det >= 0.0);
    }
}
