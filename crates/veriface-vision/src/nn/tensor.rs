//! A dense single-image tensor in (channels, rows, cols) order.

/// A dense f32 tensor for one image: `data[(c * h + y) * w + x]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Channels.
    pub c: usize,
    /// Rows.
    pub h: usize,
    /// Columns.
    pub w: usize,
    /// Values, channel-major then row-major.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A zero-filled tensor.
    pub fn zeros(c: usize, h: usize, w: usize) -> Self {
        Self {
            c,
            h,
            w,
            data: vec![0.0; c * h * w],
        }
    }

    /// One channel plane.
    pub fn plane(&self, c: usize) -> &[f32] {
        let n = self.h * self.w;
        &self.data[c * n..(c + 1) * n]
    }

    /// One channel plane, mutable.
    pub fn plane_mut(&mut self, c: usize) -> &mut [f32] {
        let n = self.h * self.w;
        &mut self.data[c * n..(c + 1) * n]
    }

    /// The value at `(c, y, x)`.
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.h + y) * self.w + x]
    }
}
