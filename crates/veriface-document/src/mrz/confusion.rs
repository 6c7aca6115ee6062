//! The characters OCR engines confuse in the MRZ's OCR-B font, and the
//! replacements a field's character set allows.
//!
//! A letter where only a digit may stand (a date, a check digit) can be
//! read back unambiguously, and so can a digit in a name. In an
//! alphanumeric field (document number, optional data) both readings are
//! legal, so there only the check digit can choose, and only when exactly
//! one substitution satisfies it.

/// The digit a letter is usually a misreading of, for numeric positions.
pub(crate) fn letter_to_digit(c: u8) -> Option<u8> {
    Some(match c {
        b'O' | b'Q' | b'D' | b'U' => b'0',
        b'I' | b'L' => b'1',
        b'Z' => b'2',
        b'A' => b'4',
        b'S' => b'5',
        b'G' => b'6',
        b'T' => b'7',
        b'B' => b'8',
        _ => return None,
    })
}

/// The letter a digit is usually a misreading of, for alphabetic positions.
pub(crate) fn digit_to_letter(c: u8) -> Option<u8> {
    Some(match c {
        b'0' => b'O',
        b'1' => b'I',
        b'2' => b'Z',
        b'4' => b'A',
        b'5' => b'S',
        b'6' => b'G',
        b'7' => b'T',
        b'8' => b'B',
        _ => return None,
    })
}

/// Pairs that are both legal in an alphanumeric field; the check digit
/// decides between them.
const AMBIGUOUS: &[(u8, u8)] = &[
    (b'0', b'O'),
    (b'0', b'D'),
    (b'0', b'Q'),
    (b'1', b'I'),
    (b'1', b'L'),
    (b'2', b'Z'),
    (b'4', b'A'),
    (b'5', b'S'),
    (b'6', b'G'),
    (b'7', b'T'),
    (b'8', b'B'),
    (b'<', b'K'),
];

/// Every character `c` may be a misreading of, in an alphanumeric field.
pub(crate) fn alternatives(c: u8) -> impl Iterator<Item = u8> {
    AMBIGUOUS.iter().filter_map(move |&(a, b)| {
        if a == c {
            Some(b)
        } else if b == c {
            Some(a)
        } else {
            None
        }
    })
}
