"""The PostgreSQL store's statements. Most protocol methods are ONE statement (data-modifying CTEs), so they cost
one round trip and commit atomically without BEGIN/COMMIT. Times come from the server's clock (``now()``), so
leases mean the same thing to every machine of a fleet. Wake-ups are sent by the store after commit (postgres_listen).
"""

from __future__ import annotations

from ingestd.store.postgres_webhooks import FINISHED_HOOK_CTES, PROGRESS_HOOK_CTES
from ingestd.store.records import JOB_COLUMNS

_J = ", ".join(f"j.{c.strip()}" for c in JOB_COLUMNS.split(","))
_PIPELINES = "($2::text[] IS NULL OR pipeline = ANY($2::text[]))"
SECONDS = "* interval '1 second'"
TERMINAL = "('succeeded', 'partial', 'failed', 'canceled')"

# CTEs appended after a CTE ``done`` that moved jobs to a terminal status and returned
# (id, last_seq, tenant, pipeline, webhook_url, status, ordering_key): the job.finished event, and the webhook
# outbox rows of job.<status> (``postgres_webhooks.FINISHED_HOOK_CTES``).
TERMINAL_CTES = (
    """
, finished_events AS (
    INSERT INTO events (job_id, seq, type, data, at)
    SELECT id, last_seq, 'job.finished', json_build_object('status', status)::text, now() FROM done
)"""
    + FINISHED_HOOK_CTES
)
TERMINAL_SET = (
    f"finished_at = now(), updated_at = now(), expires_at = now() + retention_seconds {SECONDS}, "
    "lease_owner = NULL, lease_expires_at = NULL, last_seq = last_seq + 1"
)
DONE_RETURNING = "RETURNING id, last_seq, tenant, pipeline, webhook_url, status, ordering_key"

SUBMIT = f"""
WITH ins AS (
    INSERT INTO jobs (id, tenant, pipeline, status, input, files, attempt, max_attempts, priority, run_at,
        ordering_key, idempotency_key, payload_hash, created_at, updated_at, cancel_requested, deadline_seconds,
        retention_seconds, usage, webhook_url, units, last_seq, traceparent)
    VALUES ($1, $2, $3, 'queued', $4, $5, 0, $6, $7, coalesce($8, now()), $9, $10, $11, now(), now(), false,
        $12, $13, '{{}}', $14, $15, 1, $17)
    ON CONFLICT (tenant, idempotency_key) DO NOTHING
    RETURNING {JOB_COLUMNS}
), ev AS (
    INSERT INTO events (job_id, seq, type, data, at) SELECT id, 1, 'job.queued', $16, now() FROM ins
)
SELECT * FROM ins
"""
BY_IDEMPOTENCY_KEY = f"SELECT {JOB_COLUMNS} FROM jobs WHERE tenant = $1 AND idempotency_key = $2"

# Claims and lease renewals commit without waiting for their WAL flush (``synchronous_commit`` off for that one
# transaction). Safe: losing one in a server crash only puts the job back as it was (queued, or an older lease),
# and the worker's next durable write (a step, the finish) flushes the WAL up to and including it, since WAL is
# sequential. It takes an fsync off the enqueue→start path and off every claim.
NO_FSYNC = "(SELECT set_config('synchronous_commit', 'off', true)) AS no_fsync"

# $1 pipelines, $2 limit, $3 records.EXHAUSTED_ERROR_TEMPLATE, $4 its ATTEMPTS_MARK: fail running jobs whose lease
# expired with their attempts used up (their worker kept dying), with the problem records.exhausted_error writes.
# Kept out of CLAIM, which it would make twice as slow to plan; ``claim_jobs`` runs it when the queue looks empty
# and at least once a second.
FAIL_EXHAUSTED = f"""
WITH exhausted AS (
    SELECT id FROM jobs WHERE status = 'running' AND lease_expires_at < now() AND attempt >= max_attempts
        AND ($1::text[] IS NULL OR pipeline = ANY($1::text[])) ORDER BY lease_expires_at LIMIT $2
    FOR UPDATE SKIP LOCKED
), done AS (
    UPDATE jobs AS j SET status = 'failed', error = replace($3::text, $4::text, j.attempt::text), {TERMINAL_SET}
    FROM exhausted WHERE j.id = exhausted.id {DONE_RETURNING.replace("RETURNING ", "RETURNING j.")}
){TERMINAL_CTES}
SELECT id, ordering_key FROM done
"""

