//! Text to [`Mrz`]: lenient cleanup, strict validation, optional OCR repair.

use super::check_digit::{char_value, check_digit};
use super::confusion::{alternatives, digit_to_letter, letter_to_digit};
use super::layout::{layout, Class, Layout, Span};
use super::{
    Check, CheckField, Correction, CorrectionReason, Mrz, MrzError, MrzFields, MrzFormat, Sex,
};
use crate::date::{digits, Date};

/// How [`parse_with`] treats its input.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// Undo the usual OCR confusions (O/0, I/1, B/8, S/5...) where a
    /// position's character set allows only one reading, and in
    /// alphanumeric fields where exactly one single-character substitution
    /// satisfies a failing check digit. Every change is reported in
    /// [`Mrz::corrections`]. Off for typed or trusted text.
    pub correct_ocr_confusions: bool,
    /// The date two-digit years are resolved against (birth dates are never
    /// after it).
    pub today: Date,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            correct_ocr_confusions: false,
            today: Date::today_utc(),
        }
    }
}

/// Parses MRZ text strictly: lines separated by newlines; spaces and
/// lowercase are tolerated, anything else outside `A-Z0-9<` is not. A
/// single line of 90, 72 or 88 characters is split into the format's lines.
///
/// Check-digit failures do not fail the parse: they show in
/// [`Mrz::checks`] and [`Mrz::is_valid`].
///
/// # Errors
///
/// [`MrzError`] when the text is empty, has a character outside the MRZ
/// set, or its line shape matches no format.
pub fn parse(text: &str) -> Result<Mrz, MrzError> {
    parse_with(text, &ParseOptions::default())
}

/// [`parse`] with options.
///
/// # Errors
///
/// As [`parse`].
pub fn parse_with(text: &str, options: &ParseOptions) -> Result<Mrz, MrzError> {
    let mut lines = cleanup(text);
    if lines.is_empty() {
        return Err(MrzError::Empty);
    }
    if lines.len() == 1 {
        let len = lines[0].len();
        if let Some(f) = [MrzFormat::Td1, MrzFormat::Td2, MrzFormat::Td3]
            .into_iter()
            .find(|f| f.line_len() * f.line_count() == len)
        {
            let one = std::mem::take(&mut lines[0]);
            lines = one.chunks(f.line_len()).map(<[u8]>::to_vec).collect();
        }
    }
    for (i, line) in lines.iter().enumerate() {
        if let Some(col) = line.iter().position(|&c| char_value(c).is_none()) {
            // Report the character as it was written, not its byte.
            let found = String::from_utf8_lossy(line)
                .chars()
                .nth(col)
                .unwrap_or('\u{fffd}');
            return Err(MrzError::InvalidCharacter {
                line: i,
                column: col,
                found,
            });
        }
    }
    let lengths: Vec<usize> = lines.iter().map(Vec::len).collect();
    let format = MrzFormat::from_shape(&lengths, lines[0][0]).ok_or(MrzError::UnknownFormat {
        line_lengths: lengths,
    })?;
    let layout = layout(format);
    let mut corrections = Vec::new();
    if options.correct_ocr_confusions {
        correct_charset(&mut lines, &layout.classes(format), &mut corrections);
        clear_name_tail(&mut lines[layout.name.line], layout.name, &mut corrections);
        for span in std::iter::once(layout.optional).chain(layout.optional2) {
            clear_filler_ks(&mut lines[span.line], span, &mut corrections);
        }
    }
    let mut checks = compute_checks(&lines, &layout);
    if options.correct_ocr_confusions && checks.iter().all(|c| c.valid) {
        prefer_zeros(&mut lines, &layout, &mut corrections);
    }
    if options.correct_ocr_confusions && checks.iter().any(|c| !c.valid) {
        repair_by_check_digits(&mut lines, &layout, format, &mut corrections);
        checks = compute_checks(&lines, &layout);
    }
    let fields = fields(&lines, &layout, options.today);
    Ok(Mrz {
        format,
        lines: lines
            .into_iter()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .collect(),
        fields,
        checks,
        corrections,
    })
}

