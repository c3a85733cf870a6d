-- Version 26: a shared start counts from when its call reached the receiver, not from when
-- it was taken. hr_take_start (version 24) recorded the database's clock at the take; the
-- call went out only after the answer came back and the instance signed it, and reached
-- the receiver later still, by a time that varies call to call (tens of ms under load), so
-- a receiver saw the next second's calls that much early (attack finding F9). Now the take
-- answers the start's id and the instance stamps it once its call has answered, or
-- STAMP_AFTER after it went (src/delivery/rate_limit_stamp.rs): the row moves to the
-- database's clock then, which is after the call arrived. hr_take_start goes: an instance
-- of the build before, still running, waits with its limited calls (saying so) until
-- replaced, never passing the limit.
ALTER TABLE rate_starts ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
DROP FUNCTION hr_take_start(hr_id, integer);

-- The database's clock in milliseconds.
CREATE FUNCTION hr_clock_ms() RETURNS bigint
LANGUAGE sql VOLATILE AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

-- Takes a start of `automation` if fewer than `per_sec` started in the last second: the new
-- start's id (positive) when taken, else minus the milliseconds until one of them leaves
-- the window (at most -1). Under a transaction-scoped advisory lock (class 3) per
-- automation, so two instances asking at once count each other's start; one statement, so
-- one round trip and no lock held after it. Rows older than the window are deleted here.
CREATE FUNCTION hr_rate_take(automation hr_id, per_sec integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    now_ms  bigint;
    counted bigint;
    freed   bigint;
    taken   bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(3, hashtext(encode(automation, 'hex')));
    now_ms := hr_clock_ms();
    DELETE FROM rate_starts WHERE automation_id = automation AND started_at <= now_ms - 1000;
    SELECT count(*) INTO counted FROM rate_starts WHERE automation_id = automation;
    IF counted < per_sec THEN
        INSERT INTO rate_starts (automation_id, started_at) VALUES (automation, now_ms)
            RETURNING id INTO taken;
        RETURN taken;
    END IF;
    SELECT started_at + 1000 - now_ms INTO freed FROM rate_starts
        WHERE automation_id = automation ORDER BY started_at OFFSET counted - per_sec LIMIT 1;
    RETURN -greatest(freed, 1);
END $$;

-- Moves start `start` of `automation` to the database's clock now (never earlier than it
-- was), under the take's lock so that a take counting at the same moment sees it moved.
-- Nothing when the row is gone (its automation deleted, or stamped after its window).
CREATE FUNCTION hr_rate_stamp(automation hr_id, start bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(3, hashtext(encode(automation, 'hex')));
    UPDATE rate_starts SET started_at = greatest(started_at, hr_clock_ms()) WHERE id = start;
END $$;
