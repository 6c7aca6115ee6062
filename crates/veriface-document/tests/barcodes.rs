//! PDF417: the shared specimen symbols decode to their sidecar bytes, and
//! AAMVA driver-licence data written from known fields into a PDF417 (with
//! rxing's encoder), rendered, decoded and parsed gives the fields back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use image::{imageops, GrayImage, Luma};
use veriface_document::aamva::parse_aamva;
use veriface_document::barcode::{decode_pdf417, encode_pdf417};
use veriface_document::crosscheck::{cross_check, Reason};
use veriface_document::date::Date;
use veriface_document::mrz::{compose, parse, MrzData, MrzFormat};

#[test]
fn every_specimen_pdf417_decodes_to_its_sidecar_text() {
    let specimens: Vec<_> = common::manifest()
        .into_iter()
        .filter(|s| s.kind == "pdf417")
        .collect();
    assert_eq!(specimens.len(), 9);
    for s in specimens {
        let expected = common::sidecar(&s.file);
        let img = imageops::grayscale(&common::image(&s.file));
        let got = decode_pdf417(&img).unwrap_or_else(|| panic!("{}: no PDF417 decoded", s.file));
        assert_eq!(got.format, "PDF417");
        assert_eq!(got.text.as_bytes(), &expected[..], "{}", s.file);
    }
}

#[test]
fn an_image_without_a_barcode_decodes_to_nothing() {
    let img = imageops::grayscale(&common::image("negative/passporteye__pacman.jpg"));
    assert!(decode_pdf417(&img).is_none());
}

/// AAMVA text built the way the standard lays it out (annex D): header,
/// subfile designators with offsets and lengths, then each subfile's
/// elements separated by LF and ended by CR. Written independently of the
/// parser so that the test checks the parser against the standard.
fn aamva_text(version: u8, iin: &str, subfiles: &[(&str, Vec<(&str, &str)>)]) -> String {
    let mut header = format!("@\n\u{1e}\rANSI {iin}{version:02}");
    if version >= 2 {
        header.push_str("00");
    }
    header.push_str(&format!("{:02}", subfiles.len()));
    let bodies: Vec<String> = subfiles
        .iter()
        .map(|(kind, elements)| {
            let joined: Vec<String> = elements.iter().map(|(id, v)| format!("{id}{v}")).collect();
            format!("{kind}{}\r", joined.join("\n"))
        })
        .collect();
    let mut offset = header.len() + 10 * subfiles.len();
    for ((kind, _), body) in subfiles.iter().zip(&bodies) {
        header.push_str(&format!("{kind}{offset:04}{:04}", body.len()));
        offset += body.len();
    }
    header + &bodies.concat()
}

/// Renders, decodes and returns the text: the round trip through pixels.
fn through_pdf417(text: &str, rotate: bool) -> String {
    let symbol = encode_pdf417(text, 2).unwrap();
    // On a white card with some margin, as a scan would show it.
    let mut card = GrayImage::from_pixel(symbol.width() + 80, symbol.height() + 120, Luma([250]));
    imageops::overlay(&mut card, &symbol, 40, 60);
    let card = if rotate {
        imageops::rotate90(&card)
    } else {
        card
    };
    decode_pdf417(&card)
        .expect("the generated PDF417 decodes")
        .text
}

fn d(s: &str) -> Option<Date> {
    Some(Date::parse_iso(s).unwrap())
}

