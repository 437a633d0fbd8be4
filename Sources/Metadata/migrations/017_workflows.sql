-- Workflows (issue 17): documents owned and shared like maps, their runs, and the schedule.
CREATE TABLE workflows (
    id           text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{6,64}$'),
    account_id   uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    -- Like maps: no foreign key, a removed user's workflows keep their owner id.
    owner_id     uuid,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    connection   text NOT NULL,
    privacy      text NOT NULL DEFAULT 'private' CHECK (privacy IN ('private', 'organization', 'public')),
    document     jsonb NOT NULL,
    -- Cron (5 fields, UTC); next_run_at is the due time the scheduler claims (compare-and-set).
    schedule     text,
    next_run_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflows_account ON workflows (account_id, updated_at DESC);
CREATE INDEX workflows_due ON workflows (next_run_at) WHERE next_run_at IS NOT NULL;

CREATE TABLE workflow_runs (
    id             bigserial PRIMARY KEY,
    workflow_id    text NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    account_id     uuid NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_by     uuid,
    job_id         bigint,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'running', 'success', 'failure', 'cancelled')),
    trigger        text NOT NULL DEFAULT 'api' CHECK (trigger IN ('api', 'schedule')),
    -- A scheduled run's due time: unique per workflow, so no due time starts twice.
    scheduled_for  timestamptz,
    variables      jsonb NOT NULL DEFAULT '{}',
    -- The document as it was when the run started (edits during a run do not change it).
    document       jsonb NOT NULL,
    nodes          jsonb NOT NULL DEFAULT '{}',
    outputs        jsonb NOT NULL DEFAULT '{}',
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    UNIQUE (workflow_id, scheduled_for)
);
CREATE INDEX workflow_runs_workflow ON workflow_runs (workflow_id, id DESC);
