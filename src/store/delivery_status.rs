//! Where a delivery stands, as stored (`deliveries.status`, CHECKed by the schema) and shown.

use super::decode;

decode::stored_enum! {
    /// Where a delivery stands.
    pub enum DeliveryStatus {
        /// Waiting for its next attempt (or in flight).
        Pending = "pending",
        /// A call got a 2xx.
        Succeeded = "succeeded",
        /// Every attempt failed, or the maximum age passed.
        Exhausted = "exhausted",
        /// Ended without further retries (automation deleted or disabled, or a recover attempt failed).
        Failed = "failed",
    }
}
