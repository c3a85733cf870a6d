//! The payloads the scenarios post. By default every message is unique, as every real
//! completion is: a sequence number, a random run id and varied text, all of the configured
//! size. Bodies are content-addressed in the store, so a repeated payload is written once and
//! only found again afterwards; that variant (`--same-payload`) is reported beside, never
//! instead.

use rand::Rng;

/// Makes payloads of `bytes` bytes (JSON objects), unique per sequence number unless `same`.
#[derive(Debug, Clone, Copy)]
pub struct Payloads {
    /// Size of each payload in bytes.
    pub bytes: usize,
    /// Post one identical payload every time instead of unique ones.
    pub same: bool,
}

/// Words the filler text is made of, so that payloads read like text and do not repeat.
const WORDS: &[&str] = &[
    "invoice",
    "total",
    "customer",
    "shipped",
    "pending",
    "amount",
    "currency",
    "order",
    "line",
    "item",
    "refund",
    "paid",
    "due",
    "address",
    "street",
    "city",
    "note",
    "extracted",
    "field",
    "value",
    "confidence",
    "page",
    "table",
    "row",
    "date",
    "vendor",
    "tax",
    "discount",
];

impl Payloads {
    /// The label recorded with each figure.
    pub fn label(&self) -> &'static str {
        if self.same {
            "same payload every message"
        } else {
            "unique payload per message"
        }
    }

    /// Payload number `seq`: `{"seq":…,"run_id":"…","note":"…"}`, exactly `bytes` long (or
    /// the shortest such object when `bytes` is smaller).
    pub fn payload(&self, seq: usize) -> String {
        let mut rng = rand::rng();
        let (seq, run_id) = if self.same { (0, 0) } else { (seq, rng.random::<u64>()) };
        let head = format!("{{\"seq\":{seq},\"run_id\":\"{run_id:016x}\",\"note\":\"");
        let mut out = String::with_capacity(self.bytes.max(head.len() + 2));
        out.push_str(&head);
        let text_len = self.bytes.saturating_sub(head.len() + 2);
        while out.len() < head.len() + text_len {
            let word = if self.same {
                WORDS[out.len() % WORDS.len()]
            } else {
                WORDS[rng.random_range(0..WORDS.len())]
            };
            out.push_str(word);
            out.push(' ');
        }
        out.truncate(head.len() + text_len);
        out.push_str("\"}");
        out
    }

    /// A `POST /v1/messages` body for processor `proc_bench` carrying payload `seq`.
    pub fn message(&self, seq: usize) -> String {
        format!("{{\"processor_id\":\"proc_bench\",\"payload\":{}}}", self.payload(seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_valid_json_of_the_size_asked_and_unique_unless_same() {
        let unique = Payloads { bytes: 1024, same: false };
        let (a, b) = (unique.payload(1), unique.payload(2));
        assert_eq!((a.len(), b.len()), (1024, 1024));
        assert_ne!(a, b);
        assert_ne!(unique.payload(1), a, "the same sequence number twice must still differ");
        serde_json::from_str::<serde_json::Value>(&a).expect("valid JSON");
        let same = Payloads { bytes: 1024, same: true };
        assert_eq!(same.payload(1), same.payload(2));
        assert_eq!(same.payload(7).len(), 1024);
        let tiny = Payloads { bytes: 10, same: false }.payload(3);
        serde_json::from_str::<serde_json::Value>(&tiny).expect("valid JSON when small");
    }
}
