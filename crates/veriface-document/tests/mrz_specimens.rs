//! Every MRZ of the shared specimen set (`data/documents/`, see its README
//! and manifest) parses to its sidecar lines and to the fields read off the
//! document, with every check digit valid; corrupted variants are rejected.
//!
//! The expected fields of the four PassportEye `tests/data` images are the
//! values that repository's `tests/mrz_test.py` asserts; the others were
//! read off the printed (non-MRZ) zone of each specimen and agree with the
//! manual transcription in the manifest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use veriface_document::date::Date;
use veriface_document::mrz::check_digit;
use veriface_document::mrz::{
    parse, parse_with, CheckField, MrzError, MrzFormat, ParseOptions, Sex,
};

/// file, format, code, state, surname, given names, number, nationality,
/// birth, sex, expiry, optional data.
type Row = (
    &'static str,
    MrzFormat,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Sex,
    &'static str,
    &'static str,
);

use MrzFormat::{MrvA, MrvB, Td1, Td2, Td3};
use Sex::{Female as F, Male as M, Unspecified as X};

const EXPECTED: &[Row] = &[
    (
        "passporteye__passport-td3.jpg",
        Td3,
        "P",
        "UTO",
        "ERIKSSON",
        "ANNA MARIA",
        "L898902C3",
        "UTO",
        "1974-08-12",
        F,
        "2012-04-15",
        "ZE184226B",
    ),
    (
        "passporteye__passport-td3.png",
        Td3,
        "P",
        "UTO",
        "ERIKSSON",
        "ANNA MARIA",
        "L898902C3",
        "UTO",
        "1974-08-12",
        F,
        "2012-04-15",
        "ZE184226B",
    ),
    (
        "passporteye__passport-td2.jpg",
        Td2,
        "I",
        "UTO",
        "ERIKSSON",
        "ANNA MARIA",
        "D23145890",
        "UTO",
        "1974-08-12",
        F,
        "2012-04-15",
        "",
    ),
    (
        "passporteye__passport-td2.png",
        Td2,
        "I",
        "UTO",
        "ERIKSSON",
        "ANNA MARIA",
        "D23145890",
        "UTO",
        "1974-08-12",
        F,
        "2012-04-15",
        "",
    ),
    (
        "passporteye__0_pass-lva.jpg",
        Td3,
        "PA",
        "LVA",
        "MOHAMADA",
        "FARIDA",
        "LT0000000",
        "XXC",
        "1986-05-10",
        F,
        "2012-10-31",
        "111111<11648",
    ),
    (
        "passporteye__100_id-che.jpg",
        Td1,
        "ID",
        "CHE",
        "VADIS",
        "QUO",
        "S0002068",
        "CHE",
        "1981-02-28",
        F,
        "2013-01-01",
        "",
    ),
    (
        "passporteye__100_id-rou.jpg",
        Td2,
        "ID",
        "ROU",
        "SAVA",
        "SUPERMAN",
        "HD198025",
        "132",
        "1985-05-09",
        M,
        "2013-05-09",
        "1204994",
    ),
    (
        "passporteye__100_id-usa.jpg",
        Td1,
        "IA",
        "USA",
        "SPECIMEN",
        "TEST VOID",
        "000000003",
        "COD",
        "1958-08-17",
        F,
        "2010-04-02",
        "LIN1044750079",
    ),
    (
        "passporteye__100_pass-bdr.jpg",
        Td3,
        "P",
        "BDR",
        "MUSTERMANN",
        "ERIKA",
        "CA000000",
        "D",
        "1964-08-12",
        F,
        "2018-02-21",
        "",
    ),
    (
        "passporteye__100_pass-chn.jpg",
        Td3,
        "P",
        "TWN",
        "LIN",
        "MEI HUA",
        "000000000",
        "TWN",
        "1976-01-01",
        F,
        "2014-04-01",
        "A234567893",
    ),
    (
        "passporteye__100_pass-cze.jpg",
        Td3,
        "P",
        "CZE",
        "SPECIMEN",
        "VZOR",
        "99003853",
        "CZE",
        "2011-01-01",
        M,
        "2012-07-04",
        "110101111",
    ),
    (
        "passporteye__100_pass-cze2.jpg",
        Td3,
        "P",
        "CZE",
        "SPECIMEN",
        "VZOR",
        "99009054",
        "CZE",
        "1969-06-22",
        F,
        "2016-07-29",
        "6956220612",
    ),
    (
        "passporteye__100_pass-hrv.jpg",
        Td3,
        "P",
        "HRV",
        "SPECIMEN",
        "SPECIMEN",
        "007007007",
        "HRV",
        "1982-12-25",
        F,
        "2014-07-01",
        "",
    ),
    (
        "passporteye__100_pass-ltu.jpg",
        Td3,
        "P",
        "LTU",
        "BASANAVICIENE",
        "BIRUTE",
        "00000000",
        "LTU",
        "1959-11-23",
        F,
        "2012-01-01",
        "45911231023",
    ),
    (
        "passporteye__100_pass-polx.jpg",
        Td3,
        "P",
        "POL",
        "KOWALSKA KWIATKOWSKA",
        "JOANNA",
        "AA0000000",
        "POL",
        "1960-02-08",
        F,
        "2014-12-31",
        "",
    ),
    (
        "passporteye__100_pass-uto.jpg",
        Td3,
        "P",
        "UTO",
        "ERIKSSON",
        "ANNA MARIA",
        "L898902C3",
        "UTO",
        "1974-08-12",
        F,
        "2012-04-15",
        "ZE184226B",
    ),
    (
        "passporteye__100_pass2-uto.jpg",
        Td2,
        "I",
        "UTO",
        "ERIKSSON",
        "ANNA MARIA",
        "D23145890",
        "UTO",
        "1974-08-12",
        F,
        "2012-04-15",
        "",
    ),
    (
        "passporteye__100_visa-polx.jpg",
        MrvB,
        "VC",
        "POL",
        "KOWALSKA KWIATKOWSKA",
        "BEATA",
        "PL0000000",
        "POL",
        "1960-02-08",
        F,
        "2005-05-01",
        "<<<<<<<0",
    ),
    (
        "passporteye__100_visa-usa.jpg",
        MrvA,
        "VI",
        "USA",
        "TRAVELER",
        "HAPPYPERSON",
        "555123ABC",
        "GBR",
        "1965-02-05",
        F,
        "2004-12-23",
        "IFLND00AMS803085",
    ),
    (
        "passporteye__25_pass-uto.jpg",
        Td3,
        "P",
        "UTO",
        "ERIKSSON",
        "ANNA MARIA",
        "L898902C3",
        "UTO",
        "1974-08-12",
        F,
        "2012-04-15",
        "ZE184226B",
    ),
    (
        "passporteye__43_pass-fra.jpg",
        Td3,
        "P",
        "FRA",
        "ULYSSE",
        "CHRISTOPHE",
        "08CD50338",
        "FRA",
        "1960-04-10",
        M,
        "2018-06-05",
        "",
    ),
    (
        "passporteye__53_id-d.jpg",
        Td1,
        "ID",
        "D",
        "MUSTERMANN",
        "ERIKA",
        "T22000129",
        "D",
        "1964-08-12",
        X,
        "2020-10-31",
        "",
    ),
    (
        "passporteye__62_pass-aus.png",
        Td3,
        "P",
        "AUS",
        "CITIZEN",
        "JANE",
        "PA0940409",
        "AUS",
        "1984-06-07",
        F,
        "2019-03-21",
        "<17331334P",
    ),
    (
        "passporteye__62_pass-pol.png",
        Td3,
        "P",
        "POL",
        "KOWALSKA",
        "ANNA",
        "ZS0000177",
        "POL",
        "1972-03-30",
        F,
        "2016-07-13",
        "",
    ),
    (
        "passporteye__79_pass-hun.png",
        Td3,
        "P",
        "HUN",
        "HANDRA",
        "ROZALIA IRMA",
        "BD0002028",
        "HUN",
        "1978-02-22",
        F,
        "2022-03-01",
        "",
    ),
];

