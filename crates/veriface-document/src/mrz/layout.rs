//! Where each field sits in each MRZ format (ICAO 9303 parts 4 to 7), and
//! which characters each position may hold.

use super::MrzFormat;

/// A run of characters on one line, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub line: usize,
    pub start: usize,
    pub end: usize,
}

const fn span(line: usize, start: usize, end: usize) -> Span {
    Span { line, start, end }
}

/// What a position may hold; decides which OCR confusions may be undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// `A-Z<`: codes, states, names.
    Alpha,
    /// `0-9` (and `<` where a check digit or date may be absent).
    Numeric,
    /// `A-Z0-9<`: document numbers, optional data.
    AlphaNumeric,
    /// `M`, `F`, `X` or `<`.
    Sex,
}

/// One format's field positions.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub code: Span,
    pub state: Span,
    pub name: Span,
    pub number: Span,
    pub number_check: usize,
    pub nationality: Span,
    pub birth: Span,
    pub birth_check: usize,
    pub sex: Span,
    pub expiry: Span,
    pub expiry_check: usize,
    /// Line index of `number_check`, `birth_check`, `expiry_check` is the
    /// line of the field they follow.
    pub optional: Span,
    /// The optional data's own check digit (TD3 only), on `optional.line`.
    pub optional_check: Option<usize>,
    /// TD1's second optional-data field (line 2).
    pub optional2: Option<Span>,
    /// Whether a long document number may continue in the optional data
    /// (TD1 and TD2).
    pub number_overflow: bool,
    /// The composite check digit's position and the spans it covers.
    pub composite: Option<(Span, &'static [Span])>,
}

const TD1_COMPOSITE: [Span; 4] = [
    span(0, 5, 30),
    span(1, 0, 7),
    span(1, 8, 15),
    span(1, 18, 29),
];
const TD2_COMPOSITE: [Span; 3] = [span(1, 0, 10), span(1, 13, 20), span(1, 21, 35)];
const TD3_COMPOSITE: [Span; 3] = [span(1, 0, 10), span(1, 13, 20), span(1, 21, 43)];

/// The layout of `format`.
pub(crate) fn layout(format: MrzFormat) -> Layout {
    match format {
        MrzFormat::Td1 => Layout {
            code: span(0, 0, 2),
            state: span(0, 2, 5),
            number: span(0, 5, 14),
            number_check: 14,
            optional: span(0, 15, 30),
            optional_check: None,
            birth: span(1, 0, 6),
            birth_check: 6,
            sex: span(1, 7, 8),
            expiry: span(1, 8, 14),
            expiry_check: 14,
            nationality: span(1, 15, 18),
            optional2: Some(span(1, 18, 29)),
            composite: Some((span(1, 29, 30), &TD1_COMPOSITE)),
            number_overflow: true,
            name: span(2, 0, 30),
        },
        MrzFormat::Td2 | MrzFormat::Td3 | MrzFormat::MrvA | MrzFormat::MrvB => {
            let len = format.line_len();
            let (optional_end, optional_check, composite) = match format {
                MrzFormat::Td2 => (35, None, Some((span(1, 35, 36), &TD2_COMPOSITE[..]))),
                MrzFormat::Td3 => (42, Some(42), Some((span(1, 43, 44), &TD3_COMPOSITE[..]))),
                _ => (len, None, None),
            };
            Layout {
                code: span(0, 0, 2),
                state: span(0, 2, 5),
                name: span(0, 5, len),
                number: span(1, 0, 9),
                number_check: 9,
                nationality: span(1, 10, 13),
                birth: span(1, 13, 19),
                birth_check: 19,
                sex: span(1, 20, 21),
                expiry: span(1, 21, 27),
                expiry_check: 27,
                optional: span(1, 28, optional_end),
                optional_check,
                optional2: None,
                composite,
                number_overflow: format == MrzFormat::Td2,
            }
        }
    }
}

impl Layout {
    /// The character class of every position of every line.
    pub(crate) fn classes(&self, format: MrzFormat) -> Vec<Vec<Class>> {
        let mut classes = vec![vec![Class::AlphaNumeric; format.line_len()]; format.line_count()];
        let mut set = |s: Span, c: Class| {
            for class in &mut classes[s.line][s.start..s.end] {
                *class = c;
            }
        };
        set(self.code, Class::Alpha);
        set(self.state, Class::Alpha);
        set(self.name, Class::Alpha);
        set(self.nationality, Class::Alpha);
        set(self.number, Class::AlphaNumeric);
        set(self.optional, Class::AlphaNumeric);
        if let Some(o) = self.optional2 {
            set(o, Class::AlphaNumeric);
        }
        set(self.birth, Class::Numeric);
        set(self.expiry, Class::Numeric);
        set(self.sex, Class::Sex);
        let line_of_number = self.number.line;
        // A TD1 or TD2 number check digit may be `<` (the number overflows
        // into the optional data), so it stays alphanumeric-plus-filler
        // there; elsewhere it is a digit.
        let numeric_checks = [
            (line_of_number, self.number_check),
            (self.birth.line, self.birth_check),
            (self.expiry.line, self.expiry_check),
        ];
        for (line, col) in numeric_checks {
            set(span(line, col, col + 1), Class::Numeric);
        }
        if let Some(col) = self.optional_check {
            set(span(self.optional.line, col, col + 1), Class::Numeric);
        }
        if let Some((c, _)) = self.composite {
            set(c, Class::Numeric);
        }
        classes
    }
}
