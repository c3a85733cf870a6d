-- hookrelay schema. Applied at start-up by src/store/schema.rs.
--
-- Versioning: every statement below is idempotent (IF NOT EXISTS), and the file as a whole is
-- schema version 12 (PRAGMA user_version; 1 had no workflow, upload or spreadsheet tables; 2's
-- deliveries_due index had neither automation_id nor claimed, 3's no claimed; before 4 there
-- was no snapshot_headers table; versions 5 and 6 are described at the end of the file, 7 at the
-- bodies table, 8 at the end of this comment, 9 at api_keys, 10 at recover_jobs, 11 at
-- console_sessions, 12 at rollup_cursor). A later
-- version appends its upgrade steps in src/store/schema.rs, keyed by the version they upgrade
-- from, so an older database is upgraded in place.
--
-- Version 23: a CHECK spells its values with OR, never as an IN list of three or more: SQLite
-- builds a temporary index for such a list every time it checks a row (about 5 us each, several
-- per delivery). Version 23's step rewrites an older database's definitions the same way.
--
-- Version 6: the schema enforces its own invariants. Every enum column has a CHECK naming its
-- values, every boolean column IN (0, 1), every JSON column json_valid (and its shape: object
-- or array); a worksheet and its rows go with their spreadsheet (ON DELETE CASCADE, with
-- PRAGMA foreign_keys = ON on every connection), and logs.status_class is computed from
-- status_code. An older database has its tables rebuilt under these definitions at start-up
-- (src/store/schema.rs); rows whose parent is gone are deleted, as the cascade would have; a
-- stored value a CHECK refuses stops the upgrade, and the relay, naming its table, with the
-- database left as it was.
--
-- Times are integer milliseconds since the Unix epoch (UTC). IDs are prefixed and
-- time-sortable (UUIDv7 hex), so "ORDER BY id" is creation order and time windows are id ranges.
--
-- Version 8: our ids (automations, messages, deliveries, logs, jobs, spreadsheets) are stored
-- as the 16 bytes of their UUIDv7, not their 36-41 characters of text; the column's kind gives
-- the prefix back (src/ids.rs). Bytes sort as the hex digits do, so the order is unchanged.
-- deliveries.recover_job_id adds a first byte saying which kind of job (1 recover, 2 replay).
-- The columns keep their TEXT declarations (TEXT affinity stores a blob as it is), so an
-- upgraded database, whose ids are converted in place (src/store/stored_ids.rs), has the same
-- definitions as a new one. Workflow run and upload ids are Dify's UUID strings and stay text.

-- API keys made by the server (/v1/keys, and the admin key generated at first start). Only the
-- SHA-256 of a key is stored; keys given in the config are not stored (they are admin keys).
-- Version 9 (renames label to name, adds the columns after created_at, so their
-- order is the one an upgraded table has): id (NULL only in a key stored before 9, until the
-- next start gives it one), role (a key stored before 9 is an admin key), expires_at,
-- last_used_at (to the minute) and revoked_at (a revoked key keeps its row, for the list).
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash      BLOB PRIMARY KEY,
    name          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    id            TEXT,
    role          TEXT NOT NULL DEFAULT 'admin' CHECK (role = 'viewer' OR role = 'operator' OR role = 'admin'),
    expires_at    INTEGER,
    last_used_at  INTEGER,
    revoked_at    INTEGER
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_id ON api_keys(id);

-- Content-addressed blobs: request bodies, response bodies and automation snapshots are stored
-- once however many attempts, reruns or logs refer to them. hash = first 16 bytes of SHA-256.
-- A rowid table (version 7): rows go in insertion order, packed several to a page, and only
-- the small hash index takes the random inserts. As a WITHOUT ROWID table, keyed by the
-- random hash, a 1 KB body did not fit an index b-tree cell and took a 4 KB overflow page of
-- its own. used_at: when a row last referred to it (refreshed every few minutes), in ms,
-- which content retention reads. shared: stored more than once (by messages, logs, snapshots
-- or uploads, however many): an expunge deletes only a body nobody else stored, so erasing one
-- message's content never takes another's.
CREATE TABLE IF NOT EXISTS bodies (
    hash        BLOB NOT NULL UNIQUE,
    data        BLOB NOT NULL,
    used_at     INTEGER NOT NULL,
    shared      INTEGER NOT NULL DEFAULT 0 CHECK (shared IN (0, 1)),
    -- Version 21: how data holds the blob: 0 as it was given, 1 compressed with raw deflate
    -- (src/store/bodies.rs). The hash is always the hash of the blob as given.
    encoding    INTEGER NOT NULL DEFAULT 0 CHECK (encoding IN (0, 1))
);
CREATE INDEX IF NOT EXISTS bodies_used ON bodies(used_at);

