-- Engines sharing this database: membership, concurrency quotas, calls running (docs/CLUSTER.md).
-- Times here are PostgreSQL's own clock (epoch seconds), never an engine's (engines may run
-- --time-scale, and their clocks may disagree). Leases and grants are soft state, renewed every
-- second: their transactions commit without waiting for the WAL flush (synchronous_commit
-- off), which would cost a grant a disk sync; a PostgreSQL crash can lose the last fraction of
-- a second of them (docs/CLUSTER.md).

-- One row per engine, renewed by its heartbeat; an engine whose lease ran out is dead.
CREATE TABLE cluster_engines (
    engine TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    lease_until DOUBLE PRECISION NOT NULL
);

-- The share of a concurrency pool ('*': the unreserved account pool, else a function with
-- reserved concurrency) an engine holds. The granted of live engines never sum past the
-- pool's capacity; an engine admits a call only inside its grant.
CREATE TABLE concurrency_grants (
    pool TEXT NOT NULL,
    engine TEXT NOT NULL REFERENCES cluster_engines (engine) ON DELETE CASCADE,
    granted INTEGER NOT NULL,
    PRIMARY KEY (pool, engine)
);
CREATE INDEX concurrency_grants_by_engine ON concurrency_grants (engine);

-- Synchronous calls with an SDK invocation id that have run longer than a few milliseconds,
-- so that an SDK retry reaching another engine attaches to them.
CREATE TABLE running_calls (
    function TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    engine TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (function, qualifier, invocation_id)
);
CREATE INDEX running_calls_by_engine ON running_calls (engine);

CREATE FUNCTION lamina_now() RETURNS DOUBLE PRECISION LANGUAGE sql VOLATILE AS
$$ SELECT extract(epoch FROM clock_timestamp())::DOUBLE PRECISION $$;

-- Renew an engine's lease (registering it if need be). `lost` is true when its lease had run
-- out or its row was gone (other engines counted it dead): its grants are reset to nothing,
-- and the engine drops what it believed it held (on its first renewal it holds nothing).
CREATE FUNCTION lamina_renew(p_engine TEXT, p_address TEXT, p_state TEXT, p_ttl DOUBLE PRECISION,
                             OUT lease_until DOUBLE PRECISION, OUT lost BOOLEAN)
LANGUAGE plpgsql AS $$
DECLARE
    v_now DOUBLE PRECISION := lamina_now();
    v_old DOUBLE PRECISION;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT e.lease_until INTO v_old FROM cluster_engines e WHERE e.engine = p_engine FOR UPDATE;
    lease_until := v_now + p_ttl;
    IF v_old IS NULL THEN
        lost := TRUE;
        INSERT INTO cluster_engines (engine, address, state, started_at, lease_until)
        VALUES (p_engine, p_address, p_state, v_now, lease_until)
        ON CONFLICT (engine) DO UPDATE SET lease_until = EXCLUDED.lease_until,
                                           state = EXCLUDED.state;
        RETURN;
    END IF;
    lost := v_old < v_now;
    IF lost THEN
        DELETE FROM concurrency_grants g WHERE g.engine = p_engine;
    END IF;
    UPDATE cluster_engines e SET lease_until = lamina_renew.lease_until, state = p_state,
                                 address = p_address
    WHERE e.engine = p_engine;
END $$;

-- Grant up to p_want more of a pool to an engine (renewing its lease), inside the pool's
-- capacity minus what live engines hold. Returns how many were given, how many others hold
-- (what a reclaim could free) and how many other engines are live.
CREATE FUNCTION lamina_grant(p_engine TEXT, p_address TEXT, p_state TEXT, p_ttl DOUBLE PRECISION,
                             p_pool TEXT, p_want INTEGER, p_account INTEGER,
                             OUT given INTEGER, OUT held_by_others INTEGER,
                             OUT others INTEGER, OUT lease_until DOUBLE PRECISION,
                             OUT lost BOOLEAN)
LANGUAGE plpgsql AS $$
DECLARE
    v_now DOUBLE PRECISION;
    v_capacity INTEGER;
    v_mine INTEGER;
BEGIN
    -- one grant of a pool at a time, so two engines never both take its last slot
    PERFORM pg_advisory_xact_lock(7420733, hashtext(p_pool));
    SELECT r.lease_until, r.lost INTO lease_until, lost
    FROM lamina_renew(p_engine, p_address, p_state, p_ttl) r;
    v_now := lamina_now();
    IF p_pool = '*' THEN
        SELECT p_account - coalesce(sum(f.reserved_concurrency), 0) INTO v_capacity
        FROM functions f WHERE f.reserved_concurrency IS NOT NULL;
    ELSE
        SELECT f.reserved_concurrency INTO v_capacity FROM functions f WHERE f.name = p_pool;
    END IF;
    v_capacity := coalesce(v_capacity, 0);
    SELECT coalesce(sum(g.granted) FILTER (WHERE g.engine <> p_engine), 0),
           coalesce(sum(g.granted) FILTER (WHERE g.engine = p_engine), 0)
    INTO held_by_others, v_mine
    FROM concurrency_grants g JOIN cluster_engines e ON e.engine = g.engine
    WHERE g.pool = p_pool AND e.lease_until >= v_now;
    SELECT count(*) - 1 INTO others FROM cluster_engines e WHERE e.lease_until >= v_now;
    given := greatest(0, least(p_want, v_capacity - held_by_others - v_mine));
    IF given > 0 THEN
        INSERT INTO concurrency_grants (pool, engine, granted) VALUES (p_pool, p_engine, given)
        ON CONFLICT (pool, engine) DO UPDATE
            SET granted = concurrency_grants.granted + EXCLUDED.granted;
    END IF;
END $$;
