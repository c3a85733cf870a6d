//! Dify event streams as an upstream might send them — well-formed, garbled, truncated, cut
//! into chunks anywhere — and an oracle for what they mean; plus the properties of
//! `hookrelay::workflow::sse::SseDecoder` in-process (1,000 cases each by default, about
//! 2 s each; `PROPTEST_CASES=100000 cargo test --test fuzz sse::` for more).
//!
//! The oracle reads the whole stream at once, differently from the decoder: CRLF and lone
//! CR become LF, the text is split on LF, the last (unended) piece is dropped, a BOM before
//! the first line is removed, and a line is an event when, after leading blanks, it starts
//! with `data:` and the rest is JSON.

use hookrelay::workflow::sse::SseDecoder;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::strategies::{apply, arb_json, arb_leaf, byte_edits, config};

/// How a line ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ending {
    Lf,
    CrLf,
    Cr,
    /// `\n\n`, as Dify sends.
    Blank,
    None,
}

impl Ending {
    fn bytes(self) -> &'static [u8] {
        match self {
            Ending::Lf => b"\n",
            Ending::CrLf => b"\r\n",
            Ending::Cr => b"\r",
            Ending::Blank => b"\n\n",
            Ending::None => b"",
        }
    }
}

/// One piece of a stream.
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    /// `data: {json}`.
    Event(Value, Ending),
    /// Any other line: fields, comments, data that is not JSON, truncated events.
    Other(String, Ending),
    /// Arbitrary bytes, line ends included.
    Garbage(Vec<u8>),
    /// A `text_chunk` event this many bytes long.
    Huge(usize, Ending),
    /// A byte-order mark.
    Bom,
}

fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![
        3 => Just(Ending::Blank),
        3 => Just(Ending::Lf),
        2 => Just(Ending::CrLf),
        1 => Just(Ending::Cr),
        1 => Just(Ending::None),
    ]
}

/// Dify's events, unknown ones, and JSON that is no event.
pub(crate) fn arb_event() -> impl Strategy<Value = Value> {
    let node = prop::sample::select(vec!["node_started", "node_finished", "text_chunk"]);
    let unknown = prop::sample::select(vec!["workflow_started", "ping", "message", "", "Error"]);
    let status = prop_oneof![
        3 => Just(json!("succeeded")),
        1 => prop::sample::select(vec!["failed", "stopped", "running", "SUCCEEDED"]).prop_map(Value::from),
        1 => arb_leaf(),
    ];
    let outputs = prop_oneof![
        3 => prop::collection::btree_map("[a-z_.]{1,6}", arb_json(), 0..4)
            .prop_map(|m| json!(m)),
        1 => arb_json(),
    ];
    prop_oneof![
        6 => (node, arb_json()).prop_map(|(e, d)| json!({"event": e, "task_id": "up-1", "data": d})),
        1 => (unknown, arb_json()).prop_map(|(e, d)| json!({"event": e, "data": d})),
        2 => (status, outputs, arb_leaf(), arb_leaf(), arb_leaf()).prop_map(|(s, o, t, n, e)| {
            json!({"event": "workflow_finished", "task_id": "up-1",
                   "data": {"status": s, "outputs": o, "total_tokens": t, "total_steps": n, "error": e}})
        }),
        1 => Just(json!({"event": "workflow_finished"})),
        1 => arb_leaf().prop_map(|m| json!({"event": "error", "status": 500, "message": m})),
        1 => arb_json(),
    ]
}

/// A line that is not a well-formed event.
fn other_line() -> impl Strategy<Value = String> {
    let truncated = (arb_event(), any::<prop::sample::Index>()).prop_map(|(e, i)| {
        let text = e.to_string();
        let cut = i.index(text.len());
        let cut = (0..=cut).rev().find(|c| text.is_char_boundary(*c)).unwrap_or(0);
        format!("data: {}", &text[..cut])
    });
    prop_oneof![
        prop::sample::select(vec![
            "event: ping",
            ": keep-alive",
            "data:",
            "data: ",
            "data",
            "DATA: {\"event\":\"error\"}",
            "event: workflow_finished",
            "retry: 10",
            "id: 7",
            "data: {",
            "data: }",
        ])
        .prop_map(str::to_string),
        "(data|event|id|retry|)(:| :|) ?[^\r\n]{0,40}",
        truncated,
    ]
}

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => any::<u8>(),
        1 => prop::sample::select(b"\r\n:{}\"data ".to_vec()),
    ];
    prop::collection::vec(byte, 0..48)
}

/// Pieces, with huge lines of at most `huge` bytes.
fn piece(huge: usize) -> impl Strategy<Value = Piece> {
    prop_oneof![
        8 => (arb_event(), ending()).prop_map(|(e, end)| Piece::Event(e, end)),
        3 => (other_line(), ending()).prop_map(|(l, end)| Piece::Other(l, end)),
        2 => garbage().prop_map(Piece::Garbage),
        1 => (64..=huge, ending()).prop_map(|(n, end)| Piece::Huge(n, end)),
        1 => Just(Piece::Bom),
    ]
}

