//! From OCR'd text lines to the best-fitting MRZ: the reader may drop or
//! add a filler in a run of `<`, or pick up a stray character at a line's
//! end, so every plausible repair of the line lengths is parsed and the
//! parse with the most passing check digits wins.

use crate::date::Date;
use crate::mrz::{parse_with, Mrz, MrzFormat, ParseOptions};

/// Variants of `line` at length `len`, each with a cost (0 for the usual
/// repair, more for less likely ones): fillers added to or removed from
/// its last run of two or more `<`, fillers padded at its end, characters
/// trimmed from either end, one character inserted or deleted anywhere.
fn resize(line: &str, len: usize) -> Vec<(String, i32)> {
    let b = line.as_bytes();
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let mut out = Vec::new();
    if b.len() == len {
        out.push((line.to_string(), 0));
        return out;
    }
    // The last run of `<` of length >= 2.
    let mut run: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'<' {
            let s = i;
            while i < b.len() && b[i] == b'<' {
                i += 1;
            }
            if i - s >= 2 {
                run = Some((s, i));
            }
        } else {
            i += 1;
        }
    }
    if b.len() < len {
        let k = len - b.len();
        let at = run.map_or(b.len(), |(_, e)| e);
        let mut v = b[..at].to_vec();
        v.extend(std::iter::repeat_n(b'<', k));
        v.extend_from_slice(&b[at..]);
        // Fillers are lost most often at the end of a line that ends in
        // its filler run (the name line): cheaper there.
        let k_cost = i32::try_from(k).unwrap_or(i32::MAX);
        let run_cost = if at == b.len() {
            (k_cost + 3) / 4
        } else {
            k_cost
        };
        out.push((text(&v), run_cost));
        let mut padded = b.to_vec();
        padded.extend(std::iter::repeat_n(b'<', k));
        out.push((text(&padded), k_cost + 1));
        if k == 1 {
            // The reader merged two glyphs, or lost one.
            for at in 0..=b.len() {
                let mut v = b[..at].to_vec();
                v.push(b'<');
                v.extend_from_slice(&b[at..]);
                out.push((text(&v), 3));
            }
        }
    } else {
        let k = b.len() - len;
        if k == 2 {
            // One stray character anywhere and one more at an end or in a run.
            for at in 0..b.len() {
                let mut v = b[..at].to_vec();
                v.extend_from_slice(&b[at + 1..]);
                for (r, c) in resize(&String::from_utf8_lossy(&v), len) {
                    out.push((r, c + 3));
                }
            }
        }
        if let Some((s, e)) = run {
            if e - s > k {
                let mut v = b[..s].to_vec();
                v.extend_from_slice(&b[s + k..]);
                out.push((text(&v), i32::try_from(k).unwrap_or(i32::MAX)));
            }
        }
        for front in 0..=k {
            out.push((
                text(&b[front..front + len]),
                i32::try_from(k).unwrap_or(i32::MAX) + 1,
            ));
        }
        if k == 1 {
            // The reader split a glyph in two.
            for at in 0..b.len() {
                let mut v = b[..at].to_vec();
                v.extend_from_slice(&b[at + 1..]);
                out.push((text(&v), 3));
            }
        }
    }
    out
}

/// How good a parse is: passing check digits dominate, a fully valid MRZ
/// more so; every correction costs a little, except zeros read as `O` or
/// `Q` in the document number, which are rather what a letter `O` left
/// there costs (few issuers use it, and OCR confuses the two constantly).
pub(crate) fn score(m: &Mrz) -> i32 {
    let passing = m.checks.iter().filter(|c| c.valid).count() as i32;
    let valid = if m.is_valid() { 10 } else { 0 };
    let dates =
        i32::from(m.fields.birth_date.is_some()) + i32::from(m.fields.expiry_date.is_some());
    let corrections = m
        .corrections
        .iter()
        .filter(|c| !(matches!(c.from, 'O' | 'Q') && c.to == '0'))
        .count() as i32;
    let letter_o = m
        .fields
        .document_number
        .chars()
        .filter(|&c| c == 'O' || c == 'Q')
        .count() as i32;
    // Passports are TD3, ID cards TD1 or TD2: the first letter weighs in
    // when a misread line length leaves the format open.
    let usual_format = match (m.format, m.lines[0].as_bytes()[0]) {
        (MrzFormat::Td3, b'P') | (MrzFormat::Td1 | MrzFormat::Td2, b'I' | b'A' | b'C') => 3,
        _ => 0,
    };
    passing * 4 + valid + dates + usual_format - corrections - letter_o
}

