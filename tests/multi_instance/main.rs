//! Several hookrelay instances on one PostgreSQL database share one outbox safely (issue 15,
//! step 5), proven on the real binary: three instances under load with one `kill -9`ed and
//! restarted (`kill`), sheet rows contiguous across instances (`sheets`), the database
//! going away and coming back under two instances (`outage`), a recover job whose instance
//! is `kill -9`ed finished by a survivor (`recover`), and one rate limit kept by two
//! instances as the receiver sees it (`rate_limit`).
//!
//! They need the server `HOOKRELAY_TEST_DATABASE` names (`source .ci/postgres.sh`); without
//! it they are skipped, saying so, except under `CI=true`, where they fail. `outage` stops
//! a PostgreSQL cluster: it starts one of its own (`PrivateCluster`), so no other test's
//! server goes away.

use hookrelay_testkit as common;
use hookrelay_testkit::postgres::required_server as server;

mod kill;
mod outage;
mod rate_limit;
mod receiver;
mod recover;
mod sheets;
