-- spares PostgreSQL schema, version 3: a stage lives while its coordinator
-- does. The coordinator (the server that accepted the job) extends
-- coordinator_until while it waits for its units; workers claim only units
-- of stages whose coordinator is alive, and opening any stage forgets the
-- stages whose coordinator stopped extending them (it died: nobody would
-- merge their results).
ALTER TABLE work_stages ADD COLUMN coordinator_until timestamptz NOT NULL DEFAULT now();
