-- Version 24: rate limits held across instances. Each instance keeps its own window of
-- recent starts (src/delivery/rate_limit.rs); before a call to a limited automation starts,
-- hr_take_start counts the starts every instance made in the last second, on the
-- database's clock, and records this one if the limit allows it. Rows older than the
-- window are deleted by the next take for the same automation.
CREATE TABLE rate_starts (
    automation_id hr_id NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    started_at    bigint NOT NULL
);
CREATE INDEX rate_starts_automation ON rate_starts (automation_id, started_at);

-- Takes a start of `automation` if fewer than `per_sec` started in the last second: 0 when
-- taken, else the milliseconds until one of them leaves the window (at least 1). Under a
-- transaction-scoped advisory lock (class 3) per automation, so two instances asking at once
-- count each other's start; one statement, so one round trip and no lock held after it.
CREATE FUNCTION hr_take_start(automation hr_id, per_sec integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    now_ms  bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    counted bigint;
    freed   bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(3, hashtext(encode(automation, 'hex')));
    DELETE FROM rate_starts WHERE automation_id = automation AND started_at <= now_ms - 1000;
    SELECT count(*) INTO counted FROM rate_starts WHERE automation_id = automation;
    IF counted < per_sec THEN
        INSERT INTO rate_starts (automation_id, started_at) VALUES (automation, now_ms);
        RETURN 0;
    END IF;
    SELECT started_at + 1000 - now_ms INTO freed FROM rate_starts
        WHERE automation_id = automation ORDER BY started_at OFFSET counted - per_sec LIMIT 1;
    RETURN greatest(freed, 1);
END $$;