/// Non-blank lines, whitespace removed, ASCII uppercased. Non-ASCII
/// characters stay (as UTF-8 bytes) so that validation can report them.
fn cleanup(text: &str) -> Vec<Vec<u8>> {
    text.lines()
        .map(|l| {
            l.chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_uppercase()
                .into_bytes()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

fn correct_charset(lines: &mut [Vec<u8>], classes: &[Vec<Class>], out: &mut Vec<Correction>) {
    for (li, line) in lines.iter_mut().enumerate() {
        for (col, c) in line.iter_mut().enumerate() {
            let to = match classes[li][col] {
                Class::Numeric => letter_to_digit(*c),
                Class::Alpha => digit_to_letter(*c),
                Class::Sex => match *c {
                    b'H' | b'N' => Some(b'M'),
                    b'E' | b'P' => Some(b'F'),
                    _ => None,
                },
                Class::AlphaNumeric => None,
            };
            if let Some(to) = to {
                out.push(correction(li, col, *c, to, CorrectionReason::Charset));
                *c = to;
            }
        }
    }
}

/// Names never hold three fillers in a row, so everything after the first
/// `<<<` is filler; OCR often reads part of a long filler run as `K` (the
/// chevron's look-alike), including a lone `K` just before it.
fn clear_name_tail(line: &mut [u8], name: Span, out: &mut Vec<Correction>) {
    let field = &line[name.start..name.end];
    let Some(run) = field.windows(3).position(|w| w == b"<<<") else {
        return;
    };
    let mut from = name.start + run;
    if run >= 2 && field[run - 1] == b'K' && field[run - 2] == b'<' {
        from -= 1;
    }
    for (col, c) in line.iter_mut().enumerate().take(name.end).skip(from) {
        if *c != b'<' {
            out.push(correction(
                name.line,
                col,
                *c,
                b'<',
                CorrectionReason::Filler,
            ));
            *c = b'<';
        }
    }
}

/// In optional data, a `K` with a filler on its left and a filler, `K` or
/// the field's end on its right is a misread chevron. Check digits cannot
/// tell: `K` is worth 20, a multiple of 10, so it weighs like `<` at every
/// position.
fn clear_filler_ks(line: &mut [u8], span: Span, out: &mut Vec<Correction>) {
    for col in span.start..span.end {
        let left_filler = col > span.start && line[col - 1] == b'<';
        let right_ok = col + 1 == span.end || matches!(line[col + 1], b'<' | b'K');
        if line[col] == b'K' && left_filler && right_ok {
            out.push(correction(
                span.line,
                col,
                b'K',
                b'<',
                CorrectionReason::Filler,
            ));
            line[col] = b'<';
        }
    }
}

fn correction(
    line: usize,
    column: usize,
    from: u8,
    to: u8,
    reason: CorrectionReason,
) -> Correction {
    Correction {
        line,
        column,
        from: char::from(from),
        to: char::from(to),
        reason,
    }
}

fn text(lines: &[Vec<u8>], s: Span) -> &[u8] {
    &lines[s.line][s.start..s.end]
}

/// Where the document number and its check digit really are: TD1 and TD2
/// numbers longer than 9 characters put `<` in the check position and
/// continue in the optional data, ending with their check digit (ICAO 9303
/// part 5 note j, part 6 note j).
struct NumberParts {
    number: Vec<u8>,
    check: u8,
    /// The optional data after the overflow.
    optional_start: usize,
}

fn number_parts(lines: &[Vec<u8>], l: &Layout) -> NumberParts {
    let line = &lines[l.number.line];
    let check = line[l.number_check];
    let opt = text(lines, l.optional);
    let overflow_len = opt.iter().position(|&c| c == b'<').unwrap_or(opt.len());
    if check == b'<' && l.number_overflow && overflow_len >= 1 {
        let mut number = text(lines, l.number).to_vec();
        number.extend_from_slice(&opt[..overflow_len - 1]);
        return NumberParts {
            number,
            check: opt[overflow_len - 1],
            // Skip the filler that ends the overflow.
            optional_start: l.optional.start + overflow_len + 1,
        };
    }
    NumberParts {
        number: text(lines, l.number).to_vec(),
        check,
        optional_start: l.optional.start,
    }
}

fn make_check(field: CheckField, data: &[u8], found: u8, filler_ok: bool) -> Check {
    let computed = check_digit(data).unwrap_or(0);
    let valid = if found == b'<' {
        filler_ok && data.iter().all(|&c| c == b'<')
    } else {
        found.is_ascii_digit() && found - b'0' == computed
    };
    Check {
        field,
        found: char::from(found),
        computed,
        valid,
    }
}

fn compute_checks(lines: &[Vec<u8>], l: &Layout) -> Vec<Check> {
    let n = number_parts(lines, l);
    let mut checks = vec![
        make_check(CheckField::DocumentNumber, &n.number, n.check, false),
        make_check(
            CheckField::BirthDate,
            text(lines, l.birth),
            lines[l.birth.line][l.birth_check],
            false,
        ),
        make_check(
            CheckField::ExpiryDate,
            text(lines, l.expiry),
            lines[l.expiry.line][l.expiry_check],
            false,
        ),
    ];
    if let Some(col) = l.optional_check {
        checks.push(make_check(
            CheckField::OptionalData,
            text(lines, l.optional),
            lines[l.optional.line][col],
            true,
        ));
    }
    if let Some((at, covered)) = l.composite {
        let data: Vec<u8> = covered
            .iter()
            .flat_map(|&s| text(lines, s).to_vec())
            .collect();
        checks.push(make_check(
            CheckField::Composite,
            &data,
            lines[at.line][at.start],
            false,
        ));
    }
    checks
}

/// A valid zone whose document number reads `O` or `Q` where zeros would
/// be valid too: OCR confuses them, and two misread zeros can cancel out in
/// the check digit (`OO` weighs 24x7 + 24x3 = 240). Zeros win.
fn prefer_zeros(lines: &mut [Vec<u8>], l: &Layout, out: &mut Vec<Correction>) {
    let s = l.number;
    let saved = lines[s.line].clone();
    let mut changed = Vec::new();
    for (col, c) in lines[s.line]
        .iter_mut()
        .enumerate()
        .take(s.end)
        .skip(s.start)
    {
        if matches!(*c, b'O' | b'Q') {
            changed.push(correction(
                s.line,
                col,
                *c,
                b'0',
                CorrectionReason::CheckDigit,
            ));
            *c = b'0';
        }
    }
    if !changed.is_empty() && compute_checks(lines, l).iter().all(|c| c.valid) {
        out.extend(changed);
    } else {
        lines[s.line] = saved;
    }
}

/// For each failing check over an alphanumeric field, tries every single
/// confusable substitution in that field; keeps one only when it is the
/// only substitution that makes the check (and the composite, where there
/// is one) pass.
fn repair_by_check_digits(
    lines: &mut [Vec<u8>],
    l: &Layout,
    format: MrzFormat,
    out: &mut Vec<Correction>,
) {
    let classes = l.classes(format);
    let mut fields: Vec<(CheckField, Vec<Span>)> =
        vec![(CheckField::DocumentNumber, vec![l.number])];
    if l.optional_check.is_some() {
        fields.push((CheckField::OptionalData, vec![l.optional]));
    }
    // Fields only the composite protects.
    let mut composite_only = vec![];
    if l.optional_check.is_none() && l.composite.is_some() {
        composite_only.push(l.optional);
        composite_only.extend(l.optional2);
    }
    if l.composite.is_some() {
        fields.push((CheckField::Composite, composite_only));
    }
    for (field, spans) in fields {
        // A field with its own check digit is judged by it; the composite
        // group only by every check passing.
        let passes = |lines: &[Vec<u8>]| {
            compute_checks(lines, l)
                .iter()
                .filter(|c| field == CheckField::Composite || c.field == field)
                .all(|c| c.valid)
        };
        if passes(lines) {
            continue;
        }
        // Two starting readings: as read, and with every O/Q turned into a
        // zero (OCR of OCR-B reads zeros as O throughout a number, more
        // than single substitutions can undo).
        let mut zeroed = lines.to_vec();
        let mut bulk = Vec::new();
        for s in &spans {
            for col in s.start..s.end {
                let c = zeroed[s.line][col];
                if classes[s.line][col] == Class::AlphaNumeric && matches!(c, b'O' | b'Q') {
                    bulk.push(correction(
                        s.line,
                        col,
                        c,
                        b'0',
                        CorrectionReason::CheckDigit,
                    ));
                    zeroed[s.line][col] = b'0';
                }
            }
        }
        if !bulk.is_empty() && passes(&zeroed) {
            lines.clone_from_slice(&zeroed);
            out.extend(bulk);
            continue;
        }
        // Then every single confusable substitution on either reading.
        // Candidates are ranked by the letters O/Q they leave (few issuers
        // use them); only a unique best candidate is taken.
        let mut candidates: Vec<(usize, Vec<Vec<u8>>, Vec<Correction>)> = Vec::new();
        let starts: Vec<(Vec<Vec<u8>>, Vec<Correction>)> = if bulk.is_empty() {
            vec![(lines.to_vec(), Vec::new())]
        } else {
            vec![(lines.to_vec(), Vec::new()), (zeroed, bulk)]
        };
        for (start, changes) in starts {
            let mut work = start.clone();
            for s in &spans {
                for col in s.start..s.end {
                    if classes[s.line][col] != Class::AlphaNumeric {
                        continue;
                    }
                    let orig = work[s.line][col];
                    for alt in alternatives(orig) {
                        work[s.line][col] = alt;
                        if passes(&work) {
                            let letters_o = spans
                                .iter()
                                .flat_map(|s| work[s.line][s.start..s.end].iter())
                                .filter(|&&c| c == b'O' || c == b'Q')
                                .count();
                            let mut all = changes.clone();
                            all.push(correction(
                                s.line,
                                col,
                                orig,
                                alt,
                                CorrectionReason::CheckDigit,
                            ));
                            candidates.push((letters_o, work.clone(), all));
                        }
                    }
                    work[s.line][col] = orig;
                }
            }
        }
        let Some(best) = candidates.iter().map(|c| c.0).min() else {
            continue;
        };
        let mut best_ones = candidates.into_iter().filter(|c| c.0 == best);
        if let (Some((_, fixed, changes)), None) = (best_ones.next(), best_ones.next()) {
            lines.clone_from_slice(&fixed);
            out.extend(changes);
        }
    }
}

fn trimmed(b: &[u8]) -> String {
    let end = b.iter().rposition(|&c| c != b'<').map_or(0, |i| i + 1);
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn words(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .split('<')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn yymmdd(b: &[u8]) -> Option<(u16, u8, u8)> {
    if b.len() != 6 {
        return None;
    }
    let yy = u16::try_from(digits(&b[0..2])?).ok()?;
    let mm = u8::try_from(digits(&b[2..4])?).ok()?;
    let dd = u8::try_from(digits(&b[4..6])?).ok()?;
    Some((yy, mm, dd))
}

/// Birth: the latest century that does not put the date after `today`.
pub(crate) fn birth_date(b: &[u8], today: Date) -> Option<Date> {
    let (yy, mm, dd) = yymmdd(b)?;
    let base = today.year() - today.year() % 100;
    let d = Date::new(base + yy, mm, dd)?;
    if d <= today {
        Some(d)
    } else {
        Date::new(base.checked_sub(100)? + yy, mm, dd)
    }
}

/// Expiry: the first century whose date is at most 50 years after `today`.
pub(crate) fn expiry_date(b: &[u8], today: Date) -> Option<Date> {
    let (yy, mm, dd) = yymmdd(b)?;
    let base = today.year() - today.year() % 100;
    let year = if base + yy <= today.year() + 50 {
        base + yy
    } else {
        base.checked_sub(100)? + yy
    };
    Date::new(year, mm, dd)
}

fn fields(lines: &[Vec<u8>], l: &Layout, today: Date) -> MrzFields {
    let name = text(lines, l.name);
    let end = name.iter().rposition(|&c| c != b'<').map_or(0, |i| i + 1);
    let name = &name[..end];
    let (surname, given) = match name.windows(2).position(|w| w == b"<<") {
        Some(i) => (&name[..i], &name[i + 2..]),
        None => (name, &name[name.len()..]),
    };
    let n = number_parts(lines, l);
    let optional_end = l.optional.end;
    let opt_line = &lines[l.optional.line];
    let optional = &opt_line[n.optional_start.min(optional_end)..optional_end];
    MrzFields {
        document_code: trimmed(text(lines, l.code)),
        issuing_state: trimmed(text(lines, l.state)),
        surname: words(surname),
        given_names: words(given),
        document_number: trimmed(&n.number),
        nationality: trimmed(text(lines, l.nationality)),
        birth_date: birth_date(text(lines, l.birth), today),
        sex: match lines[l.sex.line][l.sex.start] {
            b'M' => Sex::Male,
            b'F' => Sex::Female,
            _ => Sex::Unspecified,
        },
        expiry_date: expiry_date(text(lines, l.expiry), today),
        optional_data: trimmed(optional),
        optional_data_2: l.optional2.map(|s| trimmed(text(lines, s))),
    }
}
