-- spares PostgreSQL schema, version 4: job leases. The server running a
-- job (the one that accepted it, or one that took it over) holds the job's
-- lease and renews it while the job runs; a server that finds a lease run
-- out (its server died) claims it with UPDATE ... FOR UPDATE SKIP LOCKED,
-- so exactly one server takes the job over and runs it again from its
-- stored request (src/store/leases.rs, src/service/jobs.rs). Times are the
-- database's clock, so the servers' clocks need not agree.
--
-- Not part of a backup: a lease lives only while its job runs; a restored
-- job that had not ended has none, and the first server to start adopts it.
CREATE TABLE job_leases (
    job_id text COLLATE "C" PRIMARY KEY,
    owner text COLLATE "C" NOT NULL,
    lease_until timestamptz NOT NULL,
    cancel_requested boolean NOT NULL DEFAULT false,
    takeovers integer NOT NULL DEFAULT 0
);
-- The takeover scan: leases that have run out, oldest first.
CREATE INDEX job_leases_by_expiry ON job_leases (lease_until);
