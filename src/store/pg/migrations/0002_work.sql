-- spares PostgreSQL schema, version 2: shared planning work. A job's
-- coordinator (the server that accepted it) splits a stage of its work into
-- units; every server sharing the database claims open units, computes them
-- and stores their results; the coordinator merges the results in unit
-- order (src/store/work.rs, src/service/work.rs).
--
-- Nothing here is part of a backup: a stage lives only while its job runs.

-- One row per stage of a job: what kind of work its units are and how many
-- there are, so a coordinator that opens a stage again (a retry) finds it.
CREATE TABLE work_stages (
    job_id text COLLATE "C" NOT NULL,
    stage integer NOT NULL CHECK (stage >= 0),
    kind text COLLATE "C" NOT NULL,
    units integer NOT NULL CHECK (units >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, stage)
);

-- One row per unit. A worker claims a unit that is open, or claimed under a
-- lease that has expired (its worker died or stalled), with
-- SELECT ... FOR UPDATE SKIP LOCKED, so two workers never claim one unit in
-- the same instant; it renews the lease while it works and stores the
-- result only while it still owns the unit. Lease times are the database's
-- clock, so the servers' clocks need not agree.
CREATE TABLE work_units (
    job_id text COLLATE "C" NOT NULL,
    stage integer NOT NULL,
    unit integer NOT NULL CHECK (unit >= 0),
    input bytea NOT NULL,
    state text NOT NULL CHECK (state IN ('open', 'claimed', 'done', 'failed')),
    owner text COLLATE "C",
    lease_until timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    result bytea,
    message text,
    PRIMARY KEY (job_id, stage, unit),
    FOREIGN KEY (job_id, stage) REFERENCES work_stages (job_id, stage) ON DELETE CASCADE
);
-- The claim query's scan: units still to do, oldest stage first.
CREATE INDEX work_units_to_do ON work_units (job_id, stage, unit)
    WHERE state IN ('open', 'claimed');