-- Subscribed webhook endpoints ("automations", uiform's Endpoint).
CREATE TABLE IF NOT EXISTS automations (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    processor_id        TEXT NOT NULL,
    webhook_url         TEXT NOT NULL,
    webhook_headers     TEXT NOT NULL           -- JSON object of string -> string
        CHECK (json_valid(webhook_headers) AND json_type(webhook_headers) = 'object'),
    need_validation     INTEGER NOT NULL CHECK (need_validation IN (0, 1)),
    default_language    TEXT NOT NULL,
    enabled             INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    event_types         TEXT                    -- JSON array; NULL = every event type
        CHECK (event_types IS NULL OR (json_valid(event_types) AND json_type(event_types) = 'array')),
    secret              TEXT NOT NULL CHECK (secret LIKE 'whsec_%'),
    previous_secret     TEXT                    -- still signs until previous_secret_until
        CHECK (previous_secret IS NULL OR previous_secret LIKE 'whsec_%'),
    previous_secret_until INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    -- Version 17: 'fifo' sends its messages one at a time in ingest order (see deliveries_fifo).
    ordering            TEXT NOT NULL DEFAULT 'parallel' CHECK (ordering IN ('parallel', 'fifo')),
    -- Version 18: at most this many calls start in any second (src/delivery/rate_limit.rs);
    -- NULL = no limit.
    rate_limit_per_sec  INTEGER
        CHECK (rate_limit_per_sec IS NULL OR (typeof(rate_limit_per_sec) = 'integer'
            AND rate_limit_per_sec BETWEEN 1 AND 10000))
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS automations_processor ON automations(processor_id, id);

-- Everything a producer posted. The payload lives in bodies (payload_hash).
-- automation_id: the one automation it was addressed to (posted with automation_id, or an
-- automation's test call); NULL when it went to its processor's subscribed automations.
-- Ingest is the hot path: each index here costs on every message, so there are only the two
-- the list filters need (see version 5 at the end).
-- content_expunged_at (version 7): when its content was erased (DELETE
-- /v1/messages/{id}/content); a body of it found missing is then "expunged", not "expired".
CREATE TABLE IF NOT EXISTS messages (
    id              TEXT PRIMARY KEY,
    processor_id    TEXT,
    event_type      TEXT,
    payload_hash    BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    automation_id   TEXT,
    content_expunged_at INTEGER
) WITHOUT ROWID;

-- Idempotency-Key → the answer given the first time (kept 24 h).
-- request_hash tells a genuine retry from a key reused for a different request.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key         TEXT PRIMARY KEY,
    request_hash BLOB NOT NULL,
    response    TEXT NOT NULL CHECK (json_valid(response)),
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_keys_age ON idempotency_keys(created_at);

-- One delivery per (message, automation) (enforced by deliveries_message_automation).
-- status: pending | succeeded | exhausted (retries or max age used up) | failed (ended without
-- retry: automation deleted or disabled, or a recover attempt that failed).
-- claimed: 0 = not held by the dispatcher; 1 = its call may have started (next_attempt_at is
-- then the lease expiry, and a crash logs the attempt E_INTERRUPTED); 2 = held in memory, call
-- not started (a crash puts it back untouched). See src/store/claims.rs.
CREATE TABLE IF NOT EXISTS deliveries (
    id                  TEXT PRIMARY KEY,
    message_id          TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    automation_id       TEXT NOT NULL,
    status              TEXT NOT NULL
        CHECK (status = 'pending' OR status = 'succeeded' OR status = 'exhausted'
            OR status = 'failed'),
    attempts            INTEGER NOT NULL,
    next_attempt_at     INTEGER NOT NULL,
    claimed             INTEGER NOT NULL DEFAULT 0 CHECK (claimed = 0 OR claimed = 1 OR claimed = 2),
    next_trigger        TEXT NOT NULL
        CHECK (next_trigger = 'initial' OR next_trigger = 'retry' OR next_trigger = 'recover'
            OR next_trigger = 'replay'),
    recover_job_id      TEXT,                   -- the recover or replay job that queued it
    last_log_id         TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    -- Version 17: 1 for a delivery of an automation whose ordering was 'fifo' when it was
    -- created; it then keeps its place in its automation's line (see deliveries_fifo).
    fifo                INTEGER NOT NULL DEFAULT 0 CHECK (fifo IN (0, 1))
) WITHOUT ROWID;
-- Due deliveries in due order, with their automation and claim: a claim passes over those of
-- saturated automations and those held in memory (see src/store/claims.rs) without reading
-- the table.
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(next_attempt_at, automation_id, claimed)
    WHERE status = 'pending';
-- Ended-unsuccessfully deliveries by when they ended: recover windows and status filters.
-- Partial, so the common pending → succeeded path never touches it.
CREATE INDEX IF NOT EXISTS deliveries_ended ON deliveries(status, updated_at)
    WHERE status IN ('exhausted', 'failed');
CREATE INDEX IF NOT EXISTS deliveries_automation ON deliveries(automation_id, id);
CREATE INDEX IF NOT EXISTS deliveries_recover_job ON deliveries(recover_job_id, status)
    WHERE recover_job_id IS NOT NULL;

-- One AutomationLog per outgoing call (attempt, rerun, recover or test).
-- status_code 0 / status_class 0 = no HTTP response (see error_code). status_class is computed
-- (virtual: it costs no row space, only its index's entries).
CREATE TABLE IF NOT EXISTS logs (
    id                  TEXT PRIMARY KEY,
    delivery_id         TEXT,
    message_id          TEXT NOT NULL,
    automation_id       TEXT NOT NULL,
    processor_id        TEXT NOT NULL,
    attempt             INTEGER NOT NULL,
    trigger             TEXT NOT NULL
        CHECK (trigger = 'initial' OR trigger = 'retry' OR trigger = 'rerun' OR trigger = 'recover'
            OR trigger = 'replay' OR trigger = 'test'),
    rerun_of            TEXT,
    webhook_url         TEXT NOT NULL,
    request_headers     TEXT NOT NULL           -- JSON object, secrets redacted
        CHECK (json_valid(request_headers) AND json_type(request_headers) = 'object'),
    request_body_hash   BLOB NOT NULL,
    request_at          INTEGER NOT NULL,
    response_at         INTEGER NOT NULL,
    status_code         INTEGER NOT NULL,
    status_class        INTEGER GENERATED ALWAYS AS (status_code / 100) VIRTUAL,
    response_headers    TEXT NOT NULL           -- JSON object
        CHECK (json_valid(response_headers) AND json_type(response_headers) = 'object'),
    response_body_hash  BLOB,
    response_truncated  INTEGER NOT NULL CHECK (response_truncated IN (0, 1)),
    duration_ms         REAL NOT NULL,
    error_code          TEXT,
    error_message       TEXT,
    snapshot_hash       BLOB NOT NULL,          -- automation as it was when the call was made
    event_type          TEXT,                   -- the message's (version 5; see below)
    -- 1: request_headers leaves out the headers a signed call carries that the row's own
    -- message_id and request_at imply (src/store/implied_headers.rs; version 12)
    request_headers_implied INTEGER NOT NULL DEFAULT 0 CHECK (request_headers_implied IN (0, 1))
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logs_automation ON logs(automation_id, id);
CREATE INDEX IF NOT EXISTS logs_processor ON logs(processor_id, id);
CREATE INDEX IF NOT EXISTS logs_status_code ON logs(status_code, id);
CREATE INDEX IF NOT EXISTS logs_status_class ON logs(status_class, id);
CREATE INDEX IF NOT EXISTS logs_webhook_url ON logs(webhook_url, id);

-- Background jobs that queue deliveries: recover (re-queue failed deliveries) and replay
-- (create the missing deliveries of an automation's messages). Progress is read from the
-- deliveries they tagged (deliveries.recover_job_id).
CREATE TABLE IF NOT EXISTS recover_jobs (
    id              TEXT PRIMARY KEY,
    since           INTEGER NOT NULL,
    until           INTEGER NOT NULL,
    automation_id   TEXT,                   -- replay: always set
    total           INTEGER NOT NULL,       -- deliveries matched, at most the per-job cap (replay: the cap)
    requeued        INTEGER NOT NULL,       -- of those, re-queued so far (replay: deliveries created)
    capped          INTEGER NOT NULL        -- 1 when more matched than the cap (replay: it stopped there)
        CHECK (capped IN (0, 1)),
    created_at      INTEGER NOT NULL,
    kind            TEXT NOT NULL DEFAULT 'recover' CHECK (kind IN ('recover', 'replay')),
    cursor          TEXT,                   -- replay: the last message examined
    ended           TEXT                    -- replay: NULL while running, then why it ended
        CHECK (ended IS NULL OR ended = 'completed' OR ended = 'automation_disabled'
            OR ended = 'automation_deleted'),
    -- Version 10: a recover job's filters on the last attempt of a delivery (NULL = any),
    -- the logs list's meanings, and when it was cancelled (it re-queues no further chunk).
    status_code     INTEGER,
    status_class    INTEGER,
    error_code      TEXT,
    event_type      TEXT,
    cancelled_at    INTEGER,
    CHECK (kind = 'recover' OR automation_id IS NOT NULL)
) WITHOUT ROWID;

-- Workflow runs (Dify's workflow_run). ids and task ids are UUIDs, as Dify shows them.
CREATE TABLE IF NOT EXISTS workflow_runs (
    id              TEXT PRIMARY KEY,
    app_id          TEXT NOT NULL,
    task_id         TEXT NOT NULL,
    status          TEXT NOT NULL
        CHECK (status = 'running' OR status = 'succeeded' OR status = 'failed' OR status = 'stopped'),
    inputs          TEXT NOT NULL           -- JSON object
        CHECK (json_valid(inputs) AND json_type(inputs) = 'object'),
    outputs         TEXT                    -- JSON object
        CHECK (outputs IS NULL OR (json_valid(outputs) AND json_type(outputs) = 'object')),
    error           TEXT,
    user            TEXT NOT NULL,
    files           TEXT NOT NULL           -- JSON array
        CHECK (json_valid(files) AND json_type(files) = 'array'),
    elapsed_time    REAL NOT NULL,
    total_tokens    INTEGER NOT NULL,
    total_steps     INTEGER NOT NULL,
    idempotency_key TEXT,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    nodes           TEXT NOT NULL DEFAULT '[]' -- JSON array: node executions, stored at the end
        CHECK (json_valid(nodes) AND json_type(nodes) = 'array')
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS workflow_runs_task ON workflow_runs(task_id);
CREATE INDEX IF NOT EXISTS workflow_runs_app ON workflow_runs(app_id, created_at);
-- Runs by status (version 16): the console's status filter over every app, in id order, and
-- the runs left running by a crash, found at start-up. Replaces version 2's
-- workflow_runs_running (status = 'running' only).
CREATE INDEX IF NOT EXISTS workflow_runs_status ON workflow_runs(status);
-- One app's runs in one status, in creation order (the console's filters, and the Dify API's
-- GET /v1/workflows/logs?status=).
CREATE INDEX IF NOT EXISTS workflow_runs_app_status ON workflow_runs(app_id, status, created_at);
CREATE UNIQUE INDEX IF NOT EXISTS workflow_runs_idempotency ON workflow_runs(app_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Files uploaded through POST /v1/files/upload (content in bodies, by hash).
CREATE TABLE IF NOT EXISTS upload_files (
    id          TEXT PRIMARY KEY,               -- UUID
    app_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    extension   TEXT NOT NULL,
    mime_type   TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    data_hash   BLOB NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Spreadsheets of the Sheets-style sink. Worksheet ids start at 0 within a spreadsheet.
CREATE TABLE IF NOT EXISTS spreadsheets (
    id              TEXT PRIMARY KEY,
    title           TEXT NOT NULL,
    webhook_secret  TEXT,                   -- whsec_…: the sink then requires a valid signature
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;

-- A worksheet goes with its spreadsheet, and its rows with it (ON DELETE CASCADE).
CREATE TABLE IF NOT EXISTS worksheets (
    spreadsheet_id  TEXT NOT NULL REFERENCES spreadsheets(id) ON DELETE CASCADE,
    sheet_id        INTEGER NOT NULL,
    title           TEXT NOT NULL,
    header          TEXT NOT NULL           -- JSON array of column names (row 1)
        CHECK (json_valid(header) AND json_type(header) = 'array'),
    last_row        INTEGER NOT NULL,       -- last used row number (1 = header only, 0 = empty)
    PRIMARY KEY (spreadsheet_id, sheet_id)
) WITHOUT ROWID;

-- Data rows (row 1, the header, lives in worksheets.header). cells: JSON array in header
-- order at the time of the append; likelihoods: JSON array aligned with cells, or NULL.
-- webhook_id makes appends exactly-once; append_result is the answer given the first time.
CREATE TABLE IF NOT EXISTS sheet_rows (
    spreadsheet_id  TEXT NOT NULL,
    sheet_id        INTEGER NOT NULL,
    row_number      INTEGER NOT NULL,
    cells           TEXT NOT NULL CHECK (json_valid(cells) AND json_type(cells) = 'array'),
    likelihoods     TEXT
        CHECK (likelihoods IS NULL OR (json_valid(likelihoods) AND json_type(likelihoods) = 'array')),
    webhook_id      TEXT,
    append_result   TEXT NOT NULL CHECK (json_valid(append_result)),
    PRIMARY KEY (spreadsheet_id, sheet_id, row_number),
    FOREIGN KEY (spreadsheet_id, sheet_id) REFERENCES worksheets(spreadsheet_id, sheet_id)
        ON DELETE CASCADE
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS sheet_rows_webhook ON sheet_rows(spreadsheet_id, sheet_id, webhook_id)
    WHERE webhook_id IS NOT NULL;

-- Version 4.
-- The custom headers an automation version sent, in clear, keyed by the hash of its snapshot
-- (which shows them redacted): a rerun of a log sends exactly these again to the log's URL.
-- Deleted with the automation (its logs can no longer be rerun, and its secrets must not stay):
-- ON DELETE CASCADE, and a snapshot stored after its automation was deleted (a call that ended
-- meanwhile) stores none (src/store/snapshots.rs).
CREATE TABLE IF NOT EXISTS snapshot_headers (
    snapshot_hash   BLOB PRIMARY KEY,
    automation_id   TEXT NOT NULL REFERENCES automations(id) ON DELETE CASCADE,
    headers         TEXT NOT NULL           -- JSON object of string -> string
        CHECK (json_valid(headers) AND json_type(headers) = 'object')
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS snapshot_headers_automation ON snapshot_headers(automation_id);

-- Version 5.
-- Messages are listed (GET /v1/messages) by processor or by event type, in id order within a
-- time window (an id range). One index per filter, no more: each costs on every ingest. The
-- event-type one is partial, so messages without an event type do not pay for it (a query
-- `event_type = ?` implies NOT NULL, so it can use it). A replay job scans an automation's
-- processor through messages_processor.
CREATE INDEX IF NOT EXISTS messages_processor ON messages(processor_id, id);
CREATE INDEX IF NOT EXISTS messages_event_type ON messages(event_type, id)
    WHERE event_type IS NOT NULL;
-- At most one delivery per message and automation: a replay job, run twice or beside ingest,
-- can never send a message twice to the same automation. Replaces the index on message_id
-- alone (version 4's deliveries_message), so it costs ingest nothing more.
CREATE UNIQUE INDEX IF NOT EXISTS deliveries_message_automation
    ON deliveries(message_id, automation_id);
-- Version 5 (log filters).
-- Filters of the log lists, each read in id order from an index (src/store/log_filters.rs).
-- Every index on logs is written on every call it covers, so these are partial, on predicates
-- a successful first attempt (the common path) does not meet.
-- logs.event_type, the message's event type, is copied from messages when a log is written;
-- older databases get the column, filled from messages, at start-up (src/store/schema.rs).
-- success=false (any error code: a non-2xx answer, a body cut short, or no answer at all) and
-- error_code=; success=true uses logs_status_class (a success is a 2xx without error code).
CREATE INDEX IF NOT EXISTS logs_failed ON logs(id) WHERE error_code IS NOT NULL;
CREATE INDEX IF NOT EXISTS logs_error_code ON logs(error_code, id) WHERE error_code IS NOT NULL;
-- trigger= other than initial. First attempts are not indexed: trigger=initial reads the table
-- in id order, where every delivery has one.
CREATE INDEX IF NOT EXISTS logs_trigger ON logs(trigger, id) WHERE trigger <> 'initial';
-- event_type=. Messages without an event type cost no index write.
CREATE INDEX IF NOT EXISTS logs_event_type ON logs(event_type, id) WHERE event_type IS NOT NULL;
-- Version 5 (sheets signed by their automation). A new table only, so no upgrade step: this
-- file creates it. An older build ignores it, and then refuses signed calls to such a
-- spreadsheet (it has no webhook_secret).
-- The automation whose signing secrets a spreadsheet's sink calls must be signed with (its
-- current secret, and the previous one during a rotation's overlap), set by
-- PUT /v1/spreadsheets/{id}/signer in place of a webhook_secret. Deleted with either.
CREATE TABLE IF NOT EXISTS spreadsheet_signers (
    spreadsheet_id  TEXT PRIMARY KEY REFERENCES spreadsheets(id) ON DELETE CASCADE,
    automation_id   TEXT NOT NULL REFERENCES automations(id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS spreadsheet_signers_automation ON spreadsheet_signers(automation_id);
-- Version 5 (calls in flight outside the dispatcher). A new table only, so no upgrade step.
-- A rerun or test call in flight: written (and committed) before the call starts, deleted in
-- the write that stores its log. A row left at start-up is a call the relay stopped during
-- (the receiver may have got it): it becomes an E_INTERRUPTED log (src/store/calls_in_flight.rs).
CREATE TABLE IF NOT EXISTS calls_in_flight (
    id                  INTEGER PRIMARY KEY,
    message_id          TEXT NOT NULL,
    automation_id       TEXT NOT NULL,
    processor_id        TEXT NOT NULL,
    trigger             TEXT NOT NULL CHECK (trigger IN ('rerun', 'test')),
    rerun_of            TEXT,
    webhook_url         TEXT NOT NULL,
    request_body_hash   BLOB NOT NULL,
    snapshot_hash       BLOB NOT NULL,          -- stored with the row, so the log can refer to it
    request_at          INTEGER NOT NULL
);
-- Version 5 (recover jobs count what they took). A new table only, so no upgrade step.
-- The deliveries each recover job re-queued: its progress counts these, whatever job touches
-- them later, so done + failed + pending always equals what it re-queued. A delivery already
-- pending again (re-queued by another job) is not matched, so no two jobs take it at once.
CREATE TABLE IF NOT EXISTS recover_job_deliveries (
    job_id          TEXT NOT NULL,
    delivery_id     TEXT NOT NULL,
    PRIMARY KEY (job_id, delivery_id)
) WITHOUT ROWID;
-- Retention (src/store/retention.rs). An uploaded file goes with its content when content
-- retention deletes it; this finds the file by its content. Uploads are rare: it costs ingest
-- nothing.
CREATE INDEX IF NOT EXISTS upload_files_data ON upload_files(data_hash);
-- Version 11 (console sessions, src/store/sessions.rs). A new table only, so no upgrade step.
-- Only the SHA-256 of a session's token is stored. A session names its key by id (a stored
-- key) or by hash (a key of the config, which has no id), never both.
CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash      BLOB PRIMARY KEY,
    key_id          TEXT,
    config_key_hash BLOB,
    role            TEXT NOT NULL CHECK (role = 'viewer' OR role = 'operator' OR role = 'admin'),
    csrf_token      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    CHECK ((key_id IS NULL) <> (config_key_hash IS NULL))
) WITHOUT ROWID;
-- Version 13 (the chain of attempts, src/console/log_detail.rs). An index only: this file
-- creates it on an older database, so no upgrade step. Every log of one delivery (its first
-- attempt, retries, recovers, and the reruns that name it), oldest first, for the log detail
-- page. It is written on every call but a test call: a delivery's logs cannot otherwise be
-- found without scanning every log since the message was sent.
CREATE INDEX IF NOT EXISTS logs_delivery ON logs(delivery_id, id) WHERE delivery_id IS NOT NULL;
-- Version 15 (the console's overview, src/store/rollup.rs). New tables only, so no upgrade
-- step: on an existing database the rollup job starts from its first log, in batches.
-- Logs counted per minute (of the time their id carries), never a scan of logs for a page.
-- The cursor is the last log counted; it moves in the same transaction as the counts, so a
-- crash neither counts a log twice nor skips one. Rows older than 8 days are deleted by
-- retention; deleting logs never changes them.
CREATE TABLE IF NOT EXISTS rollup_cursor (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    last_log_id     TEXT NOT NULL
);
-- Calls per minute and automation. last_status_code and last_call_error are those of the
-- minute's last call (error NULL: it succeeded); last_error_code that of its last failure.
CREATE TABLE IF NOT EXISTS rollup_minutes (
    minute              INTEGER NOT NULL,       -- Unix ms / 60000
    automation_id       TEXT NOT NULL,
    succeeded           INTEGER NOT NULL CHECK (succeeded >= 0),
    failed              INTEGER NOT NULL CHECK (failed >= 0),
    last_status_code    INTEGER NOT NULL,
    last_call_error     TEXT,
    last_error_code     TEXT,
    PRIMARY KEY (minute, automation_id)
) WITHOUT ROWID;
-- By automation, covering the counts: an automation's day sums 1,440 index entries without a
-- lookup of each row.
CREATE INDEX IF NOT EXISTS rollup_minutes_automation
    ON rollup_minutes(automation_id, minute, succeeded, failed);
-- Calls per minute by duration, in the fixed log-scale buckets of src/store/rollup.rs
-- (LATENCY_BOUNDS_MS; the last bucket is everything above its last bound).
CREATE TABLE IF NOT EXISTS rollup_latency (
    minute          INTEGER NOT NULL,
    bucket          INTEGER NOT NULL CHECK (bucket BETWEEN 0 AND 26),
    calls           INTEGER NOT NULL CHECK (calls >= 0),
    PRIMARY KEY (minute, bucket)
) WITHOUT ROWID;
-- Failed calls per minute by error code.
CREATE TABLE IF NOT EXISTS rollup_errors (
    minute          INTEGER NOT NULL,
    error_code      TEXT NOT NULL,
    calls           INTEGER NOT NULL CHECK (calls >= 0),
    PRIMARY KEY (minute, error_code)
) WITHOUT ROWID;
-- Version 20 (the health endpoint's windows, src/store/health.rs). Calls per automation,
-- minute, status class (0: no answer) and outcome (1: no error code). A new table only, so
-- no upgrade step: on an existing database it counts the logs the rollup counts from then on.
-- Keyed by automation first, so a day of one automation is one range of the key.
CREATE TABLE IF NOT EXISTS rollup_classes (
    automation_id   TEXT NOT NULL,
    minute          INTEGER NOT NULL,
    status_class    INTEGER NOT NULL CHECK (status_class BETWEEN 0 AND 5),
    succeeded       INTEGER NOT NULL CHECK (succeeded IN (0, 1)),
    calls           INTEGER NOT NULL CHECK (calls >= 0),
    PRIMARY KEY (automation_id, minute, status_class, succeeded)
) WITHOUT ROWID;

-- Version 17 (FIFO automations, src/store/fifo.rs). An automation's pending FIFO deliveries
-- (fifo = 1) form a line held here, not in memory: at most one of them is ever due or in
-- flight (its head); every other waits its turn with next_attempt_at = 253402300799999
-- (9999-12-31T23:59:59.999Z, "waiting"), past every real time, so no claim ever sees it and
-- the claim query is the one parallel deliveries use. A head waiting for a retry keeps the
-- others waiting. The triggers keep the line on every path, whichever code writes:
-- a FIFO delivery stored, or made pending again (a recover), while another pending one of
-- its automation exists waits; when the head leaves 'pending' (succeeded, exhausted, failed)
-- or is deleted, the lowest-id waiting one becomes due now, unless a head remains (a
-- recovered delivery waits behind the head in flight, then goes before later ones, since
-- ids are in creation order). Parallel deliveries (fifo = 0) are in neither the index nor
-- any trigger's work: each trigger's WHEN reads only the row's own columns.
CREATE INDEX IF NOT EXISTS deliveries_fifo ON deliveries(automation_id, next_attempt_at, id)
    WHERE status = 'pending' AND fifo = 1;
CREATE TRIGGER IF NOT EXISTS deliveries_fifo_stored AFTER INSERT ON deliveries
    WHEN NEW.fifo = 1 AND NEW.status = 'pending' AND EXISTS (SELECT 1 FROM deliveries
        INDEXED BY deliveries_fifo WHERE automation_id = NEW.automation_id
        AND status = 'pending' AND fifo = 1 AND id != NEW.id)
BEGIN
    UPDATE deliveries SET next_attempt_at = 253402300799999, claimed = 0 WHERE id = NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS deliveries_fifo_requeued AFTER UPDATE OF status ON deliveries
    WHEN NEW.fifo = 1 AND NEW.status = 'pending' AND OLD.status != 'pending' AND EXISTS (
        SELECT 1 FROM deliveries INDEXED BY deliveries_fifo
        WHERE automation_id = NEW.automation_id AND status = 'pending' AND fifo = 1
        AND id != NEW.id)
BEGIN
    UPDATE deliveries SET next_attempt_at = 253402300799999, claimed = 0 WHERE id = NEW.id;
END;
CREATE TRIGGER IF NOT EXISTS deliveries_fifo_ended AFTER UPDATE OF status ON deliveries
    WHEN OLD.fifo = 1 AND OLD.status = 'pending' AND NEW.status != 'pending'
BEGIN
    UPDATE deliveries
    SET next_attempt_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    WHERE id = (SELECT id FROM deliveries INDEXED BY deliveries_fifo
        WHERE automation_id = OLD.automation_id AND status = 'pending' AND fifo = 1
        AND next_attempt_at = 253402300799999 ORDER BY id LIMIT 1)
    AND NOT EXISTS (SELECT 1 FROM deliveries INDEXED BY deliveries_fifo
        WHERE automation_id = OLD.automation_id AND status = 'pending' AND fifo = 1
        AND next_attempt_at < 253402300799999);
END;
CREATE TRIGGER IF NOT EXISTS deliveries_fifo_deleted AFTER DELETE ON deliveries
    WHEN OLD.fifo = 1 AND OLD.status = 'pending'
BEGIN
    UPDATE deliveries
    SET next_attempt_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    WHERE id = (SELECT id FROM deliveries INDEXED BY deliveries_fifo
        WHERE automation_id = OLD.automation_id AND status = 'pending' AND fifo = 1
        AND next_attempt_at = 253402300799999 ORDER BY id LIMIT 1)
    AND NOT EXISTS (SELECT 1 FROM deliveries INDEXED BY deliveries_fifo
        WHERE automation_id = OLD.automation_id AND status = 'pending' AND fifo = 1
        AND next_attempt_at < 253402300799999);
END;
-- Version 21: a waiting delivery made due by anything but the line (a copy the dispatcher
-- held in memory handed back, after its automation was made FIFO and its backlog lined up,
-- src/store/fifo.rs) while its line has a head waits again: only the head's end moves a line.
CREATE TRIGGER IF NOT EXISTS deliveries_fifo_kept_waiting AFTER UPDATE OF next_attempt_at
    ON deliveries
    WHEN NEW.fifo = 1 AND NEW.status = 'pending' AND OLD.next_attempt_at = 253402300799999
    AND NEW.next_attempt_at < 253402300799999 AND EXISTS (
        SELECT 1 FROM deliveries INDEXED BY deliveries_fifo
        WHERE automation_id = NEW.automation_id AND status = 'pending' AND fifo = 1
        AND next_attempt_at < 253402300799999 AND id != NEW.id)
BEGIN
    UPDATE deliveries SET next_attempt_at = 253402300799999, claimed = 0 WHERE id = NEW.id;
END;
-- Version 19 (endpoint health and operational events, src/store/health.rs,
-- src/store/automation_events.rs, src/store/operational.rs). New tables only, so no upgrade
-- step: an automation without a health row has had no call recorded since.
-- An automation's run of calls, written with each dispatcher attempt's outcome (reruns and
-- test calls are an operator's, and do not count). failing_since: the first failed attempt
-- after the last success (NULL after a success, and after an enable, which restarts the
-- clock of the automatic disable).
CREATE TABLE IF NOT EXISTS automation_health (
    automation_id           TEXT PRIMARY KEY REFERENCES automations(id) ON DELETE CASCADE,
    last_success_at         INTEGER,
    last_failure_at         INTEGER,
    consecutive_failures    INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    failing_since           INTEGER,
    disabled_reason         TEXT            -- why it was last disabled, while it is
) WITHOUT ROWID;
-- Every enable and disable of an automation: who (`system`, `config_key`, or the key's id),
-- why, when. Kept after the automation is deleted (the trail outlives it).
CREATE TABLE IF NOT EXISTS automation_events (
    id              TEXT PRIMARY KEY,
    automation_id   TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('enabled', 'disabled')),
    actor           TEXT NOT NULL
        CHECK (actor IN ('system', 'config_key') OR actor LIKE 'key\_%' ESCAPE '\'),
    reason          TEXT NOT NULL,
    at              INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS automation_events_automation ON automation_events(automation_id, id);
-- The automation the relay owns for [operational] webhook_url: at most one (id = 1), and it
-- cannot be deleted while it is (ON DELETE RESTRICT); the API refuses to change it.
CREATE TABLE IF NOT EXISTS operational_automation (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    automation_id   TEXT NOT NULL UNIQUE REFERENCES automations(id) ON DELETE RESTRICT
);
