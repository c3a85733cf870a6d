//! Delivery: the dispatcher with its lanes, call slots and rate limits, Standard Webhooks
//! signing, the retry policy, and recover jobs. The calls themselves go through [`crate::outbound`].

pub mod attempt;
pub mod dispatcher;
pub mod failure_log;
pub mod lanes;
pub mod rate_limit;
pub mod rate_limit_stamp;
pub mod recover;
pub mod retry;
pub mod signing;
pub mod slots;
pub mod ticket;

pub use dispatcher::Dispatcher;
pub use slots::{CallSlot, NoSlot};