/// The best MRZ among consecutive runs of `lines` (OCR output with spaces
/// removed), or `None` when no run has an MRZ's shape.
pub(crate) fn best_mrz(lines: &[String], today: Date) -> Option<Mrz> {
    let opts = ParseOptions {
        correct_ocr_confusions: true,
        today,
    };
    let mut best: Option<(Mrz, i32)> = None;
    for format in MrzFormat::ALL {
        let (n, len) = (format.line_count(), format.line_len());
        if lines.len() < n {
            continue;
        }
        for start in 0..=lines.len() - n {
            let group = &lines[start..start + n];
            // A few characters too many at most, but a line may be well
            // short: the reader merges long runs of chevrons (seen: 30 of 36
            // characters), and padding its last run puts them back.
            if group
                .iter()
                .any(|l| l.len() > len + 4 || l.len() * 5 < len * 3)
            {
                continue;
            }
            let variants: Vec<Vec<(String, i32)>> = group.iter().map(|l| resize(l, len)).collect();
            for combo in combinations(&variants) {
                // The name line's length is the least reliable: it ends in
                // the longest filler run, which the reader shortens or pads
                // with look-alikes, so resizing it costs less.
                let name_line = if n == 3 { 2 } else { 0 };
                let cost: i32 = combo
                    .iter()
                    .enumerate()
                    .map(|(i, (_, c))| if i == name_line { (c + 3) / 4 } else { *c })
                    .sum();
                let text: Vec<&str> = combo.iter().map(|(l, _)| l.as_str()).collect();
                let Ok(m) = parse_with(&text.join("\n"), &opts) else {
                    continue;
                };
                // A visa's first letter decides between TD2/MRV-B and TD3/MRV-A.
                if m.format != format || !plausible(&m) {
                    continue;
                }
                let sc = score(&m) - cost;
                if best.as_ref().is_none_or(|(_, b)| sc > *b) {
                    best = Some((m, sc));
                }
            }
        }
    }
    best.map(|(m, _)| m)
}

/// Whether a parse is an MRZ rather than OCR noise that happens to have
/// the shape: ICAO document codes start with P, I, A, C or V, and at least
/// two check digits must hold (noise passes each with p = 0.1).
fn plausible(m: &Mrz) -> bool {
    let code_ok = matches!(m.lines[0].as_bytes()[0], b'P' | b'I' | b'A' | b'C' | b'V');
    code_ok && m.checks.iter().filter(|c| c.valid).count() >= 2
}

fn combinations<T: Clone>(variants: &[Vec<T>]) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = vec![Vec::new()];
    for v in variants {
        let mut next = Vec::new();
        for prefix in &out {
            for choice in v {
                let mut p = prefix.clone();
                p.push(choice.clone());
                next.push(p);
            }
        }
        out = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_filler_is_put_back_into_the_last_run() {
        let lines = vec![
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<".to_string(),
            "L898902C36UTO7408122F1204159ZE184226B<<<<10".to_string(),
        ];
        let m = best_mrz(&lines, Date::new(2026, 1, 1).unwrap()).unwrap();
        assert!(m.is_valid(), "{:?}", m.lines);
        assert_eq!(m.lines[1], "L898902C36UTO7408122F1204159ZE184226B<<<<<10");
    }

    #[test]
    fn text_without_mrz_lines_gives_nothing() {
        let lines = vec!["HELLO".to_string(), "WORLD".to_string()];
        assert!(best_mrz(&lines, Date::new(2026, 1, 1).unwrap()).is_none());
    }
}
