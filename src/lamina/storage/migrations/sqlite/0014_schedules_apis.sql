-- Schedules the engine runs (EventBridge rules and Scheduler schedules), HTTP APIs it serves
-- (API Gateway REST and HTTP APIs), and the engine clock's anchor.
-- A schedule's next_due is the next due time not fired yet; firing one moves it on in the
-- same transaction that queues the async event, guarded by next_due (a due time fires once).
CREATE TABLE schedules (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    next_due REAL,
    token TEXT
);

CREATE TABLE http_apis (
    api_id TEXT PRIMARY KEY,
    config TEXT NOT NULL
);

-- Engine time under --time-scale N or 'virtual' continues across restarts from here:
-- engine time = engine_time + (wall time - wall_time) * scale.
CREATE TABLE engine_clock (
    name TEXT PRIMARY KEY,
    engine_time REAL NOT NULL,
    wall_time REAL NOT NULL,
    scale TEXT NOT NULL
);
