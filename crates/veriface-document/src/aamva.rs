//! AAMVA driver-licence / ID-card data (the PDF417 on the back of North
//! American licences), per the AAMVA DL/ID Card Design Standard, annex D.
//!
//! ```text
//! @ LF RS CR "ANSI " IIN(6) version(2) [jurisdiction version(2)] entries(2)
//!   { type(2) offset(4) length(4) } * entries
//! "DL" "DAQ" value LF "DCS" value LF ... CR      (one subfile)
//! ```
//!
//! Version 01 (2000) has no jurisdiction version. Dates are `MMDDCCYY` in
//! the USA and `CCYYMMDD` in Canada; since no month is 19 or 20 the two
//! never parse the same string, so a date whose country is unknown (or
//! mislabelled, as in some version-01 cards) is read in whichever form is
//! a real date, the country's form first.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::date::{digits, Date};

/// A parsed AAMVA record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AamvaRecord {
    /// Issuer identification number (6 digits: 636xxx for AAMVA members).
    pub issuer_id: String,
    /// AAMVA standard version (1..=10).
    pub version: u8,
    /// Jurisdiction's own version (absent in version 01).
    pub jurisdiction_version: Option<u8>,
    /// The subfiles in file order.
    pub subfiles: Vec<Subfile>,
}

/// One subfile: `DL` or `ID` (the standard's), or a jurisdiction's `Zx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subfile {
    /// Two-character type.
    pub kind: String,
    /// (element id, value) in order, e.g. `("DCS", "PUBLIC")`.
    pub elements: Vec<(String, String)>,
}

/// Why text is not an AAMVA record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AamvaError {
    /// Does not start with the `@` compliance indicator and `ANSI `/`AAMVA`.
    #[error("not an AAMVA record")]
    NotAamva,
    /// The header is cut short or a number in it is not digits.
    #[error("malformed AAMVA header: {what}")]
    BadHeader {
        /// Which part.
        what: &'static str,
    },
    /// No subfile could be located.
    #[error("AAMVA record has no readable subfile")]
    NoSubfiles,
}

impl AamvaError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            AamvaError::NotAamva => "aamva_not_aamva",
            AamvaError::BadHeader { .. } => "aamva_bad_header",
            AamvaError::NoSubfiles => "aamva_no_subfiles",
        }
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], AamvaError> {
        let s = self
            .b
            .get(self.at..self.at + n)
            .ok_or(AamvaError::BadHeader { what })?;
        self.at += n;
        Ok(s)
    }

    fn number(&mut self, n: usize, what: &'static str) -> Result<u32, AamvaError> {
        digits(self.take(n, what)?).ok_or(AamvaError::BadHeader { what })
    }
}

