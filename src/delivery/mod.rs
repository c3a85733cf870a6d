//! Delivery: the dispatcher with its lanes and call slots, the HTTP sender with its SSRF guard, Standard Webhooks
//! signing, the retry policy, and recover jobs.

pub mod attempt;
pub mod codes;
pub mod dispatcher;
pub mod failure_log;
pub mod guard;
pub mod lanes;
pub mod recover;
pub mod retry;
pub mod sender;
pub mod signing;
pub mod slots;
pub mod special_addresses;
pub mod ticket;

pub use dispatcher::Dispatcher;
pub use sender::{CallResult, Sender};
pub use slots::{CallSlot, NoSlot};
