//! The DNN reader on the two real model files, checked against the facts of
//! `dlib-models.md` sections 2, 4.1 and 6.1 and against
//! `traces/serialization_vectors.json` (values decoded by the numpy port).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use veriface_vision::dlib::dnn::{parse, InputLayer, Layer, Loss};

fn kinds(layers: &[Layer]) -> String {
    layers
        .iter()
        .map(|l| match l {
            Layer::Conv(_) => 'C',
            Layer::Affine(_) => 'A',
            Layer::Relu => 'R',
            Layer::MaxPool(_) => 'M',
            Layer::AvgPool(_) => 'P',
            Layer::AddPrev => '+',
            Layer::Fc(_) => 'F',
            Layer::Marker => 'T',
        })
        .collect()
}

fn vectors(model: &str) -> Vec<serde_json::Value> {
    let p = common::shared_dir().join("data/golden/traces/serialization_vectors.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    v[model].as_array().unwrap().clone()
}

fn vector_at(vs: &[serde_json::Value], offset: u64) -> serde_json::Value {
    vs.iter()
        .find(|e| e["offset"] == offset)
        .unwrap_or_else(|| panic!("no vector at {offset}"))["value"]
        .clone()
}

#[test]
fn parses_the_face_resnet_with_documented_layer_counts() {
    let f = parse(&common::model_bytes(
        "dlib_face_recognition_resnet_model_v1.dat",
    ))
    .unwrap();
    let k = kinds(&f.layers);
    assert_eq!(k.len(), 130);
    let count = |c| k.chars().filter(|&x| x == c).count();
    assert_eq!(
        [
            count('C'),
            count('A'),
            count('R'),
            count('+'),
            count('P'),
            count('M'),
            count('F'),
            count('T')
        ],
        [29, 29, 29, 14, 5, 1, 1, 22]
    );
    assert_eq!(
        f.loss,
        Loss::Metric {
            margin: 0.04,
            dist_thresh: 0.6
        }
    );
    assert_eq!(
        f.input,
        InputLayer::RgbImageSized {
            means: [122.782, 117.001, 104.298],
            rows: 150,
            cols: 150
        }
    );
    let params: usize = f
        .layers
        .iter()
        .map(|l| match l {
            Layer::Conv(c) => c.weights.len() + c.biases.len(),
            Layer::Affine(a) => a.gamma.len() + a.beta.len(),
            Layer::Fc(fc) => fc.weights.len() + fc.biases.as_ref().map_or(0, Vec::len),
            _ => 0,
        })
        .sum();
    assert_eq!(params, 5_614_592);
    let vs = vectors("dlib_face_recognition_resnet_model_v1.dat");
    let Layer::Conv(c) = &f.layers[0] else {
        panic!()
    };
    assert_eq!(
        (c.filters, c.in_channels, c.kernel_h, c.stride_y, c.pad_y),
        (32, 3, 7, 2, 0)
    );
    let first4: Vec<f32> = vector_at(&vs, 341)["first4"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(&c.weights[..4], &first4[..]);
    let Layer::Fc(fc) = f.layers.last().unwrap() else {
        panic!()
    };
    assert_eq!(
        (fc.inputs, fc.outputs, fc.biases.is_none()),
        (256, 128, true)
    );
}

#[test]
fn parses_the_mmod_detector_and_folds_batch_norm() {
    let f = parse(&common::model_bytes("mmod_human_face_detector.dat")).unwrap();
    assert_eq!(kinds(&f.layers), "CARCARCARCARCARCARC");
    let Loss::Mmod(o) = &f.loss else { panic!() };
    assert_eq!((o.window_width, o.window_height), (80, 80));
    assert_eq!(o.nms_iou_thresh, 0.3382761351109955);
    assert_eq!(o.nms_percent_covered_thresh, 1.0);
    assert_eq!(
        f.input,
        InputLayer::RgbImagePyramid {
            means: [122.782, 117.001, 104.298],
            padding: 10,
            outer_padding: 11
        }
    );
    let params: usize = f
        .layers
        .iter()
        .map(|l| match l {
            Layer::Conv(c) => c.weights.len() + c.biases.len(),
            Layer::Affine(a) => a.gamma.len() + a.beta.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(params, 181_141);
    let shapes: Vec<_> = f
        .layers
        .iter()
        .filter_map(|l| match l {
            Layer::Conv(c) => Some((c.filters, c.kernel_h, c.stride_y, c.pad_y)),
            _ => None,
        })
        .collect();
    assert_eq!(
        shapes,
        [
            (16, 5, 2, 0),
            (32, 5, 2, 0),
            (32, 5, 2, 0),
            (45, 5, 1, 2),
            (45, 5, 1, 2),
            (45, 5, 1, 2),
            (1, 9, 1, 4)
        ]
    );
    // The first bn's raw gamma starts 0.99980360...; folding divides by
    // sqrt(var + 1e-4), so it must change but stay finite.
    let Layer::Affine(a) = &f.layers[1] else {
        panic!()
    };
    assert_eq!(a.gamma.len(), 16);
    assert!(a.gamma.iter().chain(&a.beta).all(|v| v.is_finite()));
    assert_ne!(a.gamma[0], 0.999_803_6);
}

#[test]
fn truncated_and_extended_model_files_are_errors() {
    let bytes = common::model_bytes("mmod_human_face_detector.dat");
    for n in (0..bytes.len()).step_by(997).chain([bytes.len() - 1]) {
        assert!(parse(&bytes[..n]).is_err(), "prefix {n} parsed");
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[1, 0]);
    assert!(parse(&longer).is_err());
}
