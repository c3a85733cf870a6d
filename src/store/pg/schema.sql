-- hookrelay schema for PostgreSQL (issue 15). Applied at start-up by src/store/pg/migrate.rs,
-- in one transaction under an advisory lock, so that instances starting together apply it
-- once. It mirrors the SQLite schema (schema.sql + the upgrades of src/store/schema.rs) at
-- version 20, and the version is the same number: a later version adds its step to both
-- backends (src/store/pg/migrate.rs's MIGRATIONS, and a test holds the two VERSIONs equal).
-- The comments of schema.sql say what each table and column means; this file only says
-- where PostgreSQL differs and why.
--
-- Types, chosen deliberately:
-- * Our ids (automations, messages, deliveries, logs, jobs, spreadsheets, keys, events) are
--   the same 16 bytes as in SQLite (`hr_id`: bytea of exactly 16 bytes), so the Rust code binds
--   `Id::stored_bytes()` for both backends, and bytea sorts as memcmp, as SQLite's blobs do:
--   "ORDER BY id" stays creation order and time windows stay id ranges. (The uuid type would
--   save one byte a value but could not hold deliveries.recover_job_id's 17 bytes: a kind
--   byte, then the job's id.) Dify's workflow run, task and upload ids stay text.
-- * Times are integer milliseconds since the Unix epoch: bigint. Durations: double precision.
-- * Booleans are boolean (SQLite's INTEGER CHECK IN (0, 1)); deliveries.claimed keeps its
--   three values as a smallint.
-- * JSON columns are `json`, not jsonb: PostgreSQL validates it on input (SQLite's json_valid),
--   and keeps the text as given, key order included, which serde_json's preserve_order shows
--   back (headers, node outputs). No query looks inside a JSON column. The shape CHECKs
--   (object or array) are json_typeof.
-- * Enums stay text with a CHECK naming their values, as in SQLite: adding a value is then
--   a constraint swap in one migration, in both backends alike.
-- * logs.status_class is a STORED generated column (PostgreSQL 15 has no virtual ones): two
--   bytes a row, for the same queries and index as SQLite.

CREATE DOMAIN hr_id AS bytea CHECK (octet_length(VALUE) = 16);

CREATE TABLE api_keys (
    key_hash      bytea PRIMARY KEY,
    name          text NOT NULL,
    created_at    bigint NOT NULL,
    id            hr_id UNIQUE,
    role          text NOT NULL DEFAULT 'admin' CHECK (role IN ('viewer', 'operator', 'admin')),
    expires_at    bigint,
    last_used_at  bigint,
    revoked_at    bigint
);

-- Keyed by its hash (SQLite's is a rowid table with a unique hash, for its page layout).
CREATE TABLE bodies (
    hash        bytea PRIMARY KEY,
    data        bytea NOT NULL,
    used_at     bigint NOT NULL,
    shared      boolean NOT NULL DEFAULT false,
    -- How `data` is stored (SQLite version 22): 0 as given, 1 raw deflate.
    encoding    smallint NOT NULL DEFAULT 0 CHECK (encoding IN (0, 1))
);
CREATE INDEX bodies_used ON bodies(used_at);

CREATE TABLE automations (
    id                  hr_id PRIMARY KEY,
    name                text NOT NULL,
    processor_id        text NOT NULL,
    webhook_url         text NOT NULL,
    webhook_headers     json NOT NULL CHECK (json_typeof(webhook_headers) = 'object'),
    need_validation     boolean NOT NULL,
    default_language    text NOT NULL,
    enabled             boolean NOT NULL,
    event_types         json CHECK (event_types IS NULL OR json_typeof(event_types) = 'array'),
    secret              text NOT NULL CHECK (secret LIKE 'whsec\_%'),
    previous_secret     text CHECK (previous_secret IS NULL OR previous_secret LIKE 'whsec\_%'),
    previous_secret_until bigint,
    created_at          bigint NOT NULL,
    updated_at          bigint NOT NULL,
    ordering            text NOT NULL DEFAULT 'parallel' CHECK (ordering IN ('parallel', 'fifo')),
    rate_limit_per_sec  integer
        CHECK (rate_limit_per_sec IS NULL OR rate_limit_per_sec BETWEEN 1 AND 10000)
);
CREATE INDEX automations_processor ON automations(processor_id, id);

CREATE TABLE messages (
    id              hr_id PRIMARY KEY,
    processor_id    text,
    event_type      text,
    payload_hash    bytea NOT NULL,
    created_at      bigint NOT NULL,
    automation_id   hr_id,
    content_expunged_at bigint
);
CREATE INDEX messages_processor ON messages(processor_id, id);
CREATE INDEX messages_event_type ON messages(event_type, id) WHERE event_type IS NOT NULL;

-- The unique key is what makes Idempotency-Key hold across instances: the second instance's
-- INSERT … ON CONFLICT DO NOTHING finds the first one's row (no in-memory map).
CREATE TABLE idempotency_keys (
    key         text PRIMARY KEY,
    request_hash bytea NOT NULL,
    response    json NOT NULL,
    created_at  bigint NOT NULL
);
CREATE INDEX idempotency_keys_age ON idempotency_keys(created_at);

-- claimed: as in SQLite (0 free, 1 call may have started: next_attempt_at is the lease
-- expiry, 2 held in memory). With several instances, claimed_by names the instance holding
-- it (NULL when claimed = 0), so that a survivor can tell a dead instance's claims, and a
-- restarted instance its own, from a live one's (docs/postgres.md, "Claims").
CREATE TABLE deliveries (
    id                  hr_id PRIMARY KEY,
    message_id          hr_id NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    automation_id       hr_id NOT NULL,
    status              text NOT NULL
        CHECK (status IN ('pending', 'succeeded', 'exhausted', 'failed')),
    attempts            integer NOT NULL,
    next_attempt_at     bigint NOT NULL,
    claimed             smallint NOT NULL DEFAULT 0 CHECK (claimed IN (0, 1, 2)),
    next_trigger        text NOT NULL
        CHECK (next_trigger IN ('initial', 'retry', 'recover', 'replay')),
    recover_job_id      bytea CHECK (octet_length(recover_job_id) = 17),
    last_log_id         hr_id,
    created_at          bigint NOT NULL,
    updated_at          bigint NOT NULL,
    fifo                boolean NOT NULL DEFAULT false,
    claimed_by          uuid,
    CHECK ((claimed = 0) = (claimed_by IS NULL))
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at, automation_id, claimed)
    WHERE status = 'pending';
CREATE INDEX deliveries_ended ON deliveries(status, updated_at)
    WHERE status IN ('exhausted', 'failed');
CREATE INDEX deliveries_automation ON deliveries(automation_id, id);
CREATE INDEX deliveries_recover_job ON deliveries(recover_job_id, status)
    WHERE recover_job_id IS NOT NULL;
CREATE UNIQUE INDEX deliveries_message_automation ON deliveries(message_id, automation_id);
-- An instance's claims, found when it restarts and by the survivors of its death.
CREATE INDEX deliveries_claimed_by ON deliveries(claimed_by) WHERE claimed_by IS NOT NULL;

CREATE TABLE logs (
    id                  hr_id PRIMARY KEY,
    delivery_id         hr_id,
    message_id          hr_id NOT NULL,
    automation_id       hr_id NOT NULL,
    processor_id        text NOT NULL,
    attempt             integer NOT NULL,
    trigger             text NOT NULL
        CHECK (trigger IN ('initial', 'retry', 'rerun', 'recover', 'replay', 'test')),
    rerun_of            hr_id,
    webhook_url         text NOT NULL,
    request_headers     json NOT NULL CHECK (json_typeof(request_headers) = 'object'),
    request_body_hash   bytea NOT NULL,
    request_at          bigint NOT NULL,
    response_at         bigint NOT NULL,
    status_code         integer NOT NULL,
    status_class        integer GENERATED ALWAYS AS (status_code / 100) STORED,
    response_headers    json NOT NULL CHECK (json_typeof(response_headers) = 'object'),
    response_body_hash  bytea,
    response_truncated  boolean NOT NULL,
    duration_ms         double precision NOT NULL,
    error_code          text,
    error_message       text,
    snapshot_hash       bytea NOT NULL,
    event_type          text,
    request_headers_implied boolean NOT NULL DEFAULT false
);
CREATE INDEX logs_automation ON logs(automation_id, id);
CREATE INDEX logs_processor ON logs(processor_id, id);
CREATE INDEX logs_status_code ON logs(status_code, id);
CREATE INDEX logs_status_class ON logs(status_class, id);
CREATE INDEX logs_webhook_url ON logs(webhook_url, id);
CREATE INDEX logs_failed ON logs(id) WHERE error_code IS NOT NULL;
CREATE INDEX logs_error_code ON logs(error_code, id) WHERE error_code IS NOT NULL;
CREATE INDEX logs_trigger ON logs(trigger, id) WHERE trigger <> 'initial';
CREATE INDEX logs_event_type ON logs(event_type, id) WHERE event_type IS NOT NULL;
CREATE INDEX logs_delivery ON logs(delivery_id, id) WHERE delivery_id IS NOT NULL;

-- A job is run by one instance at a time: the one holding its row lock (SELECT … FOR UPDATE
-- SKIP LOCKED on each chunk); its progress is rows, so every instance reads it.
CREATE TABLE recover_jobs (
    id              hr_id PRIMARY KEY,
    since           bigint NOT NULL,
    until           bigint NOT NULL,
    automation_id   hr_id,
    total           bigint NOT NULL,
    requeued        bigint NOT NULL,
    capped          boolean NOT NULL,
    created_at      bigint NOT NULL,
    kind            text NOT NULL DEFAULT 'recover' CHECK (kind IN ('recover', 'replay')),
    cursor          hr_id,
    ended           text
        CHECK (ended IS NULL OR ended IN ('completed', 'automation_disabled', 'automation_deleted')),
    status_code     integer,
    status_class    integer,
    error_code      text,
    event_type      text,
    cancelled_at    bigint,
    CHECK (kind = 'recover' OR automation_id IS NOT NULL)
);

-- A running run names the instance running it (run_by): a survivor fails the runs of an
-- instance whose heartbeat has lapsed, and a stop request from another instance reaches it
-- through NOTIFY (docs/postgres.md, "Workflow runs"). NULL once it has ended. "user" is a
-- reserved word in PostgreSQL: the queries quote it.
CREATE TABLE workflow_runs (
    id              text PRIMARY KEY,
    app_id          text NOT NULL,
    task_id         text NOT NULL,
    status          text NOT NULL
        CHECK (status IN ('running', 'succeeded', 'failed', 'stopped')),
    inputs          json NOT NULL CHECK (json_typeof(inputs) = 'object'),
    outputs         json CHECK (outputs IS NULL OR json_typeof(outputs) = 'object'),
    error           text,
    "user"          text NOT NULL,
    files           json NOT NULL CHECK (json_typeof(files) = 'array'),
    elapsed_time    double precision NOT NULL,
    total_tokens    bigint NOT NULL,
    total_steps     bigint NOT NULL,
    idempotency_key text,
    created_at      bigint NOT NULL,
    finished_at     bigint,
    nodes           json NOT NULL DEFAULT '[]' CHECK (json_typeof(nodes) = 'array'),
    run_by          uuid,
    CHECK (status = 'running' OR run_by IS NULL)
);
CREATE UNIQUE INDEX workflow_runs_task ON workflow_runs(task_id);
CREATE INDEX workflow_runs_app ON workflow_runs(app_id, created_at);
CREATE INDEX workflow_runs_status ON workflow_runs(status);
CREATE INDEX workflow_runs_app_status ON workflow_runs(app_id, status, created_at);
CREATE UNIQUE INDEX workflow_runs_idempotency ON workflow_runs(app_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE upload_files (
    id          text PRIMARY KEY,
    app_id      text NOT NULL,
    name        text NOT NULL,
    size        bigint NOT NULL,
    extension   text NOT NULL,
    mime_type   text NOT NULL,
    created_by  text NOT NULL,
    data_hash   bytea NOT NULL,
    created_at  bigint NOT NULL
);
CREATE INDEX upload_files_data ON upload_files(data_hash);

CREATE TABLE spreadsheets (
    id              hr_id PRIMARY KEY,
    title           text NOT NULL,
    webhook_secret  text,
    created_at      bigint NOT NULL,
    updated_at      bigint NOT NULL
);

-- last_row is the sheet's counter: an append takes the worksheet row FOR UPDATE and bumps
-- it in the transaction that inserts the row, so row numbers stay contiguous whichever
-- instance appends (docs/postgres.md, "Sheets").
CREATE TABLE worksheets (
    spreadsheet_id  hr_id NOT NULL REFERENCES spreadsheets(id) ON DELETE CASCADE,
    sheet_id        integer NOT NULL,
    title           text NOT NULL,
    header          json NOT NULL CHECK (json_typeof(header) = 'array'),
    last_row        bigint NOT NULL,
    PRIMARY KEY (spreadsheet_id, sheet_id)
);

CREATE TABLE sheet_rows (
    spreadsheet_id  hr_id NOT NULL,
    sheet_id        integer NOT NULL,
    row_number      bigint NOT NULL,
    cells           json NOT NULL CHECK (json_typeof(cells) = 'array'),
    likelihoods     json CHECK (likelihoods IS NULL OR json_typeof(likelihoods) = 'array'),
    webhook_id      text,
    append_result   json NOT NULL,
    PRIMARY KEY (spreadsheet_id, sheet_id, row_number),
    FOREIGN KEY (spreadsheet_id, sheet_id) REFERENCES worksheets(spreadsheet_id, sheet_id)
        ON DELETE CASCADE
);
CREATE UNIQUE INDEX sheet_rows_webhook ON sheet_rows(spreadsheet_id, sheet_id, webhook_id)
    WHERE webhook_id IS NOT NULL;

CREATE TABLE snapshot_headers (
    snapshot_hash   bytea PRIMARY KEY,
    automation_id   hr_id NOT NULL REFERENCES automations(id) ON DELETE CASCADE,
    headers         json NOT NULL CHECK (json_typeof(headers) = 'object')
);
CREATE INDEX snapshot_headers_automation ON snapshot_headers(automation_id);

CREATE TABLE spreadsheet_signers (
    spreadsheet_id  hr_id PRIMARY KEY REFERENCES spreadsheets(id) ON DELETE CASCADE,
    automation_id   hr_id NOT NULL REFERENCES automations(id) ON DELETE CASCADE
);
CREATE INDEX spreadsheet_signers_automation ON spreadsheet_signers(automation_id);

-- SQLite's INTEGER PRIMARY KEY (a rowid alias) becomes an identity column. started_by: the
-- instance making the call; a row of a dead instance becomes its E_INTERRUPTED log when a
-- survivor finds that instance gone (its own rows, at its restart).
CREATE TABLE calls_in_flight (
    id                  bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    message_id          hr_id NOT NULL,
    automation_id       hr_id NOT NULL,
    processor_id        text NOT NULL,
    trigger             text NOT NULL CHECK (trigger IN ('rerun', 'test')),
    rerun_of            hr_id,
    webhook_url         text NOT NULL,
    request_body_hash   bytea NOT NULL,
    snapshot_hash       bytea NOT NULL,
    request_at          bigint NOT NULL,
    started_by          uuid
);

CREATE TABLE recover_job_deliveries (
    job_id          hr_id NOT NULL,
    delivery_id     hr_id NOT NULL,
    PRIMARY KEY (job_id, delivery_id)
);

CREATE TABLE console_sessions (
    token_hash      bytea PRIMARY KEY,
    key_id          hr_id,
    config_key_hash bytea,
    role            text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    csrf_token      text NOT NULL,
    created_at      bigint NOT NULL,
    last_seen_at    bigint NOT NULL,
    CHECK ((key_id IS NULL) <> (config_key_hash IS NULL))
);

CREATE TABLE rollup_cursor (
    id              integer PRIMARY KEY CHECK (id = 1),
    last_log_id     hr_id NOT NULL
);
CREATE TABLE rollup_minutes (
    minute              bigint NOT NULL,
    automation_id       hr_id NOT NULL,
    succeeded           bigint NOT NULL CHECK (succeeded >= 0),
    failed              bigint NOT NULL CHECK (failed >= 0),
    last_status_code    integer NOT NULL,
    last_call_error     text,
    last_error_code     text,
    PRIMARY KEY (minute, automation_id)
);
CREATE INDEX rollup_minutes_automation ON rollup_minutes(automation_id, minute, succeeded, failed);
CREATE TABLE rollup_latency (
    minute          bigint NOT NULL,
    bucket          integer NOT NULL CHECK (bucket BETWEEN 0 AND 26),
    calls           bigint NOT NULL CHECK (calls >= 0),
    PRIMARY KEY (minute, bucket)
);
CREATE TABLE rollup_errors (
    minute          bigint NOT NULL,
    error_code      text NOT NULL,
    calls           bigint NOT NULL CHECK (calls >= 0),
    PRIMARY KEY (minute, error_code)
);
CREATE TABLE rollup_classes (
    automation_id   hr_id NOT NULL,
    minute          bigint NOT NULL,
    status_class    integer NOT NULL CHECK (status_class BETWEEN 0 AND 5),
    succeeded       boolean NOT NULL,
    calls           bigint NOT NULL CHECK (calls >= 0),
    PRIMARY KEY (automation_id, minute, status_class, succeeded)
);

CREATE TABLE automation_health (
    automation_id           hr_id PRIMARY KEY REFERENCES automations(id) ON DELETE CASCADE,
    last_success_at         bigint,
    last_failure_at         bigint,
    consecutive_failures    bigint NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    failing_since           bigint,
    disabled_reason         text
);
CREATE TABLE automation_events (
    id              hr_id PRIMARY KEY,
    automation_id   hr_id NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('enabled', 'disabled')),
    actor           text NOT NULL
        CHECK (actor IN ('system', 'config_key') OR actor LIKE 'key\_%' ESCAPE '\'),
    reason          text NOT NULL,
    at              bigint NOT NULL
);
CREATE INDEX automation_events_automation ON automation_events(automation_id, id);
CREATE TABLE operational_automation (
    id              integer PRIMARY KEY CHECK (id = 1),
    automation_id   hr_id NOT NULL UNIQUE REFERENCES automations(id) ON DELETE RESTRICT
);

-- Several instances share the database. Each one has a row, its id drawn at start, and
-- beats every few seconds; one whose heartbeat is older than the lease (docs/postgres.md)
-- is dead: a survivor takes over what names it (deliveries.claimed_by, workflow_runs.run_by,
-- calls_in_flight.started_by) and deletes the row. No foreign key points here, so that
-- deleting a dead instance's row never waits on, or cascades into, the hot tables.
CREATE TABLE instances (
    id              uuid PRIMARY KEY,
    started_at      bigint NOT NULL,
    heartbeat_at    bigint NOT NULL CHECK (heartbeat_at >= started_at),
    host            text NOT NULL
);

-- The leases of cluster-wide duties (retention, the
-- rollup job, operational events, the generated admin key). A duty runs on the instance
-- whose lease is current; the others take it over when it lapses (docs/postgres.md,
-- "Duties run by one instance").
CREATE TABLE duty_leases (
    duty            text PRIMARY KEY
        CHECK (duty IN ('retention', 'rollup', 'operational', 'first_start')),
    held_by         uuid NOT NULL,
    lease_until     bigint NOT NULL
);

-- FIFO automations (SQLite's four deliveries_fifo_* triggers, schema.sql version 17): an
-- automation's pending FIFO deliveries form a line of which at most one is due or in
-- flight (its head); the others wait with next_attempt_at = 253402300799999. The same rule,
-- as PostgreSQL triggers; with one difference that several writers force: SQLite has one
-- writer, PostgreSQL has concurrent transactions, which under READ COMMITTED could each see
-- no other pending delivery of the automation and both make a head. So every trigger first
-- takes a transaction-scoped advisory lock on its automation (class 1, the id's hash), and
-- then looks (a plpgsql statement takes a fresh snapshot, so it sees what the lock's
-- previous holder committed). A transaction touching several FIFO automations must write
-- them in automation-id order, or two instances' batches can deadlock (PostgreSQL then aborts
-- one, which the store retries). Parallel deliveries (fifo = false) return at the WHEN.
CREATE INDEX deliveries_fifo ON deliveries(automation_id, next_attempt_at, id)
    WHERE status = 'pending' AND fifo;

CREATE FUNCTION hr_fifo_lock(automation hr_id) RETURNS void LANGUAGE sql AS
    $$ SELECT pg_advisory_xact_lock(1, hashtext(encode(automation, 'hex'))) $$;

-- Stored, or made pending again (a recover), while another pending one of its automation
-- exists: it waits (BEFORE: the row is written waiting, not written then moved).
CREATE FUNCTION hr_fifo_wait() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hr_fifo_lock(NEW.automation_id);
    IF EXISTS (SELECT 1 FROM deliveries WHERE automation_id = NEW.automation_id
            AND status = 'pending' AND fifo AND id <> NEW.id) THEN
        NEW.next_attempt_at := 253402300799999;
        NEW.claimed := 0;
        NEW.claimed_by := NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER deliveries_fifo_stored BEFORE INSERT ON deliveries
    FOR EACH ROW WHEN (NEW.fifo AND NEW.status = 'pending') EXECUTE FUNCTION hr_fifo_wait();
CREATE TRIGGER deliveries_fifo_requeued BEFORE UPDATE OF status ON deliveries
    FOR EACH ROW WHEN (NEW.fifo AND NEW.status = 'pending' AND OLD.status <> 'pending')
    EXECUTE FUNCTION hr_fifo_wait();

-- The head left 'pending' (succeeded, exhausted, failed) or was deleted: the lowest-id
-- waiting one becomes due now, unless a head remains.
CREATE FUNCTION hr_fifo_next() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hr_fifo_lock(OLD.automation_id);
    UPDATE deliveries
    SET next_attempt_at = (extract(epoch FROM clock_timestamp()) * 1000)::bigint
    WHERE id = (SELECT id FROM deliveries WHERE automation_id = OLD.automation_id
            AND status = 'pending' AND fifo AND next_attempt_at = 253402300799999
            ORDER BY id LIMIT 1)
        AND NOT EXISTS (SELECT 1 FROM deliveries WHERE automation_id = OLD.automation_id
            AND status = 'pending' AND fifo AND next_attempt_at < 253402300799999);
    RETURN NULL;
END $$;
CREATE TRIGGER deliveries_fifo_ended AFTER UPDATE OF status ON deliveries
    FOR EACH ROW WHEN (OLD.fifo AND OLD.status = 'pending' AND NEW.status <> 'pending')
    EXECUTE FUNCTION hr_fifo_next();
CREATE TRIGGER deliveries_fifo_deleted AFTER DELETE ON deliveries
    FOR EACH ROW WHEN (OLD.fifo AND OLD.status = 'pending') EXECUTE FUNCTION hr_fifo_next();

-- A waiting one handed back due (a stale in-memory copy released after a switch to fifo,
-- SQLite version 21's deliveries_fifo_kept_waiting) keeps waiting while its line has a head.
CREATE FUNCTION hr_fifo_keep_waiting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hr_fifo_lock(NEW.automation_id);
    IF EXISTS (SELECT 1 FROM deliveries WHERE automation_id = NEW.automation_id
            AND status = 'pending' AND fifo AND next_attempt_at < 253402300799999
            AND id <> NEW.id) THEN
        NEW.next_attempt_at := 253402300799999;
        NEW.claimed := 0;
        NEW.claimed_by := NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER deliveries_fifo_kept_waiting BEFORE UPDATE OF next_attempt_at ON deliveries
    FOR EACH ROW WHEN (NEW.fifo AND NEW.status = 'pending'
        AND OLD.next_attempt_at = 253402300799999 AND NEW.next_attempt_at < 253402300799999)
    EXECUTE FUNCTION hr_fifo_keep_waiting();
