//! An incremental decoder of the event streams an upstream Dify-compatible server and an
//! OpenAI-compatible llm answer:
//! bytes in, in chunks cut anywhere; JSON events out, one per complete `data:` line.
//!
//! Lines end with LF, CRLF or a lone CR (as the SSE specification allows), also when the
//! CR and LF arrive in different chunks; a byte-order mark before the first line is
//! ignored. A `data:` line whose value is not JSON, any other field (`event:`, `id:`,
//! `retry:`), comments (`: …`) and blank lines yield nothing, and a last line the stream
//! never ended is dropped. `data: [DONE]` (how an OpenAI-compatible stream ends) marks the
//! stream done: the events before it are returned, nothing after it. A line longer than the decoder's bound is an error, so a stream
//! without line ends cannot grow memory without limit. The work is linear in the input.

use serde_json::Value;

/// Longest line (one event) accepted from an upstream or an llm: 8 MiB.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A line longer than the decoder's bound: the stream cannot be trusted past it.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("an event line is longer than {max} bytes")]
pub struct LineTooLong {
    /// The bound.
    pub max: usize,
}

/// See the module doc.
#[derive(Debug)]
pub struct SseDecoder {
    /// The line begun and not yet ended.
    line: Vec<u8>,
    max_line: usize,
    /// The last byte was a CR: an LF right after it ends no further line.
    after_cr: bool,
    /// No line has ended yet (a BOM may lead the first).
    first_line: bool,
    /// A `data: [DONE]` line was read.
    done: bool,
}

impl SseDecoder {
    /// A decoder refusing lines longer than `max_line` bytes (line end excluded).
    pub fn new(max_line: usize) -> Self {
        Self { line: Vec::new(), max_line, after_cr: false, first_line: true, done: false }
    }

    /// Decodes `chunk`, returning the events of the lines it ends, in order. An error (a
    /// line too long) is final: the stream cannot be trusted past it.
    pub fn push(&mut self, mut chunk: &[u8]) -> Result<Vec<Value>, LineTooLong> {
        let mut out = Vec::new();
        if chunk.is_empty() || self.done {
            return Ok(out);
        }
        if self.after_cr && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        self.after_cr = false;
        while let Some(end) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.append(&chunk[..end])?;
            if let Some(event) = self.end_line() {
                out.push(event);
            }
            if self.done {
                return Ok(out);
            }
            let crlf = chunk[end] == b'\r' && chunk.get(end + 1) == Some(&b'\n');
            if chunk[end] == b'\r' && end + 1 == chunk.len() {
                self.after_cr = true;
            }
            chunk = &chunk[end + if crlf { 2 } else { 1 }..];
        }
        self.append(chunk)?;
        Ok(out)
    }

    /// Whether a `data: [DONE]` line ended the stream.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Bytes held for the unfinished line (at most the bound).
    pub fn buffered(&self) -> usize {
        self.line.len()
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), LineTooLong> {
        if self.line.len() + bytes.len() > self.max_line {
            return Err(LineTooLong { max: self.max_line });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self) -> Option<Value> {
        let mut line: &[u8] = &self.line;
        if std::mem::take(&mut self.first_line) {
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        let event = event_of(line);
        if event.is_none() && is_done_line(line) {
            self.done = true;
        }
        self.line.clear();
        event
    }
}

/// `data: [DONE]`, blanks around the value allowed as for any `data:` line.
fn is_done_line(line: &[u8]) -> bool {
    line.trim_ascii_start().strip_prefix(b"data:").is_some_and(|d| d.trim_ascii() == b"[DONE]")
}

/// The JSON of one `data:` line.
fn event_of(line: &[u8]) -> Option<Value> {
    // Leading blanks are tolerated (some servers indent); the field name is case-sensitive.
    let data = line.trim_ascii_start().strip_prefix(b"data:")?;
    let data = String::from_utf8_lossy(data);
    serde_json::from_str(data.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all(decoder: &mut SseDecoder, chunks: &[&[u8]]) -> Vec<Value> {
        chunks.iter().flat_map(|c| decoder.push(c).expect("within bound")).collect()
    }

    #[test]
    fn decodes_every_line_ending_and_chunking() {
        let want = vec![json!({"a": 1}), json!({"b": 2}), json!({"c": 3})];
        for stream in [
            &b"data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\ndata:{\"c\":3}\r\r"[..],
            b"\xEF\xBB\xBFdata: {\"a\":1}\nevent: ping\n: hi\ndata: nope\ndata: {\"b\":2}\rdata: {\"c\":3}\n",
        ] {
            assert_eq!(all(&mut SseDecoder::new(64), &[stream]), want);
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            assert_eq!(all(&mut SseDecoder::new(64), &bytes), want, "byte by byte");
        }
    }

    #[test]
    fn a_crlf_split_across_chunks_is_one_line_end() {
        let mut d = SseDecoder::new(64);
        let chunks: [&[u8]; 4] = [b"data: 1\r", b"", b"\ndata: 2\r", b"\r\n"];
        assert_eq!(all(&mut d, &chunks), vec![json!(1), json!(2)]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn done_ends_the_stream() {
        let mut d = SseDecoder::new(64);
        assert_eq!(d.push(b"data: 1\ndata: [DONE]\ndata: 2\n").expect("fits"), vec![json!(1)]);
        assert!(d.is_done());
        assert!(d.push(b"data: 3\n").expect("fits").is_empty());
    }

    #[test]
    fn an_unended_line_is_held_and_a_long_one_refused() {
        let mut d = SseDecoder::new(8);
        assert!(d.push(b"data: 1").expect("fits").is_empty());
        assert_eq!(d.buffered(), 7);
        assert!(d.push(b"23").is_err(), "9 bytes without a line end");
        let mut d = SseDecoder::new(8);
        assert_eq!(d.push(b"data: 12\ndata: 3\n").expect("fits"), vec![json!(12), json!(3)]);
    }
}
