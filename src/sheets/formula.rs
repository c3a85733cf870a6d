//! Keeps CSV fields from being run as formulas ("CSV injection", OWASP).
//!
//! A spreadsheet program opening a CSV evaluates a field that starts with `=`, `+`, `-` or
//! `@` (a tab or carriage return first can lead there too): `=HYPERLINK(…)` makes a
//! phishing link, `=cmd|…` asks to run a program. Such a field is written with a leading
//! `'`, which the program takes as "text follows" and does not show.
//!
//! Numbers stay numbers: a value written exactly as JSON writes a number (`-5`, `-3.5`,
//! `-1e-7`) is left as it is, since the program reads it as that number and evaluates
//! nothing. The sink stores a cell's text, not its JSON type, so this holds alike for the
//! JSON number `-5` and the string `"-5"`; the string `"-5+1"` is not a number and gets the
//! `'`. XLSX needs none of this: its cells are typed, and values are written as strings or
//! numbers, never as formulas.

use std::borrow::Cow;

/// First characters that make a spreadsheet program read a CSV field as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `value` as a CSV field a spreadsheet program shows rather than evaluates: with a
/// leading `'` when it starts like a formula and is not a number.
pub fn csv_field(value: &str) -> Cow<'_, str> {
    if value.starts_with(FORMULA_STARTS) && !is_json_number(value) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// Whether `value` is a number in JSON's grammar: `-`? integer without leading zeros,
/// optional fraction, optional exponent.
fn is_json_number(value: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = value.strip_prefix('-').unwrap_or(value);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (unsigned, None),
    };
    let (integer, fraction) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    digits(integer)
        && (integer == "0" || !integer.starts_with('0'))
        && fraction.is_none_or(digits)
        && exponent.is_none_or(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_get_a_quote_and_numbers_do_not() {
        for formula in [
            "=HYPERLINK(\"https://evil.example\",\"click\")",
            "=cmd|' /C calc'!A0",
            "+1+1",
            "-1+1",
            "-",
            "--5",
            "-007",
            "-5.",
            "-1e",
            "@SUM(A1:A2)",
            "\t=1+1",
            "\r=1+1",
        ] {
            assert_eq!(csv_field(formula), format!("'{formula}"), "{formula:?}");
        }
        for kept in ["-5", "-3.5", "-0", "-0.25", "-1e-7", "-2E+10", "5", "a=b", "", " =1", "'=1"] {
            assert_eq!(csv_field(kept), kept, "{kept:?}");
        }
    }
}
