//! Checks the detector's pyramid layout against the intermediate values of
//! `shared/data/golden/traces/mmod_angelina_img5.json` (a numpy port whose
//! final boxes equal dlib's, `dlib-models.md` section 11).

mod common;

use veriface_vision::detect::layout::PyramidLayout;

#[test]
fn pyramid_layout_matches_trace() {
    let trace: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::shared_dir().join("data/golden/traces/mmod_angelina_img5.json"))
            .unwrap(),
    )
    .unwrap();
    let hw = &trace["upsampled_size_hw"];
    let (h, w) = (
        hw[0].as_u64().unwrap() as usize,
        hw[1].as_u64().unwrap() as usize,
    );
    let layout = PyramidLayout::new(h, w);
    let expected: Vec<[i64; 4]> =
        serde_json::from_value(trace["pyramid_rects_ltrb"].clone()).unwrap();
    let got: Vec<[i64; 4]> = layout
        .levels
        .iter()
        .map(|r| [r.left, r.top, r.right, r.bottom])
        .collect();
    assert_eq!(got, expected);
    let chw = &trace["input_tensor_chw"];
    assert_eq!(layout.rows as u64, chw[1].as_u64().unwrap());
    assert_eq!(layout.cols as u64, chw[2].as_u64().unwrap());
}
