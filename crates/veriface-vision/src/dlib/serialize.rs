//! dlib's portable serialization primitives (spec: `dlib-models.md` section 1).
//!
//! dlib files have no header or checksum, so every read is bounds-checked and
//! every error carries the byte offset at which it happened: a truncated or
//! corrupt model file must give a precise message, never a panic.

use std::borrow::Cow;

/// An error while reading a dlib-serialized stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: {reason}")]
pub struct FormatError {
    /// Byte offset of the field that could not be read.
    pub offset: usize,
    /// What was wrong with it.
    pub reason: Cow<'static, str>,
}

/// Result alias for deserialization.
pub type Result<T> = std::result::Result<T, FormatError>;

/// A DNN tensor as serialized by dlib (`resizable_tensor`, section 1.8).
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    /// `(num_samples, k, nr, nc)`.
    pub dims: [usize; 4],
    /// Row-major values.
    pub data: Vec<f32>,
}

impl RawTensor {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// A cursor over a dlib-serialized byte stream.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the first byte.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Current byte offset.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// An error at the current offset.
    pub fn error(&self, reason: impl Into<Cow<'static, str>>) -> FormatError {
        FormatError {
            offset: self.pos,
            reason: reason.into(),
        }
    }

    /// Fails unless every byte has been consumed.
    pub fn finish(&self) -> Result<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.error(format!("{} trailing bytes", self.remaining())))
        }
    }

    /// Reads `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error(format!(
                "unexpected end of data: wanted {n} bytes, {} left",
                self.remaining()
            )));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    /// Reads the control byte and magnitude of a variable-length integer.
    /// Returns `(negative, magnitude)`.
    fn int_parts(&mut self, max_bytes: usize, signed: bool) -> Result<(bool, u64)> {
        let start = self.pos;
        let ctrl = self.byte()?;
        let negative = ctrl & 0x80 != 0;
        let n = if signed { ctrl & 0x0F } else { ctrl & 0x8F } as usize;
        if n == 0 || n > max_bytes || ctrl & 0x70 != 0 {
            self.pos = start;
            return Err(self.error(format!("invalid integer control byte {ctrl:#04x}")));
        }
        let payload = self.bytes(n)?;
        let mag = payload
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        Ok((negative, mag))
    }

    /// Reads an unsigned integer of at most 8 bytes (`unsigned long`, `size_t`).
    pub fn u64(&mut self) -> Result<u64> {
        Ok(self.int_parts(8, false)?.1)
    }

    /// Reads an unsigned integer and converts it to `usize`.
    pub fn usize(&mut self) -> Result<usize> {
        let at = self.pos;
        let v = self.u64()?;
        usize::try_from(v).map_err(|_| FormatError {
            offset: at,
            reason: "integer does not fit in usize".into(),
        })
    }

    /// Reads a signed integer of at most `max_bytes` payload bytes.
    pub fn signed(&mut self, max_bytes: usize) -> Result<i64> {
        let at = self.pos;
        let (neg, mag) = self.int_parts(max_bytes, true)?;
        let v = i64::try_from(mag).map_err(|_| FormatError {
            offset: at,
            reason: "integer magnitude overflows i64".into(),
        })?;
        Ok(if neg { -v } else { v })
    }

    /// Reads a C `int` (at most 4 payload bytes).
    pub fn i32(&mut self) -> Result<i32> {
        let v = self.signed(4)?;
        i32::try_from(v).map_err(|_| self.error("int out of range"))
    }

    /// Reads a signed 64-bit integer (`long`, `int64`).
    pub fn i64(&mut self) -> Result<i64> {
        self.signed(8)
    }

    /// Reads a non-negative signed integer as `usize` (e.g. `long num_filters`).
    pub fn non_negative(&mut self) -> Result<usize> {
        let at = self.pos;
        let v = self.i64()?;
        usize::try_from(v).map_err(|_| FormatError {
            offset: at,
            reason: format!("expected a non-negative integer, got {v}").into(),
        })
    }

    /// Reads an `int` version field and checks it.
    pub fn expect_version(&mut self, expected: i32, what: &str) -> Result<()> {
        let at = self.pos;
        let v = self.i32()?;
        if v == expected {
            Ok(())
        } else {
            Err(FormatError {
                offset: at,
                reason: format!("{what}: unsupported version {v}, expected {expected}").into(),
            })
        }
    }

    /// Reads a float (mantissa `int64`, exponent `int16`) as f64 (section 1.2).
    pub fn f64(&mut self) -> Result<f64> {
        let at = self.pos;
        if let Some(&ctrl) = self.bytes.get(self.pos) {
            if ctrl & 0x70 != 0 {
                return Err(self.error("legacy ASCII float encoding is not supported"));
            }
        }
        let m = self.i64()?;
        let e = self.signed(2)?;
        Ok(match e {
            32000 => f64::INFINITY,
            32001 => f64::NEG_INFINITY,
            32002 => f64::NAN,
            e if (-1100..=1100).contains(&e) => ldexp(m as f64, e as i32),
            _ => {
                return Err(FormatError {
                    offset: at,
                    reason: format!("float exponent {e} out of range").into(),
                })
            }
        })
    }

    /// Reads a float field that is an f32 in dlib.
    pub fn f32(&mut self) -> Result<f32> {
        Ok(self.f64()? as f32)
    }

    /// Reads a bool (ASCII `'0'` or `'1'`).
    pub fn bool(&mut self) -> Result<bool> {
        match self.byte()? {
            b'1' => Ok(true),
            b'0' => Ok(false),
            b => {
                self.pos -= 1;
                Err(self.error(format!("invalid bool byte {b:#04x}")))
            }
        }
    }

    /// Reads a `std::string`.
    pub fn string(&mut self) -> Result<String> {
        let len = self.usize()?;
        let at = self.pos;
        let raw = self.bytes(len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| FormatError {
            offset: at,
            reason: "string is not UTF-8".into(),
        })
    }

    /// Reads a string and checks it equals `expected`.
    pub fn expect_string(&mut self, expected: &str) -> Result<()> {
        let at = self.pos;
        let s = self.string()?;
        if s == expected {
            Ok(())
        } else {
            Err(FormatError {
                offset: at,
                reason: format!("expected {expected:?}, found {s:?}").into(),
            })
        }
    }

    /// Reads a `dlib::matrix<float>` (section 1.6), returning `(rows, cols, values)`.
    pub fn matrix_f32(&mut self) -> Result<(usize, usize, Vec<f32>)> {
        let nr = self.i64()?.unsigned_abs() as usize;
        let nc = self.i64()?.unsigned_abs() as usize;
        let n = nr
            .checked_mul(nc)
            .filter(|&n| n <= self.remaining())
            .ok_or_else(|| self.error("matrix dimensions exceed the data"))?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.f32()?);
        }
        Ok((nr, nc, v))
    }

    /// Reads a DNN `resizable_tensor` (section 1.8).
    pub fn tensor(&mut self) -> Result<RawTensor> {
        self.expect_version(2, "tensor")?;
        let mut dims = [0usize; 4];
        for d in &mut dims {
            *d = self.non_negative()?;
        }
        let n = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .and_then(|n| n.checked_mul(4))
            .filter(|&b| b <= self.remaining())
            .ok_or_else(|| self.error("tensor dimensions exceed the data"))?;
        let raw = self.bytes(n)?;
        let data = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(RawTensor { dims, data })
    }

    /// Reads a DNN `alias_tensor` (section 1.9): its four dims.
    pub fn alias_tensor(&mut self) -> Result<[usize; 4]> {
        self.expect_version(1, "alias_tensor")?;
        let mut dims = [0usize; 4];
        for d in &mut dims {
            *d = self.non_negative()?;
        }
        Ok(dims)
    }
}

