//! The document checks a verification session runs: MRZ integrity, expiry,
//! and agreement between the MRZ and the AAMVA barcode where a document has
//! both. Each finding is a [`Reason`] with a stable snake_case code
//! (documented in `docs/documents.md`); the session decides which ones
//! reject and which ones send the case to review.

use serde::{Serialize, Serializer};
use unicode_normalization::UnicodeNormalization;

use crate::aamva::AamvaRecord;
use crate::date::Date;
use crate::mrz::Mrz;

/// A document finding. Codes are API: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Neither an MRZ nor an AAMVA barcode could be read.
    DocumentUnreadable,
    /// An MRZ was read but a check digit does not match: a misread or a
    /// forged zone.
    MrzCheckDigitFailed,
    /// An MRZ date (birth or expiry) is not a calendar date.
    MrzInvalidDate,
    /// The document's expiry date is before the reference date.
    DocumentExpired,
    /// Document data was read but no expiry date was among it.
    DocumentExpiryUnknown,
    /// The MRZ and barcode names differ (after normalising case,
    /// diacritics and fillers).
    MrzBarcodeNameMismatch,
    /// The MRZ and barcode birth dates differ.
    MrzBarcodeBirthDateMismatch,
}

impl Reason {
    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::DocumentUnreadable => "document_unreadable",
            Reason::MrzCheckDigitFailed => "mrz_check_digit_failed",
            Reason::MrzInvalidDate => "mrz_invalid_date",
            Reason::DocumentExpired => "document_expired",
            Reason::DocumentExpiryUnknown => "document_expiry_unknown",
            Reason::MrzBarcodeNameMismatch => "mrz_barcode_name_mismatch",
            Reason::MrzBarcodeBirthDateMismatch => "mrz_barcode_birth_date_mismatch",
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// True when a document that expires on `expiry` is expired on `today`
/// (a document is valid through its expiry date).
pub fn is_expired(expiry: Date, today: Date) -> bool {
    expiry < today
}

/// Runs every document check on what was read; an empty list means the
/// document passed. `today` is the reference date for expiry.
pub fn cross_check(mrz: Option<&Mrz>, aamva: Option<&AamvaRecord>, today: Date) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if mrz.is_none() && aamva.is_none() {
        reasons.push(Reason::DocumentUnreadable);
        return reasons;
    }
    if let Some(m) = mrz {
        if m.checks.iter().any(|c| !c.valid) {
            reasons.push(Reason::MrzCheckDigitFailed);
        }
        if m.fields.birth_date.is_none() || m.fields.expiry_date.is_none() {
            reasons.push(Reason::MrzInvalidDate);
        }
    }
    let fields = aamva.map(AamvaRecord::fields);
    let expiries: Vec<Date> = mrz
        .and_then(|m| m.fields.expiry_date)
        .into_iter()
        .chain(fields.as_ref().and_then(|f| f.expiry_date))
        .collect();
    if expiries.is_empty() {
        reasons.push(Reason::DocumentExpiryUnknown);
    } else if expiries.iter().any(|&e| is_expired(e, today)) {
        reasons.push(Reason::DocumentExpired);
    }
    if let (Some(m), Some(f)) = (mrz, fields.as_ref()) {
        let given = [f.first_name.as_deref(), f.middle_names.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let family = f.family_name.as_deref().unwrap_or_default();
        if !names_match(
            &m.fields.surname,
            &m.fields.given_names,
            mrz_name_truncated(m),
            family,
            &given,
        ) {
            reasons.push(Reason::MrzBarcodeNameMismatch);
        }
        if let (Some(a), Some(b)) = (m.fields.birth_date, f.birth_date) {
            if a != b {
                reasons.push(Reason::MrzBarcodeBirthDateMismatch);
            }
        }
    }
    reasons
}

/// True when the MRZ name field is full to its last character, so the name
/// may have been cut (ICAO 9303 truncates long names).
pub fn mrz_name_truncated(m: &Mrz) -> bool {
    let line = if m.format == crate::mrz::MrzFormat::Td1 {
        2
    } else {
        0
    };
    m.lines.get(line).is_some_and(|l| !l.ends_with('<'))
}

/// Name tokens in the MRZ alphabet: case folded, diacritics removed,
/// separators (spaces, `<`, hyphens, apostrophes, commas) dropped.
/// `expand` spells umlauts and ligatures out the German/Nordic way (Ä → AE,
/// Ø → OE, Å → AA) that ICAO 9303 part 3 also allows.
pub fn normalize_name(name: &str, expand: bool) -> Vec<String> {
    let mut folded = String::new();
    for c in name.chars() {
        let upper: String = c.to_uppercase().collect();
        for u in upper.chars() {
            let special = match u {
                'Ä' | 'Æ' if expand => "AE",
                'Ö' | 'Ø' | 'Œ' if expand => "OE",
                'Ü' if expand => "UE",
                'Å' if expand => "AA",
                'Æ' => "AE",
                'Œ' => "OE",
                'Ø' => "O",
                'ß' => "SS",
                'Þ' => "TH",
                'Đ' | 'Ð' => "D",
                'Ł' => "L",
                'Ħ' => "H",
                'Ŧ' => "T",
                'Ŋ' => "N",
                'Ĳ' => "IJ",
                _ => "",
            };
            if special.is_empty() {
                folded.extend(u.to_string().nfd().filter(char::is_ascii_uppercase));
                if !u.is_alphabetic() {
                    folded.push(' ');
                }
            } else {
                folded.push_str(special);
            }
        }
    }
    folded
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn same_or_prefix(mrz: &str, other: &str, truncated: bool) -> bool {
    mrz == other
        || (truncated && !mrz.is_empty() && other.starts_with(mrz))
        // OCR reads the MRZ's `<` separator as `K`: `ANNAKMARIA` is
        // `ANNA<MARIA`.
        || (!other.is_empty() && mrz.strip_prefix(other).is_some_and(|rest| rest.starts_with('K')))
}

/// Whether an MRZ name and another document's name are the same person's:
/// the surnames agree (separators ignored, so `KOWALSKA<KWIATKOWSKA` equals
/// `Kowalska-Kwiatkowska`) and so does the first given name when both have
/// one. A truncated MRZ name may be a prefix of the other.
pub fn names_match(
    mrz_surname: &str,
    mrz_given: &str,
    mrz_truncated: bool,
    other_surname: &str,
    other_given: &str,
) -> bool {
    let mrz_sur = normalize_name(mrz_surname, false).concat();
    let mrz_first = normalize_name(mrz_given, false).into_iter().next();
    [false, true].into_iter().any(|expand| {
        let sur = normalize_name(other_surname, expand).concat();
        let first = normalize_name(other_given, expand).into_iter().next();
        let given_ok = match (&mrz_first, &first) {
            (Some(a), Some(b)) => same_or_prefix(a, b, mrz_truncated),
            // A missing given name on one side is not a contradiction.
            _ => true,
        };
        !sur.is_empty() && same_or_prefix(&mrz_sur, &sur, mrz_truncated) && given_ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn diacritics_case_and_separators_do_not_matter() {
        assert!(names_match(
            "KOWALSKA KWIATKOWSKA",
            "JOANNA",
            false,
            "Kowalska-Kwiatkowska",
            "Joanna Maria"
        ));
        assert!(names_match(
            "BASANAVICIENE",
            "BIRUTE",
            false,
            "Basanavičienė",
            "Birutė"
        ));
        assert!(names_match("MUELLER", "JOERG", false, "Müller", "Jörg"));
        assert!(names_match("MULLER", "JORG", false, "Müller", "Jörg"));
        assert!(names_match("OBRIEN", "SEAN", false, "O'Brien", "Seán"));
        assert!(!names_match("ERIKSSON", "ANNA", false, "ERICSSON", "ANNA"));
        assert!(!names_match("ERIKSSON", "ANNA", false, "ERIKSSON", "MARIA"));
    }

    #[test]
    fn a_separator_misread_as_k_is_tolerated() {
        assert!(names_match(
            "MUSTERMANNKX",
            "ERIKA",
            false,
            "Mustermann",
            "Erika"
        ));
        assert!(names_match(
            "ERIKSSON",
            "ANNAKMARIAK",
            false,
            "Eriksson",
            "Anna Maria"
        ));
        assert!(!names_match(
            "ERIKSSON",
            "ANNAXMARIA",
            false,
            "Eriksson",
            "Anna"
        ));
    }

    #[test]
    fn a_truncated_mrz_name_may_be_a_prefix() {
        assert!(names_match(
            "WOLFESCHLEGELSTEINHAUS",
            "HUBERT",
            true,
            "Wolfeschlegelsteinhausenbergerdorff",
            "Hubert"
        ));
        assert!(!names_match(
            "WOLFESCHLEGELSTEINHAUS",
            "HUBERT",
            false,
            "Wolfeschlegelsteinhausenbergerdorff",
            "Hubert"
        ));
    }

    #[test]
    fn expiry_day_itself_is_still_valid() {
        let d = Date::new(2030, 1, 31).unwrap();
        assert!(!is_expired(d, d));
        assert!(is_expired(d, Date::new(2030, 2, 1).unwrap()));
    }

    proptest! {
        #[test]
        fn normalised_tokens_hold_only_a_to_z(s in "\\PC{0,40}") {
            for t in normalize_name(&s, true) {
                prop_assert!(!t.is_empty() && t.bytes().all(|b| b.is_ascii_uppercase()));
            }
        }
    }
}
