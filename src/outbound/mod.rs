//! Outbound calls: the HTTP client with its SSRF guard ([`sender`], [`guard`],
//! [`special_addresses`]), the error codes a call's log can carry ([`codes`]), and the
//! service making one call now and recording its log ([`one_call`], for reruns and test
//! calls). The dispatcher and the workflow nodes call through the same client.

pub mod codes;
pub mod guard;
pub mod one_call;
pub mod sender;
pub mod special_addresses;

pub use codes::ErrorCode;
pub use one_call::{OneCall, OneCallError, OneCalls};
pub use sender::{CallResult, Sender};
