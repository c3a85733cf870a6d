//! Shared strategies: arbitrary JSON values, JSON mutations, byte mutations, and the
//! bounded run configuration.

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{Map, Value};

/// `default_cases` cases, or `PROPTEST_CASES` when set; no regression files.
pub(crate) fn config(default_cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig {
        failure_persistence: None,
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default_cases;
    }
    c
}

/// Object keys: small colliding alphabets (dots, brackets) and arbitrary text.
pub(crate) fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[ab.]{0,3}",
        1 => "[a-z_\\[\\]0-9]{1,8}",
        1 => ".{0,12}",
    ]
}

/// A leaf JSON value.
pub(crate) fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        ".{0,24}".prop_map(Value::from),
        "[a-z]{0,6}".prop_map(Value::from),
    ]
}

/// Any JSON value, up to 4 levels deep.
pub(crate) fn arb_json() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One change to a JSON object.
#[derive(Debug, Clone)]
pub(crate) enum Edit {
    Keep,
    Remove,
    Replace(Value),
}

/// `template` with each field kept, removed or replaced, and a few fields added.
pub(crate) fn mutated_object(template: Value) -> impl Strategy<Value = Value> {
    let n = template.as_object().map_or(0, |o| o.len());
    let edit = prop_oneof![
        3 => Just(Edit::Keep),
        1 => Just(Edit::Remove),
        2 => arb_json().prop_map(Edit::Replace),
    ];
    let extra = prop::collection::vec((arb_key(), arb_json()), 0..3);
    (prop::collection::vec(edit, n), extra).prop_map(move |(edits, extra)| {
        let mut out = Map::new();
        let fields = template.as_object().cloned().unwrap_or_default();
        for ((k, v), e) in fields.into_iter().zip(edits) {
            match e {
                Edit::Keep => {
                    out.insert(k, v);
                }
                Edit::Remove => {}
                Edit::Replace(r) => {
                    out.insert(k, r);
                }
            }
        }
        for (k, v) in extra {
            out.insert(k, v);
        }
        Value::Object(out)
    })
}

/// A byte-level change to a text.
#[derive(Debug, Clone)]
pub(crate) enum ByteEdit {
    Truncate(prop::sample::Index),
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    Delete(prop::sample::Index, usize),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    let i = any::<prop::sample::Index>;
    prop_oneof![
        i().prop_map(ByteEdit::Truncate),
        (i(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Flip(i, b)),
        (
            i(),
            prop::collection::vec(
                prop_oneof![
                    Just(b'{'),
                    Just(b'}'),
                    Just(b'"'),
                    Just(b','),
                    Just(b':'),
                    Just(b'['),
                    Just(b'\\'),
                    Just(b'\n'),
                    Just(b'='),
                    any::<u8>()
                ],
                1..6,
            )
        )
            .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        (i(), 1usize..16).prop_map(|(i, n)| ByteEdit::Delete(i, n)),
    ]
}

/// Applies `edits` to `bytes`.
pub(crate) fn apply(mut bytes: Vec<u8>, edits: &[ByteEdit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len().max(1);
        match e {
            ByteEdit::Truncate(i) => bytes.truncate(i.index(len)),
            ByteEdit::Flip(i, b) => {
                if !bytes.is_empty() {
                    let at = i.index(bytes.len());
                    bytes[at] = *b;
                }
            }
            ByteEdit::Insert(i, b) => {
                let at = i.index(bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            ByteEdit::Delete(i, n) => {
                if !bytes.is_empty() {
                    let at = i.index(bytes.len());
                    let end = (at + n).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
        }
    }
    bytes
}

/// Zero to four byte edits, to [`apply`] to a text the case generates itself.
pub(crate) fn byte_edits() -> impl Strategy<Value = Vec<ByteEdit>> {
    prop::collection::vec(byte_edit(), 0..5)
}

/// `text` with one to four byte edits.
pub(crate) fn mutated_bytes(text: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(byte_edit(), 1..5).prop_map(move |e| apply(text.clone(), &e))
}

/// Bodies for a JSON route whose valid body looks like `template`: arbitrary JSON, the
/// template with fields changed, the template's bytes mutated, and arbitrary bytes.
pub(crate) fn json_bodies(template: Value) -> impl Strategy<Value = Vec<u8>> {
    let bytes = serde_json::to_vec(&template).expect("template");
    prop_oneof![
        2 => arb_json().prop_map(|v| serde_json::to_vec(&v).expect("json")),
        4 => mutated_object(template).prop_map(|v| serde_json::to_vec(&v).expect("json")),
        3 => mutated_bytes(bytes),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}