/// Parses AAMVA text as decoded from the PDF417.
///
/// Lenient where real cards are known to deviate: subfile offsets that do
/// not point at the subfile are replaced by a search for its type, and a
/// missing final segment terminator is tolerated.
///
/// # Errors
///
/// [`AamvaError`] when the text is not AAMVA or its header is malformed.
pub fn parse_aamva(text: &str) -> Result<AamvaRecord, AamvaError> {
    let b = text.as_bytes();
    if b.len() < 9 || b[0] != b'@' || !(&b[4..9] == b"ANSI " || &b[4..9] == b"AAMVA") {
        return Err(AamvaError::NotAamva);
    }
    let element_sep = b[1];
    let segment_end = b[3];
    let mut c = Cursor { b, at: 9 };
    let issuer = c.take(6, "issuer id")?;
    if digits(issuer).is_none() {
        return Err(AamvaError::BadHeader { what: "issuer id" });
    }
    let version = u8::try_from(c.number(2, "version")?).unwrap_or(0);
    let jurisdiction_version = if version >= 2 {
        Some(u8::try_from(c.number(2, "jurisdiction version")?).unwrap_or(0))
    } else {
        None
    };
    let entries = c.number(2, "number of entries")?;
    let mut designators = Vec::new();
    for _ in 0..entries {
        let kind = c.take(2, "subfile type")?;
        let offset = c.number(4, "subfile offset")? as usize;
        let length = c.number(4, "subfile length")? as usize;
        designators.push((String::from_utf8_lossy(kind).into_owned(), offset, length));
    }
    let header_end = c.at;
    let mut subfiles = Vec::new();
    for (kind, offset, length) in designators {
        let start = if b.get(offset..offset + 2) == Some(kind.as_bytes()) {
            Some(offset)
        } else {
            find(&b[header_end..], kind.as_bytes()).map(|i| header_end + i)
        };
        let Some(start) = start else { continue };
        let end = b[start..]
            .iter()
            .position(|&x| x == segment_end)
            .map_or(b.len(), |i| start + i)
            .min(if length > 0 { start + length } else { b.len() })
            .max(start + 2);
        let body = &b[start + 2..end.min(b.len())];
        let elements = body
            .split(|&x| x == element_sep || x == segment_end)
            .filter_map(|e| {
                let e = String::from_utf8_lossy(e);
                let e = e.trim_matches(|c: char| c == '\r' || c == '\n');
                (e.len() >= 3 && e.is_char_boundary(3))
                    .then(|| (e[..3].to_string(), e[3..].trim_end().to_string()))
            })
            .collect();
        subfiles.push(Subfile { kind, elements });
    }
    if subfiles.is_empty() {
        return Err(AamvaError::NoSubfiles);
    }
    Ok(AamvaRecord {
        issuer_id: String::from_utf8_lossy(issuer).into_owned(),
        version,
        jurisdiction_version,
        subfiles,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Date order of AAMVA date elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateOrder {
    /// `MMDDCCYY` (USA).
    MonthFirst,
    /// `CCYYMMDD` (Canada).
    YearFirst,
}

fn parse_date(s: &str, order: DateOrder) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 8 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits(&b[r]);
    let (y, m, d) = match order {
        DateOrder::MonthFirst => (n(4..8)?, n(0..2)?, n(2..4)?),
        DateOrder::YearFirst => (n(0..4)?, n(4..6)?, n(6..8)?),
    };
    Date::new(
        u16::try_from(y).ok()?,
        u8::try_from(m).ok()?,
        u8::try_from(d).ok()?,
    )
}

/// The common fields, ready for display and cross-checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AamvaFields {
    /// Family name (DCS; DAB or DAA in version 01).
    pub family_name: Option<String>,
    /// First name (DAC; DCT or DAA in older versions).
    pub first_name: Option<String>,
    /// Middle name(s) (DAD).
    pub middle_names: Option<String>,
    /// Date of birth (DBB).
    pub birth_date: Option<Date>,
    /// Document expiry (DBA).
    pub expiry_date: Option<Date>,
    /// Issue date (DBD).
    pub issue_date: Option<Date>,
    /// `M`, `F` or `X` (DBC: 1, 2, 9).
    pub sex: Option<&'static str>,
    /// Customer id / licence number (DAQ).
    pub document_number: Option<String>,
    /// Street (DAG).
    pub street: Option<String>,
    /// City (DAI).
    pub city: Option<String>,
    /// Jurisdiction code (DAJ).
    pub state: Option<String>,
    /// Postal code (DAK).
    pub postal_code: Option<String>,
    /// Country (DCG): `USA` or `CAN`.
    pub country: Option<String>,
}

impl AamvaRecord {
    /// The first value of element `id` in any subfile, if non-empty.
    pub fn element(&self, id: &str) -> Option<&str> {
        self.subfiles
            .iter()
            .flat_map(|s| s.elements.iter())
            .find(|(k, v)| k == id && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every element of every subfile, first occurrence of each id.
    pub fn elements(&self) -> BTreeMap<&str, &str> {
        let mut m = BTreeMap::new();
        for (k, v) in self.subfiles.iter().flat_map(|s| s.elements.iter()) {
            m.entry(k.as_str()).or_insert(v.as_str());
        }
        m
    }

    fn date_order(&self) -> DateOrder {
        match self.element("DCG") {
            Some("CAN") => DateOrder::YearFirst,
            Some(_) => DateOrder::MonthFirst,
            // Canadian jurisdictions' IINs are 636012-636017, 636026, 636028,
            // 604426-604434; without DCG they are the only hint.
            None if self.issuer_id.starts_with("6044") => DateOrder::YearFirst,
            None => DateOrder::MonthFirst,
        }
    }

    /// A date element read in the country's order, else the other one.
    pub fn date(&self, id: &str) -> Option<Date> {
        let v = self.element(id)?;
        let first = self.date_order();
        let other = match first {
            DateOrder::MonthFirst => DateOrder::YearFirst,
            DateOrder::YearFirst => DateOrder::MonthFirst,
        };
        parse_date(v, first).or_else(|| parse_date(v, other))
    }

    /// The common fields.
    pub fn fields(&self) -> AamvaFields {
        let own = |id: &str| self.element(id).map(str::to_string);
        // Version 01 "DAA": LAST,FIRST,MIDDLE (commas or spaces).
        let full: Vec<String> = self
            .element("DAA")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default();
        let given = self.element("DCT").map(|v| {
            let mut it = v.splitn(2, [',', ' ']);
            (
                it.next().unwrap_or_default().trim().to_string(),
                it.next().map(|s| s.trim().replace(',', " ")),
            )
        });
        AamvaFields {
            family_name: own("DCS")
                .or_else(|| own("DAB"))
                .or_else(|| full.first().cloned()),
            first_name: own("DAC")
                .or_else(|| given.as_ref().map(|g| g.0.clone()))
                .or_else(|| full.get(1).cloned()),
            middle_names: own("DAD")
                .or_else(|| given.as_ref().and_then(|g| g.1.clone()))
                .or_else(|| full.get(2).cloned()),
            birth_date: self.date("DBB"),
            expiry_date: self.date("DBA"),
            issue_date: self.date("DBD"),
            sex: match self.element("DBC") {
                Some("1" | "M") => Some("M"),
                Some("2" | "F") => Some("F"),
                Some(_) => Some("X"),
                None => None,
            },
            document_number: own("DAQ"),
            street: own("DAG"),
            city: own("DAI"),
            state: own("DAJ"),
            postal_code: own("DAK"),
            country: own("DCG"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dates_are_read_in_the_form_that_is_a_real_date() {
        assert_eq!(
            parse_date("01312030", DateOrder::MonthFirst).map(|d| d.to_string()),
            Some("2030-01-31".into())
        );
        assert_eq!(parse_date("20300131", DateOrder::MonthFirst), None);
        assert_eq!(
            parse_date("20300131", DateOrder::YearFirst).map(|d| d.to_string()),
            Some("2030-01-31".into())
        );
    }

    #[test]
    fn text_without_the_compliance_indicator_is_not_aamva() {
        assert_eq!(
            parse_aamva("This is PDF417").unwrap_err(),
            AamvaError::NotAamva
        );
        assert_eq!(
            parse_aamva("@\n\u{1e}\rANSI 63").unwrap_err().code(),
            "aamva_bad_header"
        );
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(s in "@\n\u{1e}\r(ANSI |AAMVA)[0-9A-Z\n\r\u{1e}]{0,80}") {
            let _ = parse_aamva(&s);
        }

        #[test]
        fn parsing_any_string_never_panics(s in "\\PC{0,60}") {
            let _ = parse_aamva(&s);
        }
    }
}
