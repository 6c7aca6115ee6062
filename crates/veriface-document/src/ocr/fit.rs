//! From OCR'd text lines to the best-fitting MRZ: the reader may drop or
//! add a filler in a run of `<`, or pick up a stray character at a line's
//! end, so every plausible repair of the line lengths is parsed and the
//! parse with the most passing check digits wins.

use crate::date::Date;
use crate::mrz::{parse_with, Mrz, MrzFormat, ParseOptions};

/// Variants of `line` at length `len`: fillers added to or removed from
/// its last run of two or more `<` (or its end), or characters trimmed from
/// either end.
fn resize(line: &str, len: usize) -> Vec<String> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    if b.len() == len {
        out.push(line.to_string());
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
        out.push(String::from_utf8_lossy(&v).into_owned());
        let mut padded = b.to_vec();
        padded.extend(std::iter::repeat_n(b'<', k));
        out.push(String::from_utf8_lossy(&padded).into_owned());
    } else {
        let k = b.len() - len;
        if let Some((s, e)) = run {
            if e - s > k {
                let mut v = b[..s].to_vec();
                v.extend_from_slice(&b[s + k..]);
                out.push(String::from_utf8_lossy(&v).into_owned());
            }
        }
        for front in 0..=k {
            out.push(String::from_utf8_lossy(&b[front..front + len]).into_owned());
        }
    }
    out
}

/// How good a parse is: passing check digits dominate, a fully valid MRZ
/// more so, and every correction costs a little.
pub(crate) fn score(m: &Mrz) -> i32 {
    let passing = m.checks.iter().filter(|c| c.valid).count() as i32;
    let valid = if m.is_valid() { 10 } else { 0 };
    let dates =
        i32::from(m.fields.birth_date.is_some()) + i32::from(m.fields.expiry_date.is_some());
    passing * 4 + valid + dates - m.corrections.len() as i32 / 4
}

/// The best MRZ among consecutive runs of `lines` (OCR output with spaces
/// removed), or `None` when no run has an MRZ's shape.
pub(crate) fn best_mrz(lines: &[String], today: Date) -> Option<Mrz> {
    let opts = ParseOptions {
        correct_ocr_confusions: true,
        today,
    };
    let mut best: Option<Mrz> = None;
    for format in MrzFormat::ALL {
        let (n, len) = (format.line_count(), format.line_len());
        if lines.len() < n {
            continue;
        }
        for start in 0..=lines.len() - n {
            let group = &lines[start..start + n];
            // Allow a few characters of slack; more is another format.
            if group.iter().any(|l| l.len().abs_diff(len) > 4) {
                continue;
            }
            let variants: Vec<Vec<String>> = group.iter().map(|l| resize(l, len)).collect();
            for combo in combinations(&variants) {
                let Ok(m) = parse_with(&combo.join("\n"), &opts) else {
                    continue;
                };
                // A visa's first letter decides between TD2/MRV-B and TD3/MRV-A.
                if m.format != format {
                    continue;
                }
                if best.as_ref().is_none_or(|b| score(&m) > score(b)) {
                    best = Some(m);
                }
            }
        }
    }
    best
}

fn combinations(variants: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = vec![Vec::new()];
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
