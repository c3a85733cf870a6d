use hookrelay_testkit as common;

// Receiver faults (issue 5, item 4), each against the real binary with its own SQLite file
// and a receiver written on a raw TCP socket so the test controls every byte: connection
// refused, reset or closed mid-response, accept-then-silence, a dribbled body, a 1 GB body,
// invalid HTTP, and `Retry-After` values in the past or absurdly far ahead. Each asserts the
// error code stored on the log and the next attempt time against the configured schedule.
// (500s, plain `Retry-After`, a sleeping receiver, the body cap and redirects are covered
// by the `delivery` target.)

mod support;

mod body;
mod connection;
mod invalid;
mod retry_after;
mod slow;