#[test]
fn us_licence_fields_survive_encoding_decoding_and_parsing() {
    let text = aamva_text(
        10,
        "636014",
        &[(
            "DL",
            vec![
                ("DCA", "C"),
                ("DCB", "NONE"),
                ("DCD", "NONE"),
                ("DBA", "01312030"),
                ("DCS", "ERIKSSON"),
                ("DAC", "ANNA"),
                ("DAD", "MARIA"),
                ("DBD", "02012022"),
                ("DBB", "08121974"),
                ("DBC", "2"),
                ("DAY", "BLU"),
                ("DAU", "067 IN"),
                ("DAG", "2570 24TH STREET"),
                ("DAI", "ANYTOWN"),
                ("DAJ", "CA"),
                ("DAK", "958151234"),
                ("DAQ", "F1234567"),
                ("DCF", "00/00/0000NNNAN/ANFD/YY"),
                ("DCG", "USA"),
                ("DDE", "N"),
                ("DDF", "N"),
                ("DDG", "N"),
            ],
        )],
    );
    let decoded = through_pdf417(&text, false);
    assert_eq!(
        decoded, text,
        "PDF417 keeps every byte, control characters included"
    );
    let rec = parse_aamva(&decoded).unwrap();
    assert_eq!(rec.issuer_id, "636014");
    assert_eq!(rec.version, 10);
    assert_eq!(rec.jurisdiction_version, Some(0));
    assert_eq!(rec.subfiles.len(), 1);
    assert_eq!(rec.subfiles[0].kind, "DL");
    assert_eq!(rec.subfiles[0].elements.len(), 22);
    let f = rec.fields();
    assert_eq!(f.family_name.as_deref(), Some("ERIKSSON"));
    assert_eq!(f.first_name.as_deref(), Some("ANNA"));
    assert_eq!(f.middle_names.as_deref(), Some("MARIA"));
    assert_eq!(f.birth_date, d("1974-08-12"), "MMDDCCYY in the USA");
    assert_eq!(f.expiry_date, d("2030-01-31"));
    assert_eq!(f.issue_date, d("2022-02-01"));
    assert_eq!(f.sex, Some("F"));
    assert_eq!(f.document_number.as_deref(), Some("F1234567"));
    assert_eq!(f.street.as_deref(), Some("2570 24TH STREET"));
    assert_eq!(f.city.as_deref(), Some("ANYTOWN"));
    assert_eq!(f.state.as_deref(), Some("CA"));
    assert_eq!(f.postal_code.as_deref(), Some("958151234"));
    assert_eq!(f.country.as_deref(), Some("USA"));
    assert_eq!(rec.element("DAU"), Some("067 IN"));
}

#[test]
fn canadian_dates_are_year_first_and_jurisdiction_subfiles_are_kept() {
    let text = aamva_text(
        8,
        "636012",
        &[
            (
                "DL",
                vec![
                    ("DAQ", "E1234-56789-01234"),
                    ("DCS", "TREMBLAY"),
                    ("DAC", "JOSÉE"),
                    ("DBB", "19850509"),
                    ("DBA", "20310509"),
                    ("DBC", "2"),
                    ("DAJ", "ON"),
                    ("DCG", "CAN"),
                ],
            ),
            ("ZO", vec![("ZOA", "JURISDICTION SPECIFIC"), ("ZOB", "42")]),
        ],
    );
    let rec = parse_aamva(&through_pdf417(&text, true)).unwrap();
    assert_eq!(rec.subfiles.len(), 2);
    assert_eq!(rec.subfiles[1].kind, "ZO");
    assert_eq!(rec.element("ZOB"), Some("42"));
    let f = rec.fields();
    assert_eq!(f.birth_date, d("1985-05-09"), "CCYYMMDD in Canada");
    assert_eq!(f.expiry_date, d("2031-05-09"));
    assert_eq!(f.first_name.as_deref(), Some("JOSÉE"));
}

#[test]
fn version_one_records_have_no_jurisdiction_version_and_a_combined_name() {
    let text = aamva_text(
        1,
        "636020",
        &[(
            "DL",
            vec![
                ("DAA", "PUBLIC,JOHN,QUINCY"),
                ("DAQ", "123456789"),
                ("DBB", "19700101"),
                ("DBA", "20300101"),
                ("DBC", "M"),
            ],
        )],
    );
    let rec = parse_aamva(&through_pdf417(&text, false)).unwrap();
    assert_eq!(rec.version, 1);
    assert_eq!(rec.jurisdiction_version, None);
    let f = rec.fields();
    assert_eq!(f.family_name.as_deref(), Some("PUBLIC"));
    assert_eq!(f.first_name.as_deref(), Some("JOHN"));
    assert_eq!(f.middle_names.as_deref(), Some("QUINCY"));
    assert_eq!(f.sex, Some("M"));
    assert_eq!(
        f.birth_date,
        d("1970-01-01"),
        "a year-first date read without a country"
    );
}

