//! ICAO 9303 part 3, section 4.9: the 7-3-1 check digit.

/// The value of an MRZ character in check-digit arithmetic: digits are
/// themselves, `A`..`Z` are 10..35 and the filler `<` is 0. `None` for a
/// character the MRZ cannot hold.
pub fn char_value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        b'<' => Some(0),
        _ => None,
    }
}

/// The check digit (0..=9) over `data`: each character's value times the
/// repeating weights 7, 3, 1, summed, modulo 10. `None` if `data` holds a
/// character outside `A-Z0-9<`.
pub fn check_digit(data: &[u8]) -> Option<u8> {
    const WEIGHTS: [u32; 3] = [7, 3, 1];
    let mut sum = 0u32;
    for (i, &c) in data.iter().enumerate() {
        sum += char_value(c)? * WEIGHTS[i % 3];
    }
    u8::try_from(sum % 10).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_the_icao_worked_example() {
        // ICAO 9303 part 3, 4.9: "520727" has check digit 3.
        assert_eq!(check_digit(b"520727"), Some(3));
        assert_eq!(check_digit(b"L898902C3"), Some(6));
        assert_eq!(check_digit(b"<<<<<"), Some(0));
        assert_eq!(check_digit(b"ab"), None);
    }
}
