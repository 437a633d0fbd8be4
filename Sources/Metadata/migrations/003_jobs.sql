-- The message broker: a durable job queue. The table is the truth; NOTIFY only wakes workers.
-- States: available (run_at may be in the future), running (leased), retryable (failed, waiting for its
-- backoff), and the final completed, discarded (attempts exhausted, reason kept) and cancelled.
CREATE TABLE jobs (
    id               bigserial PRIMARY KEY,
    queue            text NOT NULL,
    kind             text NOT NULL,
    payload          jsonb NOT NULL DEFAULT '{}',
    state            text NOT NULL DEFAULT 'available'
                     CHECK (state IN ('available', 'running', 'retryable', 'completed', 'discarded', 'cancelled')),
    unique_key       text,
    account_id       uuid REFERENCES accounts(id) ON DELETE CASCADE,
    created_by       uuid,
    attempt          integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    run_at           timestamptz NOT NULL DEFAULT now(),
    locked_by        text,
    lease_token      uuid,
    lease_until      timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    progress         jsonb,
    result           jsonb,
    errors           jsonb NOT NULL DEFAULT '[]',
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz
);
CREATE INDEX jobs_ready ON jobs (queue, run_at, id) WHERE state IN ('available', 'retryable');
CREATE INDEX jobs_leases ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('completed', 'discarded', 'cancelled');
CREATE INDEX jobs_account ON jobs (account_id, queue, created_at);
-- Unique keys hold while a job is not final, so the same work cannot be queued twice at once.
CREATE UNIQUE INDEX jobs_unique_key ON jobs (queue, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('available', 'running', 'retryable');
-- A busy queue table: vacuum it early.
ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02);
