//! The pure decoders, in-process: A1 ranges, config files, the sheets row flattener.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use hookrelay::config::{Config, EXAMPLE};
use hookrelay::sheets::a1;
use hookrelay::sheets::flatten::row_of;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::strategies::{arb_json, config, mutated_bytes};

/// Strings close to A1 notation: optional (quoted) sheet, `$`, letters, digits, `:`.
fn a1ish() -> impl Strategy<Value = String> {
    prop_oneof![
        "(('[A-Za-z0-9 '!:$]{0,6}'|[A-Za-z0-9_ ]{0,6})!)?\\$?[A-Za-z]{0,4}\\$?[0-9]{0,8}(:\\$?[A-Za-z]{0,4}\\$?[0-9]{0,8})?",
        "[A-Z]{1,4}[0-9]{1,11}(:[A-Z]{1,4}[0-9]{0,11})?",
        "[A-Za-z0-9$:!' ]{0,12}",
    ]
}

/// Parses `s`; an Ok range must print as text that parses to the same range.
fn check_a1(s: &str) -> Result<(), TestCaseError> {
    if let Ok(range) = a1::parse(s) {
        let printed = range.to_string();
        let again = a1::parse(&printed);
        prop_assert_eq!(again.as_ref().ok(), Some(&range), "{:?} printed as {:?}", s, printed);
        // Bounds on any data size must not panic either.
        for (rows, cols) in [(0, 0), (1, 1), (10, 3), (u32::MAX, a1::MAX_COLUMNS)] {
            if let Some(b) = range.bounds(rows, cols) {
                prop_assert!(b.first_row >= 1 && b.first_row <= b.last_row, "{:?}", b);
                prop_assert!(b.first_col <= b.last_col, "{:?}", b);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn a1_parse_arbitrary_never_panics(s in ".{0,40}") {
        check_a1(&s)?;
    }

    #[test]
    fn a1_parse_a1ish_round_trips(s in a1ish()) {
        check_a1(&s)?;
    }
}

/// `EXAMPLE` with whole lines dropped, duplicated or swapped.
fn line_mutated_example() -> impl Strategy<Value = String> {
    let lines: Vec<String> = EXAMPLE.lines().map(str::to_string).collect();
    let n = lines.len();
    prop::collection::vec((0..n, 0u8..3, 0..n), 1..6).prop_map(move |ops| {
        let mut l = lines.clone();
        for (i, op, j) in ops {
            let (i, j) = (i % l.len().max(1), j % l.len().max(1));
            if l.is_empty() {
                break;
            }
            match op {
                0 => {
                    l.remove(i);
                }
                1 => {
                    let dup = l[i].clone();
                    l.insert(j, dup);
                }
                _ => l.swap(i, j),
            }
        }
        l.join("\n")
    })
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn config_arbitrary_text_never_panics(s in ".{0,200}") {
        let _ = Config::from_toml(&s);
        let _ = hookrelay::workflow::definitions::load(&s);
    }

    #[test]
    fn config_byte_mutated_example_never_panics(b in mutated_bytes(EXAMPLE.as_bytes().to_vec())) {
        let text = String::from_utf8_lossy(&b);
        if let Ok(c) = Config::from_toml(&text) {
            let _ = c.validate();
        }
        let _ = hookrelay::workflow::definitions::load(&text);
    }

    #[test]
    fn config_line_mutated_example_never_panics(text in line_mutated_example()) {
        if let Ok(c) = Config::from_toml(&text) {
            let _ = c.validate();
        }
        let _ = hookrelay::workflow::definitions::load(&text);
    }
}

static ROWS: AtomicUsize = AtomicUsize::new(0);
static COLLISIONS: AtomicUsize = AtomicUsize::new(0);

/// Bodies as the sink gets them: arbitrary values, objects, and `completion` wrappers.
fn sink_bodies() -> impl Strategy<Value = Value> {
    prop_oneof![
        arb_json(),
        prop::collection::vec((crate::strategies::arb_key(), arb_json()), 0..8)
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        (arb_json(), arb_json()).prop_map(|(parsed, likelihoods)| json!({
            "completion": {"choices": [{"message": {"parsed": parsed}}], "likelihoods": likelihoods}
        })),
    ]
}

proptest! {
    #![proptest_config(config(1000))]

    /// Never panics; column names should be unique, but `{"a.b":1,"a":{"b":2}}` collides
    /// (a known issue), so collisions are counted and reported, not failed.
    #[test]
    fn flatten_row_of_never_panics(v in sink_bodies(), likelihoods in any::<bool>(), max in 0usize..64) {
        if let Ok(row) = row_of(&v, likelihoods, max) {
            ROWS.fetch_add(1, Ordering::Relaxed);
            let mut seen = HashSet::new();
            if !row.cells.iter().all(|(c, _, _)| seen.insert(c.clone())) {
                let n = COLLISIONS.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 {
                    eprintln!("flatten: duplicate column names for {v}");
                }
            }
            for (_, _, p) in &row.cells {
                if let Some(p) = p {
                    prop_assert!((0.0..=1.0).contains(p));
                }
            }
        }
    }
}

#[test]
fn flatten_known_collision() {
    let row = row_of(&json!({"a.b": 1, "a": {"b": 2}}), false, 100).expect("row");
    let names: Vec<&str> = row.cells.iter().map(|(c, _, _)| c.as_str()).collect();
    // Documents the known issue; flip to `assert_ne!` once the flattener disambiguates.
    assert_eq!(names, ["a.b", "a.b"]);
    eprintln!(
        "flatten: {} duplicate-column rows so far (of {} Ok rows)",
        COLLISIONS.load(Ordering::Relaxed),
        ROWS.load(Ordering::Relaxed)
    );
}
