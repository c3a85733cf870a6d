use hookrelay_testkit as common;

// End-to-end delivery behaviour: retries on the persisted schedule, exhaustion,
// `Retry-After`, timeouts, the response-body cap, redirects, the SSRF guard, secret
// rotation, header redaction, disabled automations, fan-out, rate limits and graceful
// shutdown. Every test runs the real binary against receivers on 127.0.0.1 with its own
// SQLite file.

mod helpers;

mod disabled;
mod failing_neighbours;
mod fan_out;
mod fifo;
mod fifo_crash;
mod fifo_switch;
mod lanes;
mod memory;
mod operational;
mod rate_limit_callers;
mod rate_limit_stops;
mod rate_limits;
mod recorded_headers;
mod redaction;
mod responses;
mod retries;
mod retry_after;
mod secrets;
mod shutdown;
mod ssrf;
mod stale_copies;
mod stalled;
mod starved;
mod timeouts;
