//! The one way work enters the relay. A producer (`POST /v1/messages`, a workflow run's
//! completion) gives [`Relay`] a message; it is committed with one delivery per subscribed
//! automation, and those deliveries are handed to the dispatcher in the same call, so they
//! go out at once rather than when the claim loop next polls (or, for the ones the write
//! claimed, when their lease runs out).
//!
//! The wrong way is closed by types: the store's ingest needs an `Intake`, a sealed trait
//! whose one implementation (the dispatcher's `Ticket`) only the dispatcher makes, and for
//! an ingest only in `Dispatcher::produce`, which hands the write's deliveries over itself.

use std::sync::Arc;

use crate::delivery::Dispatcher;
use crate::store::{NewMessage, Receipt, RunOutcome, Store, StoreResult};

/// Accepts messages: see the module doc. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    store: Store,
    dispatcher: Arc<Dispatcher>,
}

impl Relay {
    /// Producers' entry over `store`, handing deliveries to `dispatcher`.
    pub fn new(store: Store, dispatcher: Arc<Dispatcher>) -> Self {
        Self { store, dispatcher }
    }

    /// Accepts `message`: answers once it and its deliveries are committed and handed to
    /// the dispatcher. A replayed idempotency key stores nothing and answers as the first
    /// time; a refused message writes nothing (so it rolls back no other producer's write).
    pub async fn accept(&self, message: NewMessage) -> StoreResult<Receipt> {
        let store = &self.store;
        self.dispatcher.produce(|intake| store.ingest(message, intake)).await
    }

    /// Records run `run_id`'s final state and accepts its `completion` message in the same
    /// transaction, like [`Relay::accept`].
    pub async fn finish_run(
        &self,
        run_id: String,
        outcome: RunOutcome,
        completion: NewMessage,
    ) -> StoreResult<Receipt> {
        let store = &self.store;
        self.dispatcher
            .produce(|intake| store.finish_run(run_id, outcome, completion, intake))
            .await
    }
}
