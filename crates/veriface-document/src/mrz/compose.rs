//! Field values to MRZ lines with correct check digits: the inverse of
//! parsing, for test fixtures and property tests.

use super::check_digit::check_digit;
use super::layout::{layout, Span};
use super::MrzFormat;

/// Raw field values to compose, each as it appears in the MRZ (dates as
/// `YYMMDD`, names already transliterated to `A-Z`, spaces allowed in
/// names). Values longer than their field are truncated, shorter ones
/// padded with `<`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MrzData {
    /// `P`, `I`, `ID`, `V`...
    pub document_code: String,
    /// Issuing state.
    pub issuing_state: String,
    /// Surname (spaces become `<`).
    pub surname: String,
    /// Given names (spaces become `<`).
    pub given_names: String,
    /// Document number, at most 9 characters.
    pub document_number: String,
    /// Nationality.
    pub nationality: String,
    /// `YYMMDD`.
    pub birth_date: String,
    /// `M`, `F` or `<`.
    pub sex: char,
    /// `YYMMDD`.
    pub expiry_date: String,
    /// Optional data / personal number.
    pub optional_data: String,
    /// TD1's second optional-data field.
    pub optional_data_2: String,
}

fn put(lines: &mut [Vec<u8>], s: Span, value: &str) {
    let bytes = value.as_bytes();
    for (i, slot) in lines[s.line][s.start..s.end].iter_mut().enumerate() {
        *slot = match bytes.get(i) {
            Some(b' ') | None => b'<',
            Some(&c) => c,
        };
    }
}

fn digit(data: &[u8]) -> u8 {
    b'0' + check_digit(data).unwrap_or(0)
}

/// The MRZ lines of `data` in `format`, every check digit computed.
pub fn compose(format: MrzFormat, data: &MrzData) -> Vec<String> {
    let l = layout(format);
    let mut lines = vec![vec![b'<'; format.line_len()]; format.line_count()];
    put(&mut lines, l.code, &data.document_code);
    put(&mut lines, l.state, &data.issuing_state);
    let name = if data.given_names.is_empty() {
        data.surname.clone()
    } else {
        format!("{}<<{}", data.surname, data.given_names)
    };
    put(&mut lines, l.name, &name);
    put(&mut lines, l.number, &data.document_number);
    put(&mut lines, l.nationality, &data.nationality);
    put(&mut lines, l.birth, &data.birth_date);
    put(&mut lines, l.sex, &data.sex.to_string());
    put(&mut lines, l.expiry, &data.expiry_date);
    put(&mut lines, l.optional, &data.optional_data);
    if let Some(s) = l.optional2 {
        put(&mut lines, s, &data.optional_data_2);
    }
    let at = |s: Span| (s.line, s.start, s.end);
    let (nl, ns, ne) = at(l.number);
    let d = digit(&lines[nl][ns..ne]);
    lines[nl][l.number_check] = d;
    let (bl, bs, be) = at(l.birth);
    let d = digit(&lines[bl][bs..be]);
    lines[bl][l.birth_check] = d;
    let (el, es, ee) = at(l.expiry);
    let d = digit(&lines[el][es..ee]);
    lines[el][l.expiry_check] = d;
    if let Some(col) = l.optional_check {
        let (ol, os, oe) = at(l.optional);
        let d = digit(&lines[ol][os..oe]);
        lines[ol][col] = d;
    }
    if let Some((c, covered)) = l.composite {
        let data: Vec<u8> = covered
            .iter()
            .flat_map(|s| lines[s.line][s.start..s.end].to_vec())
            .collect();
        lines[c.line][c.start] = digit(&data);
    }
    lines
        .into_iter()
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .collect()
}