#[test]
fn wrong_subfile_offsets_are_recovered_by_searching_for_the_subfile() {
    let good = aamva_text(
        9,
        "636014",
        &[("DL", vec![("DAQ", "X1"), ("DCS", "DOE"), ("DAC", "JANE")])],
    );
    // Offset 0999 points nowhere.
    let bad = good.replacen("DL0", "DL9", 1);
    assert_ne!(bad, good);
    let rec = parse_aamva(&bad).unwrap();
    assert_eq!(rec.fields().family_name.as_deref(), Some("DOE"));
}

#[test]
fn mrz_and_barcode_of_one_person_cross_check_clean_and_a_different_name_is_reported() {
    let today = Date::new(2026, 1, 1).unwrap();
    let lines = compose(
        MrzFormat::Td1,
        &MrzData {
            document_code: "ID".into(),
            issuing_state: "USA".into(),
            surname: "ERIKSSON".into(),
            given_names: "ANNA MARIA".into(),
            document_number: "F1234567".into(),
            nationality: "USA".into(),
            birth_date: "740812".into(),
            sex: 'F',
            expiry_date: "300131".into(),
            ..MrzData::default()
        },
    );
    let mrz = parse(&lines.join("\n")).unwrap();
    assert!(mrz.is_valid());
    let licence = |family: &str, birth: &str| {
        let text = aamva_text(
            10,
            "636014",
            &[(
                "DL",
                vec![
                    ("DCS", family),
                    ("DAC", "Anna"),
                    ("DBB", birth),
                    ("DBA", "01312030"),
                    ("DCG", "USA"),
                ],
            )],
        );
        parse_aamva(&through_pdf417(&text, false)).unwrap()
    };
    let same = licence("Eriksson", "08121974");
    assert_eq!(
        cross_check(Some(&mrz), Some(&same), today),
        Vec::<Reason>::new()
    );
    let other = licence("Ericsson", "08131974");
    assert_eq!(
        cross_check(Some(&mrz), Some(&other), today),
        vec![
            Reason::MrzBarcodeNameMismatch,
            Reason::MrzBarcodeBirthDateMismatch
        ]
    );
    let later = Date::new(2030, 2, 1).unwrap();
    assert_eq!(
        cross_check(Some(&mrz), Some(&same), later),
        vec![Reason::DocumentExpired]
    );
    assert_eq!(
        cross_check(None, None, today),
        vec![Reason::DocumentUnreadable]
    );
}

#[test]
fn the_document_reader_finds_and_parses_an_aamva_barcode_on_a_licence_back() {
    let text = aamva_text(
        10,
        "636014",
        &[(
            "DL",
            vec![
                ("DAQ", "F1234567"),
                ("DCS", "PUBLIC"),
                ("DAC", "JANE"),
                ("DBB", "07041990"),
                ("DBA", "07042031"),
                ("DCG", "USA"),
            ],
        )],
    );
    let symbol = encode_pdf417(&text, 2).unwrap();
    let mut back = GrayImage::from_pixel(symbol.width() + 200, symbol.height() + 300, Luma([235]));
    imageops::overlay(&mut back, &symbol, 100, 200);
    let rgb = image::DynamicImage::ImageLuma8(back).to_rgb8();
    let mut reader = veriface_document::DocumentReader::new().unwrap();
    let reading = reader.read(&rgb, Date::new(2026, 1, 1).unwrap());
    assert!(reading.mrz.is_none(), "a licence back has no MRZ");
    assert_eq!(reading.barcodes.len(), 1);
    assert_eq!(reading.barcodes[0].text, text);
    let aamva = reading.aamva.expect("the barcode is AAMVA data");
    assert_eq!(aamva.fields().birth_date, d("1990-07-04"));
    assert_eq!(
        cross_check(None, Some(&aamva), Date::new(2026, 1, 1).unwrap()),
        Vec::<Reason>::new()
    );
    assert!(reading.timings.barcode_ms >= 0.0 && reading.timings.mrz_ms > 0.0);
}
