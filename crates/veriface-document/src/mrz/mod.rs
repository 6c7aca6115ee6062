//! Machine readable zones (ICAO Doc 9303): the five layouts, their fields
//! and every check digit.
//!
//! ```
//! use veriface_document::mrz::{parse, MrzFormat};
//!
//! let mrz = parse(
//!     "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n\
//!      L898902C36UTO7408122F1204159ZE184226B<<<<<10",
//! )
//! .unwrap();
//! assert_eq!(mrz.format, MrzFormat::Td3);
//! assert_eq!(mrz.fields.surname, "ERIKSSON");
//! assert_eq!(mrz.fields.given_names, "ANNA MARIA");
//! assert_eq!(mrz.fields.birth_date.unwrap().to_string(), "1974-08-12");
//! assert!(mrz.is_valid());
//! ```

pub mod check_digit;
mod compose;
mod confusion;
mod layout;
mod parse;

use serde::Serialize;

use crate::date::Date;

pub use compose::{compose, MrzData};
pub use parse::{parse, parse_with, ParseOptions};

/// The five MRZ layouts of ICAO 9303.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum MrzFormat {
    /// ID card, 3 lines of 30 (part 5).
    #[serde(rename = "TD1")]
    Td1,
    /// ID card or official travel document, 2 lines of 36 (part 6).
    #[serde(rename = "TD2")]
    Td2,
    /// Passport booklet, 2 lines of 44 (part 4).
    #[serde(rename = "TD3")]
    Td3,
    /// Visa, format A: 2 lines of 44 (part 7).
    #[serde(rename = "MRVA")]
    MrvA,
    /// Visa, format B: 2 lines of 36 (part 7).
    #[serde(rename = "MRVB")]
    MrvB,
}

impl MrzFormat {
    /// Every format.
    pub const ALL: [MrzFormat; 5] = [
        MrzFormat::Td1,
        MrzFormat::Td2,
        MrzFormat::Td3,
        MrzFormat::MrvA,
        MrzFormat::MrvB,
    ];

    /// Number of lines.
    pub fn line_count(self) -> usize {
        match self {
            MrzFormat::Td1 => 3,
            _ => 2,
        }
    }

    /// Characters per line.
    pub fn line_len(self) -> usize {
        match self {
            MrzFormat::Td1 => 30,
            MrzFormat::Td2 | MrzFormat::MrvB => 36,
            MrzFormat::Td3 | MrzFormat::MrvA => 44,
        }
    }

    /// The name used in JSON: `TD1`, `TD2`, `TD3`, `MRVA`, `MRVB`.
    pub fn as_str(self) -> &'static str {
        match self {
            MrzFormat::Td1 => "TD1",
            MrzFormat::Td2 => "TD2",
            MrzFormat::Td3 => "TD3",
            MrzFormat::MrvA => "MRVA",
            MrzFormat::MrvB => "MRVB",
        }
    }

    /// The format of lines with these lengths, the first line starting with
    /// `first` (visas start with `V`), if any.
    pub fn from_shape(line_lengths: &[usize], first: u8) -> Option<MrzFormat> {
        let visa = first == b'V';
        match line_lengths {
            [30, 30, 30] => Some(MrzFormat::Td1),
            [36, 36] if visa => Some(MrzFormat::MrvB),
            [36, 36] => Some(MrzFormat::Td2),
            [44, 44] if visa => Some(MrzFormat::MrvA),
            [44, 44] => Some(MrzFormat::Td3),
            _ => None,
        }
    }
}

/// A parsed machine readable zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mrz {
    /// The layout.
    pub format: MrzFormat,
    /// The lines as read (after cleanup and any corrections), each padded
    /// to the format's length.
    pub lines: Vec<String>,
    /// The fields.
    pub fields: MrzFields,
    /// Every check digit the format defines, in the order of ICAO 9303.
    pub checks: Vec<Check>,
    /// Characters changed while parsing (only with
    /// [`ParseOptions::correct_ocr_confusions`]).
    pub corrections: Vec<Correction>,
}

impl Mrz {
    /// True when every check digit matches and both dates are real dates.
    pub fn is_valid(&self) -> bool {
        self.checks.iter().all(|c| c.valid)
            && self.fields.birth_date.is_some()
            && self.fields.expiry_date.is_some()
    }