/// `m * 2^e`, exact for the exponents found in model files.
fn ldexp(m: f64, e: i32) -> f64 {
    if (-1022..=1023).contains(&e) {
        // 2^e is a normal f64: build it from its bits. `powi` here cost about
        // half of the shape predictor's 1.6 million-value load.
        m * f64::from_bits(((e + 1023) as u64) << 52)
    } else {
        // Split the scaling so that 2^e never overflows on its own.
        let half = e / 2;
        m * 2f64.powi(half) * 2f64.powi(e - half)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_documented_integer_examples() {
        let mut r = Reader::new(&[0x01, 0x02, 0x01, 0x96, 0x02, 0x80, 0x12, 0x01, 0x00]);
        assert_eq!(r.u64().unwrap(), 2);
        assert_eq!(r.u64().unwrap(), 150);
        assert_eq!(r.u64().unwrap(), 4736);
        assert_eq!(r.u64().unwrap(), 0);
        let mut r = Reader::new(&[0x81, 0x04, 0x81, 0x36]);
        assert_eq!(r.i32().unwrap(), -4);
        assert_eq!(r.i32().unwrap(), -54);
        r.finish().unwrap();
    }

    #[test]
    fn rejects_negative_flag_on_unsigned() {
        let mut r = Reader::new(&[0x81, 0x04]);
        assert!(r.u64().is_err());
        assert_eq!(r.offset(), 0);
    }

    #[test]
    fn reads_documented_float_examples() {
        let mut r = Reader::new(&[
            0x01, 0x10, 0x81, 0x04, 0x01, 0x10, 0x81, 0x05, 0x01, 0x80, 0x81, 0x07, 0x03, 0x0a,
            0xd7, 0xa3, 0x81, 0x1c,
        ]);
        assert_eq!(r.f64().unwrap(), 1.0);
        assert_eq!(r.f64().unwrap(), 0.5);
        assert_eq!(r.f32().unwrap(), 1.0);
        assert_eq!(r.f32().unwrap(), 0.04f32);
    }

    #[test]
    fn reads_string_and_bool() {
        let mut r = Reader::new(&[0x01, 0x05, b'c', b'o', b'n', b'_', b'4', b'1', b'0']);
        assert_eq!(r.string().unwrap(), "con_4");
        assert!(r.bool().unwrap());
        assert!(!r.bool().unwrap());
        assert!(Reader::new(b"x").bool().is_err());
    }

    #[test]
    fn reads_empty_tensor() {
        let mut r = Reader::new(&[1, 2, 1, 0, 1, 0, 1, 0, 1, 0]);
        let t = r.tensor().unwrap();
        assert!(t.is_empty());
        r.finish().unwrap();
    }

    #[test]
    fn truncated_tensor_is_an_error_not_a_panic() {
        let mut r = Reader::new(&[1, 2, 1, 1, 1, 1, 1, 1, 1, 2, 0, 0]);
        let e = r.tensor().unwrap_err();
        assert!(e.reason.contains("exceed"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let mut r = Reader::new(&bytes);
            let _ = r.f64();
            let _ = r.string();
            let _ = r.tensor();
            let _ = r.matrix_f32();
        }
    }
}
