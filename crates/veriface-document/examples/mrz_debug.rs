#![allow(clippy::unwrap_used, missing_docs)]
use image::imageops;
use veriface_document::ocr::locate::find_bands;
use veriface_document::ocr::MrzOcr;

fn main() {
    let mut ocr = MrzOcr::new().unwrap();
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).unwrap();
        let img = veriface_vision::decode::decode(&bytes, &Default::default())
            .unwrap()
            .image;
        let g = imageops::grayscale(&img);
        let s = 800.0 / g.width() as f32;
        let small = imageops::resize(
            &g,
            (g.width() as f32 * s) as u32,
            (g.height() as f32 * s) as u32,
            imageops::FilterType::Triangle,
        );
        let bands = find_bands(&small);
        println!("{path} {}x{} bands {}", g.width(), g.height(), bands.len());
        for b in bands.iter().take(5) {
            println!("  {:?} lh {:.1} lines {}", b.rect, b.line_height, b.lines);
        }
        let r = ocr.read_mrz(
            &img,
            veriface_document::date::Date::new(2026, 1, 1).unwrap(),
        );
        println!(
            "  => {:?}",
            r.map(|r| (r.mrz.lines, r.raw_lines, r.rotation))
        );
    }
}