    /// The check of `field`, if the format has one.
    pub fn check(&self, field: CheckField) -> Option<&Check> {
        self.checks.iter().find(|c| c.field == field)
    }
}

/// The holder's sex as the MRZ states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Sex {
    /// `M`.
    #[serde(rename = "M")]
    Male,
    /// `F`.
    #[serde(rename = "F")]
    Female,
    /// `<` or `X`: unspecified.
    #[serde(rename = "X")]
    Unspecified,
}

/// The fields of an MRZ, fillers removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MrzFields {
    /// Document code: `P`, `I`, `ID`, `IA`, `V`, `VC`...
    pub document_code: String,
    /// Issuing state or organisation (three letters; `D` for Germany).
    pub issuing_state: String,
    /// Primary identifier, fillers turned into spaces.
    pub surname: String,
    /// Secondary identifiers, space-separated; empty when there are none.
    pub given_names: String,
    /// Document number, including any TD1/TD2 overflow into optional data.
    pub document_number: String,
    /// Nationality (three letters as printed; a few specimens hold digits).
    pub nationality: String,
    /// Date of birth; `None` when the six characters are not a date. The
    /// century is the latest that does not put the birth in the future.
    pub birth_date: Option<Date>,
    /// Sex.
    pub sex: Sex,
    /// Date of expiry; `None` when not a date. Two-digit years up to 50
    /// years ahead of today are 20xx, later ones 19xx.
    pub expiry_date: Option<Date>,
    /// Optional data (TD3: the personal number), trailing fillers removed.
    pub optional_data: String,
    /// TD1 only: the second optional-data field (line 2).
    pub optional_data_2: Option<String>,
}

/// Which field a check digit protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckField {
    /// The document number.
    DocumentNumber,
    /// The date of birth.
    BirthDate,
    /// The date of expiry.
    ExpiryDate,
    /// TD3's personal number / optional data.
    OptionalData,
    /// The composite over number, dates and optional data.
    Composite,
}

impl CheckField {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckField::DocumentNumber => "document_number",
            CheckField::BirthDate => "birth_date",
            CheckField::ExpiryDate => "expiry_date",
            CheckField::OptionalData => "optional_data",
            CheckField::Composite => "composite",
        }
    }
}

/// One check digit: what the MRZ says and what the data computes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The field protected.
    pub field: CheckField,
    /// The check character found in the MRZ.
    pub found: char,
    /// The digit computed from the data.
    pub computed: u8,
    /// Whether they agree (a `<` check digit counts as 0 only where ICAO
    /// allows it: TD3's all-filler optional data).
    pub valid: bool,
}

/// Why a character was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrectionReason {
    /// The position's character set allows only the replacement's class
    /// (a letter in a date, a digit in a name).
    Charset,
    /// The field admits both readings and exactly one satisfies its check
    /// digit.
    CheckDigit,
    /// A letter in the filler run after a name's end (after `<<<`); OCR
    /// reads some chevrons as `K`.
    Filler,
}

/// One changed character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Correction {
    /// Line index, from 0.
    pub line: usize,
    /// Column index, from 0.
    pub column: usize,
    /// The character read.
    pub from: char,
    /// The character kept.
    pub to: char,
    /// Why.
    pub reason: CorrectionReason,
}

/// Why text is not an MRZ at all (as opposed to an MRZ that fails its
/// checks, which parses with `valid == false`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MrzError {
    /// No non-blank line.
    #[error("no MRZ text")]
    Empty,
    /// The line count and lengths match no ICAO 9303 format.
    #[error("lines of lengths {line_lengths:?} match no MRZ format (3x30, 2x36, 2x44)")]
    UnknownFormat {
        /// Length of each non-blank line after cleanup.
        line_lengths: Vec<usize>,
    },
    /// A character outside `A-Z0-9<` after cleanup.
    #[error("line {line} column {column}: {found:?} is not an MRZ character")]
    InvalidCharacter {
        /// Line index, from 0.
        line: usize,
        /// Column index, from 0.
        column: usize,
        /// The character.
        found: char,
    },
}