fn kind_of(format: MrzFormat) -> &'static str {
    match format {
        Td1 => "mrz_td1",
        Td2 => "mrz_td2",
        Td3 => "mrz_td3",
        MrvA => "mrz_mrva",
        MrvB => "mrz_mrvb",
    }
}

fn date(s: &str) -> Option<Date> {
    Some(Date::parse_iso(s).unwrap())
}

#[test]
fn every_specimen_mrz_parses_to_its_lines_and_fields_with_valid_check_digits() {
    let specimens: Vec<_> = common::manifest()
        .into_iter()
        .filter(|s| s.kind.starts_with("mrz_"))
        .collect();
    assert_eq!(specimens.len(), 25, "the manifest lists 25 MRZ images");
    assert_eq!(EXPECTED.len(), specimens.len());
    for s in &specimens {
        let name = s.file.trim_start_matches("mrz/");
        let row = EXPECTED
            .iter()
            .find(|r| r.0 == name)
            .unwrap_or_else(|| panic!("no expected fields for {name}"));
        let (_, format, code, state, surname, given, number, nat, birth, sex, expiry, optional) =
            *row;
        assert_eq!(s.kind, kind_of(format), "{name}: manifest kind");
        let text = String::from_utf8(common::sidecar(&s.file)).unwrap();
        let mrz = parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(mrz.format, format, "{name}");
        assert_eq!(mrz.lines, common::sidecar_lines(&s.file), "{name}");
        for c in &mrz.checks {
            assert!(
                c.valid,
                "{name}: {:?} check digit {} but computed {}",
                c.field, c.found, c.computed
            );
        }
        let expected_checks = match format {
            Td1 | Td2 => 4,
            Td3 => 5,
            MrvA | MrvB => 3,
        };
        assert_eq!(
            mrz.checks.len(),
            expected_checks,
            "{name}: checks defined by the format"
        );
        assert!(mrz.is_valid(), "{name}");
        assert!(
            mrz.corrections.is_empty(),
            "{name}: strict parsing changes nothing"
        );
        let f = &mrz.fields;
        assert_eq!(f.document_code, code, "{name}");
        assert_eq!(f.issuing_state, state, "{name}");
        assert_eq!(f.surname, surname, "{name}");
        assert_eq!(f.given_names, given, "{name}");
        assert_eq!(f.document_number, number, "{name}");
        assert_eq!(f.nationality, nat, "{name}");
        assert_eq!(f.birth_date, date(birth), "{name}");
        assert_eq!(f.sex, sex, "{name}");
        assert_eq!(f.expiry_date, date(expiry), "{name}");
        assert_eq!(f.optional_data, optional, "{name}");
    }
}

