//! Identity documents generated for tests: an ID card front (a real face
//! photo as the portrait, and optionally a smaller "ghost" copy as many
//! cards print) and a back carrying AAMVA driver-licence data in a PDF417
//! barcode, with the expiry date the test needs. The shared specimens are
//! all expired, so a session that must end `verified` needs these.

use image::{imageops, DynamicImage, Rgb, RgbImage};
use veriface_document::barcode::encode_pdf417;

/// Card size in pixels (ID-1 proportions, 85.6 x 54 mm).
pub const CARD: (u32, u32) = (1000, 640);

/// The front of an ID card: a light card with a coloured band, `photo`
/// as the portrait (scaled to 480 px wide) and, when `ghost`, a faded copy
/// at 60% of that size on the right.
///
/// # Panics
/// When `photo` is not a decodable image.
pub fn id_front(photo: &[u8], ghost: bool) -> RgbImage {
    id_front_with_ghost(photo, ghost.then_some((photo, PORTRAIT_WIDTH * 6 / 10)))
}

/// The portrait's width on [`id_front`] cards, in pixels.
pub const PORTRAIT_WIDTH: u32 = 480;

/// [`id_front`] whose ghost portrait is `ghost.0` scaled to `ghost.1`
/// pixels wide (possibly another person's photo: a test that the portrait
/// compared is the large one).
///
/// # Panics
/// When a photo is not a decodable image.
pub fn id_front_with_ghost(photo: &[u8], ghost: Option<(&[u8], u32)>) -> RgbImage {
    let load = |bytes: &[u8]| {
        image::load_from_memory(bytes)
            .unwrap_or_else(|e| panic!("decoding a portrait: {e}"))
            .to_rgb8()
    };
    let face = load(photo);
    let mut card = RgbImage::from_pixel(CARD.0, CARD.1, Rgb([236, 240, 232]));
    for y in 0..70 {
        for x in 0..CARD.0 {
            card.put_pixel(x, y, Rgb([40, 80, 150]));
        }
    }
    let w = PORTRAIT_WIDTH;
    let h = face.height() * w / face.width();
    let portrait = imageops::resize(&face, w, h, imageops::FilterType::Triangle);
    imageops::overlay(&mut card, &portrait, 40, 110);
    if let Some((ghost, gw)) = ghost {
        let ghost = load(ghost);
        let gh = ghost.height() * gw / ghost.width();
        let small = imageops::resize(&ghost, gw, gh, imageops::FilterType::Triangle);
        // Printed ghosts are pale: blend towards the card colour.
        let faded = RgbImage::from_fn(gw, gh, |x, y| {
            let p = small.get_pixel(x, y).0;
            Rgb([0, 1, 2].map(|i| ((u16::from(p[i]) * 3 + 236 * 2) / 5) as u8))
        });
        imageops::overlay(&mut card, &faded, i64::from(CARD.0 - gw - 40), 300);
    }
    card
}

/// AAMVA data as the standard lays it out (annex D): header, one `DL`
/// subfile designator with offset and length, then the elements separated
/// by LF and ended by CR.
pub fn aamva_text(elements: &[(&str, &str)]) -> String {
    let body = format!(
        "DL{}\r",
        elements
            .iter()
            .map(|(id, v)| format!("{id}{v}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut header = "@\n\u{1e}\rANSI 636014100001".to_string();
    let offset = header.len() + 10;
    header.push_str(&format!("DL{offset:04}{:04}", body.len()));
    header + &body
}

/// A licence holder's AAMVA elements with this expiry (`MMDDYYYY`).
pub fn licence(expiry_mmddyyyy: &str) -> String {
    aamva_text(&[
        ("DCA", "C"),
        ("DCB", "NONE"),
        ("DCD", "NONE"),
        ("DBA", expiry_mmddyyyy),
        ("DCS", "SAMPLE"),
        ("DAC", "ALEX"),
        ("DAD", "J"),
        ("DBD", "01152024"),
        ("DBB", "07041990"),
        ("DBC", "1"),
        ("DAY", "BRO"),
        ("DAU", "070 IN"),
        ("DAG", "1 MAIN STREET"),
        ("DAI", "ANYTOWN"),
        ("DAJ", "CA"),
        ("DAK", "958150000"),
        ("DAQ", "D1234567"),
        ("DCF", "0000000000000000"),
        ("DCG", "USA"),
        ("DDE", "N"),
        ("DDF", "N"),
        ("DDG", "N"),
    ])
}

/// The back of an ID card: the PDF417 of `aamva` on the card.
///
/// # Panics
/// When the text does not fit a PDF417 symbol.
pub fn id_back(aamva: &str) -> RgbImage {
    let symbol = encode_pdf417(aamva, 3).unwrap_or_else(|e| panic!("encoding the PDF417: {e}"));
    let mut card = RgbImage::from_pixel(CARD.0, CARD.1, Rgb([236, 240, 232]));
    let symbol = DynamicImage::ImageLuma8(symbol).to_rgb8();
    let (w, h) = (
        symbol.width().min(CARD.0 - 40),
        symbol.height().min(CARD.1 - 40),
    );
    let symbol = if (w, h) == (symbol.width(), symbol.height()) {
        symbol
    } else {
        imageops::resize(&symbol, w, h, imageops::FilterType::Nearest)
    };
    let x = (CARD.0 - symbol.width()) / 2;
    let y = (CARD.1 - symbol.height()) / 2;
    imageops::overlay(&mut card, &symbol, i64::from(x), i64::from(y));
    card
}

/// An image as JPEG bytes (quality 92, as a phone camera page sends).
///
/// # Panics
/// When encoding fails.
pub fn jpeg(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
        .encode_image(img)
        .unwrap_or_else(|e| panic!("encoding JPEG: {e}"));
    out.into_inner()
}