# $1 worker, $2 pipelines, $3 limit, $4 lease seconds. Expired jobs with attempts left are taken over first,
# then queued jobs by priority, run_at, id. A keyed job waits while a same-key job of its tenant runs or an earlier
# one is queued (keys are scoped by tenant); SKIP LOCKED makes concurrent claimers pass over each other's rows.
CLAIM = f"""
WITH expired AS (
    SELECT id FROM jobs WHERE status = 'running' AND lease_expires_at < now() AND attempt < max_attempts
        AND {_PIPELINES} ORDER BY lease_expires_at LIMIT $3 FOR UPDATE SKIP LOCKED
), queued AS (
    SELECT id FROM jobs AS q WHERE status = 'queued' AND run_at <= now() AND {_PIPELINES}
        AND (ordering_key IS NULL OR (
            NOT EXISTS (SELECT 1 FROM jobs AS o WHERE o.ordering_key = q.ordering_key AND o.tenant = q.tenant
                AND o.status = 'running')
            AND NOT EXISTS (SELECT 1 FROM jobs AS o WHERE o.ordering_key = q.ordering_key AND o.tenant = q.tenant
                AND o.status = 'queued' AND o.id < q.id)))
        ORDER BY priority DESC, run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED
), picked AS (
    SELECT id, 0 AS rank FROM expired UNION ALL SELECT id, 1 FROM queued LIMIT $3
), claimed AS (
    UPDATE jobs AS j SET status = 'running', attempt = j.attempt + 1, lease_owner = $1,
        lease_expires_at = now() + $4::float8 {SECONDS}, started_at = coalesce(j.started_at, now()),
        deadline_at = coalesce(j.deadline_at, now() + j.deadline_seconds {SECONDS}), updated_at = now(),
        last_seq = j.last_seq + 1
    FROM picked WHERE j.id = picked.id RETURNING {_J}, picked.rank
), started AS (
    INSERT INTO events (job_id, seq, type, data, at)
    SELECT id, last_seq, 'job.started', json_build_object('attempt', attempt, 'worker', $1::text)::text, now()
    FROM claimed
)
SELECT claimed.* FROM claimed, {NO_FSYNC} ORDER BY rank, priority DESC, run_at, id
"""


# The fence of a worker's writes: the job runs under this worker's lease AND the execution (``attempt``) it claimed,
# so a worker that lost a lease and claimed the same job again cannot write for its earlier execution. NULL attempt:
# the worker alone (callers outside a worker's run, such as tests and tools).
def fenced(worker: str, attempt: str) -> str:
    """SQL: the job row is running under ``worker``'s lease of execution ``attempt`` (parameter placeholders)."""
    return f"status = 'running' AND lease_owner = {worker} AND ({attempt}::int IS NULL OR attempt = {attempt}::int)"


# Statements that lock several job rows lock them in id order first (``ORDERED_LOCK``): a heartbeat and a grouped
# finish of one worker then cannot deadlock (which PostgreSQL would only break after deadlock_timeout, 1 s).
ORDERED_LOCK = "SELECT id FROM jobs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE"

HEARTBEAT = f"""
WITH locked AS ({ORDERED_LOCK}), held AS (
    UPDATE jobs SET lease_expires_at = now() + $3::float8 {SECONDS}
    FROM locked WHERE jobs.id = locked.id AND status = 'running' AND lease_owner = $2
    RETURNING jobs.id, cancel_requested
), seen AS (
    INSERT INTO workers (id, last_seen, jobs) VALUES ($2, now(), (SELECT count(*) FROM held))
    ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, jobs = excluded.jobs
)
SELECT id, cancel_requested FROM held, {NO_FSYNC}
"""

RELEASE = f"""
WITH locked AS ({ORDERED_LOCK}), back AS (
    UPDATE jobs SET status = 'queued', attempt = greatest(attempt - 1, 0), lease_owner = NULL,
        lease_expires_at = NULL, updated_at = now(), last_seq = last_seq + 1
    FROM locked WHERE jobs.id = locked.id AND status = 'running' AND lease_owner = $2
    RETURNING jobs.id, last_seq
)
INSERT INTO events (job_id, seq, type, data, at) SELECT id, last_seq, 'job.released', $3, now() FROM back
"""

SET_PROGRESS = f"""
WITH upd AS (
    UPDATE jobs SET progress_stage = $3, progress_done = $4, progress_total = $5, updated_at = now(),
        last_seq = last_seq + 1
    WHERE id = $1 AND {fenced("$2", "$7")} RETURNING id, last_seq, tenant, pipeline
), progress_event AS (
    INSERT INTO events (job_id, seq, type, data, at) SELECT id, last_seq, 'job.progress', $6, now() FROM upd
){PROGRESS_HOOK_CTES}
SELECT count(*) FROM upd
"""

FINISH = f"""
WITH done AS (
    UPDATE jobs SET status = $3, result = $4, error = $5, usage = coalesce($6, usage), {TERMINAL_SET}
    WHERE id = $1 AND {fenced("$2", "$7")} {DONE_RETURNING}
){TERMINAL_CTES}
SELECT id, ordering_key FROM done
"""