#[test]
fn passporteye_repository_assertions_hold_for_its_test_images() {
    // PassportEye tests/mrz_test.py: check_number=6 check_date_of_birth=2
    // check_expiration_date=9 check_composite=0 check_personal_number=1.
    let mrz =
        parse(&String::from_utf8(common::sidecar("mrz/passporteye__passport-td3.png")).unwrap())
            .unwrap();
    let digit = |f| mrz.check(f).unwrap().found;
    assert_eq!(digit(CheckField::DocumentNumber), '6');
    assert_eq!(digit(CheckField::BirthDate), '2');
    assert_eq!(digit(CheckField::ExpiryDate), '9');
    assert_eq!(digit(CheckField::Composite), '0');
    assert_eq!(digit(CheckField::OptionalData), '1');
    // TD2: check_number=7 check_date_of_birth=2 check_expiration_date=9 check_composite=6.
    let mrz =
        parse(&String::from_utf8(common::sidecar("mrz/passporteye__passport-td2.png")).unwrap())
            .unwrap();
    let digit = |f| mrz.check(f).unwrap().found;
    assert_eq!(digit(CheckField::DocumentNumber), '7');
    assert_eq!(digit(CheckField::BirthDate), '2');
    assert_eq!(digit(CheckField::ExpiryDate), '9');
    assert_eq!(digit(CheckField::Composite), '6');
    assert!(
        mrz.check(CheckField::OptionalData).is_none(),
        "TD2 has no optional-data check digit"
    );
}

/// Every position of every specimen whose change a check digit must notice
/// (the data a check covers, and the check digits themselves).
#[test]
fn corrupting_any_checked_character_of_any_specimen_makes_it_invalid() {
    let mut tried = 0;
    for row in EXPECTED {
        let lines = common::sidecar_lines(&format!("mrz/{}", row.0));
        let mrz = parse(&lines.join("\n")).unwrap();
        let format = mrz.format;
        // Columns of line 2 (TD1: line 1 and 2) that some check covers.
        let checked: Vec<(usize, usize)> = match format {
            Td1 => (5..30)
                .map(|c| (0, c))
                .chain(
                    (0..30)
                        .filter(|&c| c != 7 && !(15..18).contains(&c))
                        .map(|c| (1, c)),
                )
                .collect(),
            Td2 | Td3 | MrvA | MrvB => {
                let len = format.line_len();
                let end = if matches!(format, MrvA | MrvB) {
                    28
                } else {
                    len
                };
                (0..end)
                    .filter(|&c| c != 20 && !(10..13).contains(&c))
                    .map(|c| (1, c))
                    .collect()
            }
        };
        for (li, col) in checked {
            let original = lines[li].as_bytes()[col];
            // A digit changes to another digit, anything else to a letter; the
            // values differ by a non-multiple of 10, the only changes the 7-3-1
            // weights are guaranteed to notice.
            let value = |c: u8| check_digit::char_value(c).unwrap();
            let replacement = if original.is_ascii_digit() {
                b'0' + (original - b'0' + 3) % 10
            } else {
                *b"XYZ"
                    .iter()
                    .find(|&&r| value(r).abs_diff(value(original)) % 10 != 0)
                    .unwrap()
            };
            let mut bad = lines.clone();
            let mut bytes = bad[li].clone().into_bytes();
            bytes[col] = replacement;
            bad[li] = String::from_utf8(bytes).unwrap();
            let parsed = parse(&bad.join("\n")).unwrap();
            assert!(
                !parsed.is_valid(),
                "{}: line {li} column {col} {:?} -> {:?} went unnoticed",
                row.0,
                char::from(original),
                char::from(replacement)
            );
            tried += 1;
        }
    }
    assert!(tried > 500, "tried {tried} corruptions");
}

