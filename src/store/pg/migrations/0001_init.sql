-- spares PostgreSQL schema, version 1: the ledger, idempotency keys,
-- reservations, master data and opaque records (jobs, audit trail, policy
-- history). Applied by `PgStore::open` and `spares db upgrade` inside one
-- transaction that also records the version in schema_version.
--
-- Text keys are COLLATE "C" so that every ORDER BY is byte order, the order
-- the sled store answers in, whatever the database's default collation.

-- The ledger's head: the next log sequence. Every ledger write locks this one
-- row first (SELECT ... FOR UPDATE), so ledger writes from every replica are
-- applied one at a time, in sequence order, with no gaps.
CREATE TABLE ledger_head (
    id smallint PRIMARY KEY CHECK (id = 1),
    next_sequence bigint NOT NULL CHECK (next_sequence >= 1)
);
INSERT INTO ledger_head (id, next_sequence) VALUES (1, 1);

-- The movement log: every entry one call wrote, in the store's binary log
-- format (src/store/codec.rs), keyed by the first entry's sequence.
CREATE TABLE ledger_log (
    first_sequence bigint PRIMARY KEY CHECK (first_sequence >= 1),
    last_sequence bigint NOT NULL,
    entries bytea NOT NULL,
    CHECK (last_sequence >= first_sequence)
);
CREATE UNIQUE INDEX ledger_log_last ON ledger_log (last_sequence);

-- Persisted balances, derived from the log in the same transaction. The
-- checks are the non-negativity guard and the quantity bound
-- (domain::ledger::MAX_QUANTITY), enforced by the database inside the
-- transaction that writes.
CREATE TABLE balances (
    account bytea PRIMARY KEY,
    part_id text COLLATE "C" NOT NULL,
    internal boolean NOT NULL,
    balance bigint NOT NULL,
    CHECK (NOT internal OR balance >= 0),
    CHECK (balance BETWEEN -1000000000000 AND 1000000000000)
);

-- Idempotency keys, per operation and principal. scope is the operation's
-- tag (M, R, P, V); a key restored from a backup of a sled directory older
-- than layout 4 has a lower-case tag and an empty principal.
CREATE TABLE idempotency (
    scope text COLLATE "C" NOT NULL,
    principal text COLLATE "C" NOT NULL,
    client_key text COLLATE "C" NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (scope, principal, client_key)
);

-- Reservations (body: JSON), with the columns their filters and the expiry
-- sweep read.
CREATE TABLE reservations (
    reservation_id text COLLATE "C" PRIMARY KEY,
    state text NOT NULL,
    expires_seconds bigint NOT NULL,
    expires_nanoseconds integer NOT NULL,
    part_id text COLLATE "C" NOT NULL,
    location_id text COLLATE "C" NOT NULL,
    held_for text COLLATE "C" NOT NULL,
    body bytea NOT NULL
);
CREATE INDEX reservations_pending_by_expiry
    ON reservations (expires_seconds, expires_nanoseconds, reservation_id)
    WHERE state = 'pending';

-- Master data (value: JSON), one collection per kind of record.
CREATE TABLE network_records (
    collection text COLLATE "C" NOT NULL,
    key bytea NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (collection, key)
);

-- Opaque records: jobs, API keys, the audit trail, the policy history.
CREATE TABLE records (
    collection text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (collection, key)
);

-- Rows locked to serialise appends that number themselves (audit events).
CREATE TABLE counters (
    name text COLLATE "C" PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO counters (name, value) VALUES ('audit_events', 0);