impl MrzError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            MrzError::Empty => "mrz_empty",
            MrzError::UnknownFormat { .. } => "mrz_unknown_format",
            MrzError::InvalidCharacter { .. } => "mrz_invalid_character",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> Date {
        Date::new(2026, 1, 1).unwrap_or_else(|| unreachable!())
    }

    fn ocr() -> ParseOptions {
        ParseOptions {
            correct_ocr_confusions: true,
            today: today(),
        }
    }

    fn yymmdd(d: Date) -> String {
        format!("{:02}{:02}{:02}", d.year() % 100, d.month(), d.day())
    }

    proptest! {
        #[test]
        fn parsing_any_text_never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s);
            let _ = parse_with(&s, &ocr());
        }

        #[test]
        fn parsing_mrz_shaped_noise_never_panics(
            lines in prop::collection::vec("[A-Z0-9<KO]{28,46}", 1..4),
        ) {
            let text = lines.join("\n");
            let _ = parse(&text);
            if let Ok(m) = parse_with(&text, &ocr()) {
                prop_assert_eq!(m.lines.len(), m.format.line_count());
            }
        }

        #[test]
        fn a_composed_mrz_round_trips(
            format in prop::sample::select(MrzFormat::ALL.to_vec()),
            surname in "[A-Z]{1,12}",
            given in prop::option::of("[A-Z]{1,8}( [A-Z]{1,6})?"),
            number in "[A-Z0-9]{1,9}",
            nationality in "[A-Z]{3}",
            birth in (1930u16..=2025, 1u8..=12, 1u8..=28),
            expiry in (2000u16..=2075, 1u8..=12, 1u8..=28),
            sex in prop::sample::select(vec!['M', 'F', '<']),
            optional in "[A-Z0-9]{0,7}",
        ) {
            let birth = Date::new(birth.0, birth.1, birth.2).unwrap_or_else(|| unreachable!());
            let expiry = Date::new(expiry.0, expiry.1, expiry.2).unwrap_or_else(|| unreachable!());
            let code = if matches!(format, MrzFormat::MrvA | MrzFormat::MrvB) { "V" } else { "P" };
            let data = MrzData {
                document_code: code.into(),
                issuing_state: nationality.clone(),
                surname: surname.clone(),
                given_names: given.clone().unwrap_or_default(),
                document_number: number.clone(),
                nationality: nationality.clone(),
                birth_date: yymmdd(birth),
                sex,
                expiry_date: yymmdd(expiry),
                optional_data: optional.clone(),
                optional_data_2: String::new(),
            };
            let lines = compose(format, &data);
            let opts = ParseOptions { correct_ocr_confusions: false, today: today() };
            let m = parse_with(&lines.join("\n"), &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(m.format, format);
            prop_assert!(m.is_valid(), "{:?}", m.checks);
            prop_assert_eq!(&m.lines, &lines);
            let f = &m.fields;
            prop_assert_eq!(&f.surname, &surname);
            prop_assert_eq!(&f.given_names, &given.unwrap_or_default());
            prop_assert_eq!(&f.document_number, &number);
            prop_assert_eq!(&f.nationality, &nationality);
            prop_assert_eq!(f.birth_date, Some(birth));
            prop_assert_eq!(f.expiry_date, Some(expiry));
            prop_assert_eq!(f.sex, match sex { 'M' => Sex::Male, 'F' => Sex::Female, _ => Sex::Unspecified });
            prop_assert_eq!(&f.optional_data, &optional);
            // The OCR mode keeps a valid zone valid.
            prop_assert!(parse_with(&lines.join("\n"), &ocr()).map(|m| m.is_valid()).unwrap_or(false));
        }

        #[test]
        fn any_single_changed_digit_of_a_composed_mrz_fails_a_check(
            number in "[0-9]{9}",
            col in 0usize..28,
            bump in 1u8..10,
        ) {
            let data = MrzData {
                document_code: "P".into(),
                issuing_state: "UTO".into(),
                surname: "ERIKSSON".into(),
                document_number: number,
                nationality: "UTO".into(),
                birth_date: "740812".into(),
                sex: 'F',
                expiry_date: "300415".into(),
                ..MrzData::default()
            };
            let mut lines = compose(MrzFormat::Td3, &data);
            let mut l2 = lines[1].clone().into_bytes();
            // Columns 0-9 (number and its check), 13-19 and 21-27 (dates and checks) hold digits.
            prop_assume!(l2[col].is_ascii_digit() && !(10..13).contains(&col) && col != 20);
            l2[col] = b'0' + (l2[col] - b'0' + bump) % 10;
            lines[1] = String::from_utf8(l2).unwrap_or_default();
            let m = parse(&lines.join("\n")).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(!m.is_valid());
        }
    }
}