/// The bytes of `pieces`.
pub(crate) fn render(pieces: &[Piece]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Event(e, end) => {
                out.extend_from_slice(format!("data: {e}").as_bytes());
                out.extend_from_slice(end.bytes());
            }
            Piece::Other(line, end) => {
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(end.bytes());
            }
            Piece::Garbage(bytes) => out.extend_from_slice(bytes),
            Piece::Huge(n, end) => {
                let head = "data: {\"event\":\"text_chunk\",\"data\":{\"text\":\"";
                let pad = n.saturating_sub(head.len() + 3);
                out.extend_from_slice(head.as_bytes());
                out.extend(std::iter::repeat_n(b'x', pad));
                out.extend_from_slice(b"\"}}");
                out.extend_from_slice(end.bytes());
            }
            Piece::Bom => out.extend_from_slice(b"\xEF\xBB\xBF"),
        }
    }
    out
}

/// A whole stream: pieces; a Dify-like run, as sent or with its bytes edited; or arbitrary
/// bytes.
pub(crate) fn arb_stream(huge: usize) -> impl Strategy<Value = Vec<u8>> {
    let edits = prop_oneof![Just(Vec::new()), byte_edits()];
    let dify = (prop::collection::vec((arb_event(), ending()), 0..8), edits).prop_map(
        |(events, edits)| {
            let mut pieces = vec![Piece::Event(json!({"event": "workflow_started"}), Ending::Blank)];
            pieces.extend(events.into_iter().map(|(e, end)| Piece::Event(e, end)));
            let done = json!({"event": "workflow_finished", "data": {"status": "succeeded", "outputs": {"a": 1}}});
            pieces.push(Piece::Event(done, Ending::Blank));
            apply(render(&pieces), &edits)
        },
    );
    prop_oneof![
        5 => prop::collection::vec(piece(huge), 0..14).prop_map(|p| render(&p)),
        3 => dify,
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

/// `bytes` cut at up to `max_cuts` places.
pub(crate) fn arb_chunks(bytes: Vec<u8>, max_cuts: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(any::<prop::sample::Index>(), 0..=max_cuts).prop_map(move |cuts| {
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        at.push(0);
        at.push(bytes.len());
        at.sort_unstable();
        at.dedup();
        at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
    })
}

/// The oracle's lines: every ended line, raw (see the module doc).
pub(crate) fn oracle_lines(bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut normal = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'\r', Some(b'\n')) => {
                normal.push(b'\n');
                i += 2;
            }
            (b'\r', _) => {
                normal.push(b'\n');
                i += 1;
            }
            (b, _) => {
                normal.push(b);
                i += 1;
            }
        }
    }
    let mut lines: Vec<Vec<u8>> = normal.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    let unended = lines.pop().unwrap_or_default();
    (lines, unended)
}

/// The events the oracle reads in `bytes`.
pub(crate) fn oracle_events(bytes: &[u8]) -> Vec<Value> {
    let (lines, _) = oracle_lines(bytes);
    lines
        .iter()
        .enumerate()
        .filter_map(|(n, line)| {
            let line =
                if n == 0 { line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line) } else { line };
            let text = String::from_utf8_lossy(line);
            let data = text.trim_start_matches([' ', '\t', '\x0c']).strip_prefix("data:")?;
            serde_json::from_str(data.trim()).ok()
        })
        .collect()
}

/// Every event the decoder yields for `chunks`, or its error.
fn decode(max_line: usize, chunks: &[Vec<u8>]) -> Result<Vec<Value>, String> {
    let mut decoder = SseDecoder::new(max_line);
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(decoder.push(chunk).map_err(|e| e.to_string())?);
        assert!(decoder.buffered() <= max_line, "holds {} bytes", decoder.buffered());
    }
    Ok(out)
}

fn stream_and_chunks(huge: usize, cuts: usize) -> impl Strategy<Value = (Vec<u8>, Vec<Vec<u8>>)> {
    arb_stream(huge).prop_flat_map(move |b| (Just(b.clone()), arb_chunks(b, cuts)))
}

proptest! {
    #![proptest_config(config(1000))]

    /// However a stream is cut, the decoder reads the events the oracle reads, in order.
    #[test]
    fn the_decoder_reads_what_the_oracle_reads((bytes, chunks) in stream_and_chunks(2048, 24)) {
        let got = decode(usize::MAX, &chunks);
        prop_assert_eq!(got, Ok(oracle_events(&bytes)));
    }

    /// Byte by byte too (every CRLF split, every UTF-8 sequence cut).
    #[test]
    fn byte_by_byte_is_the_same((bytes, _) in stream_and_chunks(256, 0)) {
        let chunks: Vec<Vec<u8>> = bytes.chunks(1).map(<[u8]>::to_vec).collect();
        prop_assert_eq!(decode(usize::MAX, &chunks), Ok(oracle_events(&bytes)));
    }

    /// With a bound: an error exactly when some line (ended or not) is longer; else as above.
    #[test]
    fn a_line_over_the_bound_is_an_error_and_only_then(
        (bytes, chunks) in stream_and_chunks(600, 8),
        max_line in 0usize..400,
    ) {
        let (lines, unended) = oracle_lines(&bytes);
        let too_long = lines.iter().chain(std::iter::once(&unended)).any(|l| l.len() > max_line);
        match decode(max_line, &chunks) {
            Ok(events) => {
                prop_assert!(!too_long, "no error though a line is longer than {}", max_line);
                prop_assert_eq!(events, oracle_events(&bytes));
            }
            Err(e) => {
                prop_assert!(too_long, "error without a long line: {}", e);
                prop_assert!(e.contains(&max_line.to_string()), "{}", e);
            }
        }
    }
}