#[test]
fn lenient_cleanup_accepts_spaces_lowercase_and_one_long_line() {
    let text = "p<uto eriksson<<anna<maria<<<<<<<<<<<<<<<<<<<\n\n  L898902C36UTO7408122F1204159ZE184226B<<<<<10  \n";
    let mrz = parse(text).unwrap();
    assert!(mrz.is_valid());
    assert_eq!(mrz.fields.surname, "ERIKSSON");
    let joined = "IDD<<T220001293<<<<<<<<<<<<<<<6408125<2010315D<<<<<<<<<<<<<4MUSTERMANN<<ERIKA<<<<<<<<<<<<<";
    let mrz = parse(joined).unwrap();
    assert_eq!(mrz.format, Td1);
    assert!(mrz.is_valid());
}

#[test]
fn malformed_text_is_rejected_with_a_stable_code() {
    assert_eq!(parse("  \n ").unwrap_err(), MrzError::Empty);
    let short =
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10";
    let e = parse(short).unwrap_err();
    assert_eq!(e.code(), "mrz_unknown_format");
    assert_eq!(
        e,
        MrzError::UnknownFormat {
            line_lengths: vec![43, 44]
        }
    );
    let accented = "P<UTOERIKSSÖN<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10";
    let e = parse(accented).unwrap_err();
    assert_eq!(e.code(), "mrz_invalid_character");
    assert_eq!(
        e,
        MrzError::InvalidCharacter {
            line: 0,
            column: 11,
            found: 'Ö'
        }
    );
}

#[test]
fn ocr_confusions_are_corrected_only_where_the_charset_allows_and_reported() {
    // Birth date 740812 read as 74O8I2, name ERIKSSON read with a zero, the
    // document number's C read as... nothing: alphanumeric fields stay.
    let text = "P<UTOER1KSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO74O8I22F1204159ZE184226B<<<<<10";
    let strict = parse(text).unwrap();
    assert!(!strict.is_valid(), "strict parsing keeps what was read");
    let opts = ParseOptions {
        correct_ocr_confusions: true,
        ..ParseOptions::default()
    };
    let mrz = parse_with(text, &opts).unwrap();
    assert!(mrz.is_valid());
    assert_eq!(mrz.fields.surname, "ERIKSSON");
    assert_eq!(mrz.fields.birth_date, date("1974-08-12"));
    let changed: Vec<(usize, usize, char, char)> = mrz
        .corrections
        .iter()
        .map(|c| (c.line, c.column, c.from, c.to))
        .collect();
    assert_eq!(
        changed,
        vec![(0, 7, '1', 'I'), (1, 15, 'O', '0'), (1, 17, 'I', '1')]
    );
}

#[test]
fn an_alphanumeric_misreading_is_repaired_only_when_one_substitution_fits_the_check_digit() {
    // L898902C3 read as L8989O2C3: both readings are legal characters, the
    // check digit 6 accepts only the zero.
    let text = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL8989O2C36UTO7408122F1204159ZE184226B<<<<<10";
    let opts = ParseOptions {
        correct_ocr_confusions: true,
        ..ParseOptions::default()
    };
    let mrz = parse_with(text, &opts).unwrap();
    assert!(mrz.is_valid(), "{:?}", mrz.checks);
    assert_eq!(mrz.fields.document_number, "L898902C3");
    assert_eq!(mrz.corrections.len(), 1);
    assert_eq!(mrz.corrections[0].column, 5);
    // Without the option the same text stays invalid.
    assert!(!parse(text).unwrap().is_valid());
}

#[test]
fn td1_document_numbers_longer_than_nine_characters_overflow_into_optional_data() {
    // ICAO 9303 part 5 appendix: number D23145890734, check digit 9, in the
    // optional data after a filler in the check-digit position.
    let lines = [
        "I<UTOD23145890<7349<<<<<<<<<<<",
        "3407127M9507122UTO<<<<<<<<<<<2",
        "STEVENSON<<PETER<JOHN<<<<<<<<<",
    ];
    let mrz = parse(&lines.join("\n")).unwrap();
    assert_eq!(mrz.fields.document_number, "D23145890734");
    assert!(mrz.check(CheckField::DocumentNumber).unwrap().valid);
    assert!(mrz.is_valid(), "{:?}", mrz.checks);
    assert_eq!(mrz.fields.optional_data, "");
}
