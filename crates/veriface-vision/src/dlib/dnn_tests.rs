//! Unit tests for the DNN reader on small synthetic files; the real model
//! files are checked in `tests/dnn_files.rs`.

use super::*;

/// A minimal dlib writer for building test files.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn int(&mut self, v: i64) -> &mut Self {
        let mag = v.unsigned_abs();
        let bytes = mag.to_le_bytes();
        let n = (8 - (mag.leading_zeros() / 8) as usize).max(1);
        self.0.push(n as u8 | if v < 0 { 0x80 } else { 0 });
        self.0.extend_from_slice(&bytes[..n]);
        self
    }
    fn float(&mut self, v: f64) -> &mut Self {
        // v = m * 2^-20 exactly for the test values used here.
        self.int((v * 1048576.0) as i64).int(-20)
    }
    fn string(&mut self, s: &str) -> &mut Self {
        self.int(s.len() as i64);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn tensor(&mut self, dims: [i64; 4], data: &[f32]) -> &mut Self {
        self.int(2);
        for d in dims {
            self.int(d);
        }
        for v in data {
            self.0.extend_from_slice(&v.to_le_bytes());
        }
        self
    }
    fn alias(&mut self, dims: [i64; 4]) -> &mut Self {
        self.int(1);
        for d in dims {
            self.int(d);
        }
        self
    }
    fn trailer(&mut self, first: bool) -> &mut Self {
        self.0.extend_from_slice(b"110");
        for _ in 0..3 {
            self.tensor([0, 0, 0, 0], &[]);
        }
        if first {
            self.int(1);
        }
        self
    }
}

/// input -> con 2x1x3x3 -> tag -> bn -> relu -> fc(18 -> 2, bias).
fn tiny_file() -> Vec<u8> {
    let mut w = W::default();
    w.int(1).string("loss_metric_2").float(0.5).float(0.25);
    w.int(2).int(2).int(2).int(1).int(3);
    w.string("input_rgb_image_sized")
        .float(1.0)
        .float(2.0)
        .float(3.0)
        .int(3)
        .int(3);
    let conv: Vec<f32> = (0..20).map(|v| v as f32).collect();
    w.string("con_4").tensor([20, 1, 1, 1], &conv);
    w.int(2).int(3).int(3).int(1).int(1).int(1).int(1);
    w.alias([2, 1, 3, 3]).alias([1, 2, 1, 1]);
    for _ in 0..4 {
        w.float(1.0);
    }
    w.trailer(true);
    w.string("bn_con2")
        .tensor([4, 1, 1, 1], &[2.0, 4.0, 1.0, -1.0]);
    w.alias([1, 2, 1, 1]).alias([1, 2, 1, 1]);
    w.tensor([0, 0, 0, 0], &[]).tensor([0, 0, 0, 0], &[]);
    w.tensor([1, 2, 1, 1], &[0.5, 1.0])
        .tensor([1, 2, 1, 1], &[3.0, 15.0]);
    w.int(7).int(1000);
    for _ in 0..4 {
        w.float(1.0);
    }
    w.float(1.0).trailer(false);
    w.string("relu_").trailer(false);
    let fc: Vec<f32> = (0..38).map(|v| v as f32 * 0.5).collect();
    w.string("fc_2").int(2).int(18).tensor([38, 1, 1, 1], &fc);
    w.alias([18, 2, 1, 1]).alias([1, 2, 1, 1]).int(0);
    for _ in 0..4 {
        w.float(1.0);
    }
    w.trailer(false);
    w.0
}

#[test]
fn parses_a_synthetic_network() {
    let f = parse(&tiny_file()).unwrap();
    assert_eq!(
        f.loss,
        Loss::Metric {
            margin: 0.5,
            dist_thresh: 0.25
        }
    );
    assert_eq!(f.input.means(), [1.0, 2.0, 3.0]);
    assert_eq!(f.layers.len(), 5);
    let Layer::Conv(c) = &f.layers[0] else {
        panic!("{:?}", f.layers[0])
    };
    assert_eq!(
        (c.filters, c.in_channels, c.pad_y, c.stride_x),
        (2, 1, 1, 1)
    );
    assert_eq!(c.biases, vec![18.0, 19.0]);
    assert_eq!(f.layers[1], Layer::Marker);
    // bn folded: gamma' = gamma / sqrt(var + eps), eps = 1.
    let Layer::Affine(a) = &f.layers[2] else {
        panic!()
    };
    assert_eq!(a.gamma, vec![1.0, 1.0]);
    assert_eq!(a.beta, vec![1.0 - 0.5, -1.0 - 1.0]);
    assert_eq!(f.layers[3], Layer::Relu);
    let Layer::Fc(fc) = &f.layers[4] else {
        panic!()
    };
    assert_eq!((fc.inputs, fc.outputs), (18, 2));
    assert_eq!(fc.biases, Some(vec![18.0, 18.5]));
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = tiny_file();
    for n in 0..bytes.len() {
        assert!(parse(&bytes[..n]).is_err(), "prefix of {n} bytes parsed");
    }
}

#[test]
fn trailing_bytes_are_an_error() {
    let mut bytes = tiny_file();
    bytes.push(0);
    let e = parse(&bytes).unwrap_err();
    assert!(e.reason.contains("trailing"), "{e}");
}

proptest::proptest! {
    #[test]
    fn corrupted_files_never_panic(pos in 0usize..400, byte in proptest::num::u8::ANY) {
        let mut bytes = tiny_file();
        let at = pos % bytes.len();
        bytes[at] = byte;
        let _ = parse(&bytes);
    }
}
