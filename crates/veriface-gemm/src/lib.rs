//! A safe f32 matrix multiply over slices, wrapping [`gemm`].
//!
//! The `gemm` crate's only entry point is an `unsafe fn` taking raw pointers
//! and strides. The engine crate forbids `unsafe`, so this crate checks every
//! index the multiply can touch against the slices' lengths and then makes
//! the one call. It always runs single-threaded
//! ([`gemm::Parallelism::None`]): callers parallelise at a coarser grain with
//! rayon, so that a 1-thread rayon pool really is single-threaded.
//!
//! ```
//! let a = [1.0, 2.0, 3.0, 4.0]; // 2x2
//! let b = [5.0, 6.0, 7.0, 8.0]; // 2x2
//! let mut c = [0.0f32; 4];
//! let lhs = veriface_gemm::MatRef { data: &a, row_stride: 2 };
//! let rhs = veriface_gemm::MatRef { data: &b, row_stride: 2 };
//! veriface_gemm::matmul(&mut c, 2, lhs, rhs, 2, 2, 2).unwrap();
//! assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
//! ```

/// A row-major matrix view: element `(i, j)` is `data[i * row_stride + j]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    /// The backing values; the view starts at index 0.
    pub data: &'a [f32],
    /// Distance between consecutive rows.
    pub row_stride: usize,
}

/// A matrix does not fit in the slice given for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapeError {
    /// Which operand: "dst", "lhs" or "rhs".
    pub operand: &'static str,
}

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "matrix {} does not fit in its slice", self.operand)
    }
}

impl std::error::Error for ShapeError {}

/// True when an `rows x cols` matrix with the given strides fits in `len`
/// values and every stride/offset is representable as `isize`.
fn fits(len: usize, rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    let last = (rows - 1)
        .checked_mul(row_stride)
        .zip((cols - 1).checked_mul(col_stride))
        .and_then(|(a, b)| a.checked_add(b));
    matches!(last, Some(l) if l < len && l <= isize::MAX as usize)
}

/// True when distinct `(i, j)` map to distinct indices (no element of `dst`
/// is written twice), for the two layouts callers use.
fn distinct(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> bool {
    rows <= 1 && (cols <= 1 || col_stride >= 1)
        || cols <= 1 && row_stride >= 1
        || col_stride >= 1 && row_stride >= cols.saturating_mul(col_stride)
        || row_stride >= 1 && col_stride >= rows.saturating_mul(row_stride)
}

/// `dst[i][j] = sum_k lhs[i][k] * rhs[k][j]` for an `m x n` result with
/// `k` terms, stored row-major (`dst[i * dst_row_stride + j]`).
///
/// # Errors
///
/// [`ShapeError`] when an operand's extent exceeds its slice (or rows of
/// `dst` would overlap); nothing is written then.
pub fn matmul(
    dst: &mut [f32],
    dst_row_stride: usize,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    m: usize,
    n: usize,
    k: usize,
) -> Result<(), ShapeError> {
    matmul_strided(dst, dst_row_stride, 1, lhs, rhs, m, n, k)
}

/// [`matmul`] with an arbitrary destination layout:
/// `dst[i * dst_row_stride + j * dst_col_stride]`. gemm's microkernel runs
/// along the destination's contiguous axis, so choosing the layout chooses
/// which of `m` and `n` gets the wide SIMD register blocking.
///
/// # Errors
///
/// [`ShapeError`] when an operand exceeds its slice or two `dst` elements
/// would share an index; nothing is written then.
#[allow(clippy::too_many_arguments)]
pub fn matmul_strided(
    dst: &mut [f32],
    dst_row_stride: usize,
    dst_col_stride: usize,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    m: usize,
    n: usize,
    k: usize,
) -> Result<(), ShapeError> {
    if !fits(dst.len(), m, n, dst_row_stride, dst_col_stride)
        || !distinct(m, n, dst_row_stride, dst_col_stride)
    {
        return Err(ShapeError { operand: "dst" });
    }
    if !fits(lhs.data.len(), m, k, lhs.row_stride, 1) {
        return Err(ShapeError { operand: "lhs" });
    }
    if !fits(rhs.data.len(), k, n, rhs.row_stride, 1) {
        return Err(ShapeError { operand: "rhs" });
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                dst[i * dst_row_stride + j * dst_col_stride] = 0.0;
            }
        }
        return Ok(());
    }
    // SAFETY: `fits` proved that every index gemm reads or writes,
    // `i * row_stride + j * col_stride` for i < rows, j < cols, lies inside
    // the corresponding slice, and that it fits in isize. `distinct` proved
    // no two dst elements alias. `dst` is borrowed mutably, so it aliases
    // neither input. read_dst = false, so dst's prior contents are not read.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_col_stride as isize,
            dst_row_stride as isize,
            false,
            lhs.data.as_ptr(),
            1,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            1,
            rhs.row_stride as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_product_with_strides() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * 4).map(|v| v as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..k * 9).map(|v| (v % 5) as f32 - 1.5).collect();
        let mut c = vec![-1.0f32; m * 10];
        let lhs = MatRef {
            data: &a,
            row_stride: 4,
        };
        let rhs = MatRef {
            data: &b,
            row_stride: 9,
        };
        matmul(&mut c, 10, lhs, rhs, m, n, k).unwrap();
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|t| a[i * 4 + t] * b[t * 9 + j]).sum();
                assert!((c[i * 10 + j] - want).abs() < 1e-5);
            }
            assert_eq!(c[i * 10 + 7], -1.0, "padding columns untouched");
        }
    }

    #[test]
    fn rejects_operands_that_do_not_fit() {
        let a = [0.0f32; 6];
        let mut c = [0.0f32; 3];
        let v = MatRef {
            data: &a,
            row_stride: 3,
        };
        assert!(matmul(&mut c, 3, v, v, 2, 3, 3).is_err());
        assert!(matmul(&mut c, 1, v, v, 1, 3, 2).is_ok());
        assert!(matmul_strided(&mut c, 1, 1, v, v, 1, 3, 2).is_ok());
        let mut big = [0.0f32; 9];
        assert!(matmul_strided(&mut big, 1, 1, v, v, 2, 2, 1).is_err());
    }

    #[test]
    fn column_major_destination_matches_row_major() {
        let a: Vec<f32> = (0..12).map(|v| v as f32 - 5.0).collect(); // 3x4
        let b: Vec<f32> = (0..20).map(|v| (v % 7) as f32).collect(); // 4x5
        let (lhs, rhs) = (
            MatRef {
                data: &a,
                row_stride: 4,
            },
            MatRef {
                data: &b,
                row_stride: 5,
            },
        );
        let mut row = [0.0f32; 15];
        let mut col = [0.0f32; 15];
        matmul(&mut row, 5, lhs, rhs, 3, 5, 4).unwrap();
        matmul_strided(&mut col, 1, 3, lhs, rhs, 3, 5, 4).unwrap();
        for i in 0..3 {
            for j in 0..5 {
                assert_eq!(row[i * 5 + j], col[i + j * 3]);
            }
        }
    }
}