# The finishes of one worker process grouped into one statement (one round trip, one commit, one WAL flush):
# $1 ids, $2 workers, $3 statuses, $4 results, $5 errors, $6 usages, $7 attempts (parallel arrays). Returns the
# finished ids.
FINISH_MANY = f"""
WITH locked AS ({ORDERED_LOCK}), input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[])
        AS i(id, worker, new_status, new_result, new_error, new_usage, fence)
    WHERE i.id IN (SELECT id FROM locked)
), done AS (
    UPDATE jobs AS j SET status = i.new_status, result = i.new_result, error = i.new_error,
        usage = coalesce(i.new_usage, j.usage), {TERMINAL_SET}
    FROM input AS i WHERE j.id = i.id AND j.status = 'running' AND j.lease_owner = i.worker
        AND (i.fence IS NULL OR j.attempt = i.fence)
    RETURNING j.id, j.last_seq, j.tenant, j.pipeline, j.webhook_url, j.status, j.ordering_key
){TERMINAL_CTES}
SELECT id, ordering_key FROM done
"""

RETRY_LATER = f"""
WITH upd AS (
    UPDATE jobs SET status = 'queued', run_at = $3, error = $4, lease_owner = NULL, lease_expires_at = NULL,
        updated_at = now(), last_seq = last_seq + 1
    WHERE id = $1 AND {fenced("$2", "$6")} RETURNING id, last_seq
), ev AS (
    INSERT INTO events (job_id, seq, type, data, at) SELECT id, last_seq, 'job.queued', $5, now() FROM upd
)
SELECT id FROM upd
"""


def _insert_events(types: str, data: str) -> str:
    """SQL: insert the events of job $1 given as parallel arrays (``types``, ``data``: JSON texts), numbered up to
    ``upd.last_seq`` (a CTE that has just added their count to the job's ``last_seq``)."""
    return f"""INSERT INTO events (job_id, seq, type, data, at)
SELECT $1, upd.last_seq - cardinality({types}::text[]) + e.ord, e.type, e.data, now()
FROM upd, unnest({types}::text[], {data}::text[]) WITH ORDINALITY AS e(type, data, ord)"""


# $1 job, $2 types, $3 data (JSON texts). The row lock taken by the UPDATE serialises concurrent appends, so the
# numbers are gap-free and in commit order.
APPEND_EVENTS = f"""
WITH upd AS (
    UPDATE jobs SET last_seq = last_seq + cardinality($2::text[]) WHERE id = $1 RETURNING last_seq
)
{_insert_events("$2", "$3")}
RETURNING seq, at
"""

# APPEND_EVENTS for a worker's own events, fenced by its lease: $4 worker, $5 attempt.
APPEND_WORKER_EVENTS = f"""
WITH upd AS (
    UPDATE jobs SET last_seq = last_seq + cardinality($2::text[])
    WHERE id = $1 AND {fenced("$4", "$5")} RETURNING last_seq
)
{_insert_events("$2", "$3")}
RETURNING seq, at
"""

# $1 job, $2 worker, $3.. the step; $10 event types, $11 event data, $12 usage, $13 attempt. First write wins;
# only the lease holder (of that execution) may write the first. Returns (inserted, leased).
SAVE_STEP = f"""
WITH lease AS (
    SELECT id FROM jobs WHERE id = $1 AND {fenced("$2", "$13")} FOR UPDATE
), ins AS (
    INSERT INTO steps (job_id, key, ok, output, error, attempts, started_at, finished_at, usage)
    SELECT $1, $3, $4, $5, $6, $7, $8, $9, $12 FROM lease
    ON CONFLICT (job_id, key) DO NOTHING RETURNING job_id
), upd AS (
    UPDATE jobs SET last_seq = last_seq + cardinality($10::text[])
    WHERE id = $1 AND EXISTS (SELECT 1 FROM ins) AND cardinality($10::text[]) > 0 RETURNING last_seq
), ev AS (
    {_insert_events("$10", "$11")}
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM lease)
"""

CANCEL_QUEUED = f"""
WITH done AS (
    UPDATE jobs SET status = 'canceled', {TERMINAL_SET} WHERE id = $1 AND status = 'queued' {DONE_RETURNING}
){TERMINAL_CTES}
SELECT id FROM done
"""

PURGE = f"""
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs WHERE expires_at < coalesce($1::timestamptz, now()) AND status IN {TERMINAL}
    LIMIT $2 FOR UPDATE SKIP LOCKED
) RETURNING id, files
"""
DELETE_CHILDREN = """
WITH ev AS (DELETE FROM events WHERE job_id = ANY($1::text[]))
DELETE FROM steps WHERE job_id = ANY($1::text[])
"""

# $1 job, $2 tenant (NULL: any). Locks the row so cancel and delete decide on the state they change.
LOCK_JOB = (
    "SELECT status, cancel_requested, files FROM jobs WHERE id = $1 AND ($2::text IS NULL OR tenant = $2) FOR UPDATE"
)
MARK_CANCEL = "UPDATE jobs SET cancel_requested = true, updated_at = now() WHERE id = $1"
GET_JOB = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND ($2::text IS NULL OR tenant = $2)"

QUEUE_STATS = """
SELECT pipeline, count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'running'),
    coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'queued')), 0)
FROM jobs WHERE status IN ('queued', 'running') GROUP BY pipeline ORDER BY pipeline
"""
