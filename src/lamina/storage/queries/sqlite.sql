-- One named query per Store operation. The PostgreSQL file carries the same names.

-- name: insert_function
INSERT INTO functions (name, created_at, tags) VALUES (:name, :created_at, :tags);

-- name: delete_function
DELETE FROM functions WHERE name = :name;

-- name: put_version
INSERT INTO function_versions (name, version, config) VALUES (:name, :version, :config)
ON CONFLICT (name, version) DO UPDATE SET config = excluded.config;

-- name: list_versions
SELECT name, version, config FROM function_versions ORDER BY name, version;

-- name: list_function_tags
SELECT name, tags FROM functions;

-- name: set_function_tags
UPDATE functions SET tags = :tags WHERE name = :name;

-- name: upsert_invocation
-- Positional (one tuple per row, rows.summary_rows): the records' batches bind no names.
-- A batch runs as INSERTs of up to 64 rows (sqlite.py `_insert_rows` repeats the one
-- parenthesised group of `?` after the keyword): keep one such group, as insert_record does.
INSERT INTO invocations (request_id, function, qualifier, invocation_type, accepted_at, status,
                         finished_at, attempts, error_type, duration_ms, timeline)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (request_id) DO UPDATE SET
    status = excluded.status, finished_at = excluded.finished_at,
    attempts = excluded.attempts, error_type = excluded.error_type,
    duration_ms = excluded.duration_ms, timeline = excluded.timeline;

-- name: insert_record
INSERT INTO invocation_records (request_id, at, kind, detail)
VALUES (?, ?, ?, ?);

-- name: list_invocations
SELECT request_id, function, qualifier, invocation_type, accepted_at, status, finished_at,
       attempts, error_type, duration_ms
FROM invocations
WHERE (:function IS NULL OR function = :function) AND accepted_at < :before
ORDER BY accepted_at DESC
LIMIT :limit;

-- name: get_invocation
SELECT request_id, function, qualifier, invocation_type, accepted_at, status, finished_at,
       attempts, error_type, duration_ms, timeline
FROM invocations WHERE request_id = :request_id;

-- name: list_records
SELECT request_id, at, kind, detail FROM invocation_records
WHERE request_id = :request_id ORDER BY seq;

-- name: enqueue_event
INSERT INTO async_events (request_id, function, qualifier, payload, accepted_at, due_at,
                          invocations, throttles, trace_id, tenant_id)
VALUES (:request_id, :function, :qualifier, :payload, :accepted_at, :due_at, :invocations,
        :throttles, :trace_id, :tenant_id);

-- name: due_functions
SELECT function, COUNT(*) FROM async_events
WHERE owner IS NULL AND due_at <= :now GROUP BY function;

-- name: claim_events
UPDATE async_events SET owner = :owner, lease_until = :lease_until
WHERE request_id IN (
    SELECT request_id FROM async_events
    WHERE owner IS NULL AND function = :function AND due_at <= :now
    ORDER BY due_at LIMIT :limit)
RETURNING request_id, function, qualifier, payload, accepted_at, due_at, invocations,
          throttles, trace_id, tenant_id;

-- name: next_due
SELECT MIN(due_at) FROM async_events WHERE owner IS NULL AND due_at > :after;

-- name: next_delivery_due
SELECT MIN(due_at) FROM deliveries WHERE owner IS NULL;

-- name: reschedule_event
UPDATE async_events SET owner = NULL, lease_until = NULL, due_at = :due_at,
    invocations = :invocations, throttles = :throttles
WHERE request_id = :request_id;

-- name: finish_event
DELETE FROM async_events WHERE request_id = :request_id;

-- name: release_expired_events
UPDATE async_events SET owner = NULL, lease_until = NULL
WHERE owner IS NOT NULL AND (lease_until < :now OR owner = :owner)
RETURNING request_id;

-- name: release_expired_deliveries
UPDATE deliveries SET owner = NULL, lease_until = NULL
WHERE owner IS NOT NULL AND (lease_until < :now OR owner = :owner)
RETURNING id;

-- name: queue_stats
SELECT function, COUNT(*), MIN(accepted_at) FROM async_events GROUP BY function;

-- name: put_event_config
INSERT INTO event_invoke_configs (function, qualifier, config)
VALUES (:function, :qualifier, :config)
ON CONFLICT (function, qualifier) DO UPDATE SET config = excluded.config;

-- name: delete_event_config
DELETE FROM event_invoke_configs WHERE function = :function AND qualifier = :qualifier;

-- name: list_event_configs
SELECT config FROM event_invoke_configs ORDER BY function, qualifier;

-- name: put_policy
INSERT INTO function_policies (function, qualifier, policy)
VALUES (:function, :qualifier, :policy)
ON CONFLICT (function, qualifier) DO UPDATE SET policy = excluded.policy;

-- name: delete_policy
DELETE FROM function_policies WHERE function = :function AND qualifier = :qualifier;

-- name: list_policies
SELECT policy FROM function_policies ORDER BY function, qualifier;

-- name: put_function_url
INSERT INTO function_urls (function, qualifier, url_id, config)
VALUES (:function, :qualifier, :url_id, :config)
ON CONFLICT (function, qualifier) DO UPDATE SET config = excluded.config;

-- name: delete_function_url
DELETE FROM function_urls WHERE function = :function AND qualifier = :qualifier;

-- name: list_function_urls
SELECT config FROM function_urls ORDER BY function, qualifier;

-- name: insert_layer_version
INSERT INTO layer_versions (name, version, layer) VALUES (:name, :version, :layer);

-- name: put_layer_version
UPDATE layer_versions SET layer = :layer WHERE name = :name AND version = :version;

-- name: list_layer_versions
SELECT layer FROM layer_versions ORDER BY name, version;

-- name: enqueue_delivery
INSERT INTO deliveries (id, request_id, kind, target, body, attributes, attempts, due_at)
VALUES (:id, :request_id, :kind, :target, :body, :attributes, :attempts, :due_at);

-- name: claim_deliveries
UPDATE deliveries SET owner = :owner, lease_until = :lease_until
WHERE id IN (
    SELECT id FROM deliveries WHERE owner IS NULL AND due_at <= :now
    ORDER BY due_at LIMIT :limit)
RETURNING id, request_id, kind, target, body, attributes, attempts, due_at;

-- name: reschedule_delivery
UPDATE deliveries SET owner = NULL, lease_until = NULL, due_at = :due_at, attempts = :attempts
WHERE id = :id;

-- name: finish_delivery
DELETE FROM deliveries WHERE id = :id;

-- name: set_reserved_concurrency
UPDATE functions SET reserved_concurrency = :reserved WHERE name = :name;

-- name: list_reserved_concurrency
SELECT name, reserved_concurrency FROM functions WHERE reserved_concurrency IS NOT NULL;

-- name: put_package
INSERT INTO packages (key, zip) VALUES (:key, :zip) ON CONFLICT (key) DO NOTHING;

-- name: get_package
SELECT zip FROM packages WHERE key = :key;

-- name: put_call_result
INSERT INTO call_results (function, qualifier, invocation_id, request_id, executed_version,
                          content_type, function_error, error_type, payload, log_tail,
                          duration_ms, finished_at)
VALUES (:function, :qualifier, :invocation_id, :request_id, :executed_version, :content_type,
        :function_error, :error_type, :payload, :log_tail, :duration_ms, :finished_at)
ON CONFLICT (function, qualifier, invocation_id) DO NOTHING;

-- name: purge_call_results
DELETE FROM call_results WHERE finished_at < :before;

-- name: get_call_result
SELECT request_id, executed_version, content_type, function_error, error_type, payload,
       log_tail, duration_ms
FROM call_results
WHERE function = :function AND qualifier = :qualifier AND invocation_id = :invocation_id
  AND finished_at >= :not_before;

-- name: next_version
UPDATE functions SET last_version = last_version + 1 WHERE name = :name
RETURNING last_version;

-- name: delete_version
DELETE FROM function_versions WHERE name = :name AND version = :version;

-- name: put_alias
INSERT INTO aliases (function, name, config) VALUES (:function, :name, :config)
ON CONFLICT (function, name) DO UPDATE SET config = excluded.config;

-- name: insert_alias
INSERT INTO aliases (function, name, config) VALUES (:function, :name, :config);

-- name: delete_alias
DELETE FROM aliases WHERE function = :function AND name = :name;

-- name: list_aliases
SELECT config FROM aliases ORDER BY function, name;

-- name: put_provisioned
INSERT INTO provisioned_configs (function, qualifier, requested, last_modified)
VALUES (:function, :qualifier, :requested, :last_modified)
ON CONFLICT (function, qualifier) DO UPDATE SET
    requested = excluded.requested, last_modified = excluded.last_modified;

-- name: delete_provisioned
DELETE FROM provisioned_configs WHERE function = :function AND qualifier = :qualifier;

-- name: list_provisioned
SELECT function, qualifier, requested, last_modified FROM provisioned_configs
ORDER BY function, qualifier;

-- Invocation lists for the console and `lamina invocations`: one query per leading filter,
-- so each walks its own index newest first; the other filters are checked on the way. The
-- status and type indexes are partial (see migration 0008): successes and sync calls are
-- listed by the time index.

-- name: find_invocations
SELECT request_id, function, qualifier, invocation_type, accepted_at, status, finished_at,
       attempts, error_type, duration_ms
FROM invocations INDEXED BY invocations_by_time
WHERE accepted_at < :before AND accepted_at >= :since
  AND (:status IS NULL OR status = :status)
  AND (:invocation_type IS NULL OR invocation_type = :invocation_type)
ORDER BY accepted_at DESC
LIMIT :limit;

-- name: find_invocations_by_function
SELECT request_id, function, qualifier, invocation_type, accepted_at, status, finished_at,
       attempts, error_type, duration_ms
FROM invocations INDEXED BY invocations_by_function
WHERE function = :function AND accepted_at < :before AND accepted_at >= :since
  AND (:status IS NULL OR status = :status)
  AND (:invocation_type IS NULL OR invocation_type = :invocation_type)
ORDER BY accepted_at DESC
LIMIT :limit;

-- name: find_invocations_by_status
SELECT request_id, function, qualifier, invocation_type, accepted_at, status, finished_at,
       attempts, error_type, duration_ms
FROM invocations INDEXED BY invocations_by_status
WHERE status = :status AND status <> 'success'
  AND accepted_at < :before AND accepted_at >= :since
  AND (:invocation_type IS NULL OR invocation_type = :invocation_type)
ORDER BY accepted_at DESC
LIMIT :limit;

-- name: find_invocations_by_type
SELECT request_id, function, qualifier, invocation_type, accepted_at, status, finished_at,
       attempts, error_type, duration_ms
FROM invocations INDEXED BY invocations_by_type
WHERE invocation_type = :invocation_type AND invocation_type <> 'RequestResponse'
  AND accepted_at < :before AND accepted_at >= :since
  AND (:status IS NULL OR status = :status)
ORDER BY accepted_at DESC
LIMIT :limit;

-- Retention: the oldest invocations go first, a chunk at a time, with their records.

-- name: invocation_cutoff
SELECT accepted_at FROM invocations ORDER BY accepted_at DESC LIMIT 1 OFFSET :offset;

-- name: oldest_invocations
SELECT request_id FROM invocations WHERE accepted_at < :before
ORDER BY accepted_at LIMIT :limit;

-- name: delete_invocation_records
DELETE FROM invocation_records WHERE request_id = :request_id;

-- name: delete_invocation
DELETE FROM invocations WHERE request_id = :request_id;

-- name: put_mapping
INSERT INTO event_source_mappings (uuid, function, last_modified, config)
VALUES (:uuid, :function, :last_modified, :config)
ON CONFLICT (uuid) DO UPDATE
SET function = excluded.function, last_modified = excluded.last_modified, config = excluded.config
WHERE event_source_mappings.last_modified <= excluded.last_modified;

-- name: settle_mapping
UPDATE event_source_mappings SET config = :config
WHERE uuid = :uuid AND last_modified <= :last_modified;

-- name: delete_mapping
DELETE FROM event_source_mappings WHERE uuid = :uuid;

-- name: list_mappings
SELECT config FROM event_source_mappings ORDER BY uuid;

-- name: put_checkpoint
INSERT INTO checkpoints (mapping, shard, position) VALUES (:mapping, :shard, :position)
ON CONFLICT (mapping, shard) DO UPDATE SET position = excluded.position;

-- name: get_checkpoints
SELECT shard, position FROM checkpoints WHERE mapping = :mapping;

-- name: put_stack
INSERT INTO stacks (name, stack_id, status, updated_at, stack)
VALUES (:name, :stack_id, :status, :updated_at, :stack)
ON CONFLICT (name) DO UPDATE SET stack_id = excluded.stack_id, status = excluded.status,
    updated_at = excluded.updated_at, stack = excluded.stack;

-- name: delete_stack
DELETE FROM stacks WHERE name = :name;

-- name: list_stacks
SELECT stack FROM stacks ORDER BY name;

-- name: insert_stack_event
INSERT INTO stack_events (stack_id, seq, event) VALUES (:stack_id, :seq, :event);

-- A stack written by the engine that runs its operation (engines sharing the store): the
-- row is taken only if the stack is not in progress, or in progress under this engine.
-- name: put_stack_owned
INSERT INTO stacks (name, stack_id, status, updated_at, stack)
VALUES (:name, :stack_id, :status, :updated_at, :stack)
ON CONFLICT (name) DO UPDATE SET stack_id = excluded.stack_id, status = excluded.status,
    updated_at = excluded.updated_at, stack = excluded.stack
WHERE stacks.status NOT IN
    ('CREATE_IN_PROGRESS', 'UPDATE_IN_PROGRESS', 'UPDATE_COMPLETE_CLEANUP_IN_PROGRESS', 'ROLLBACK_IN_PROGRESS', 'UPDATE_ROLLBACK_IN_PROGRESS', 'DELETE_IN_PROGRESS')
    OR json_extract(stacks.stack, '$.options.engine') = :engine
RETURNING name;

-- name: insert_stack_event_owned
INSERT INTO stack_events (stack_id, seq, event)
SELECT :stack_id, :seq, :event
WHERE EXISTS (SELECT 1 FROM stacks WHERE name = :name AND json_extract(stacks.stack, '$.options.engine') = :engine);

-- An operation in progress taken over from the engine that ran it (dead): only if that
-- engine still has it.
-- name: claim_stack
UPDATE stacks SET stack = :stack, updated_at = :updated_at
WHERE name = :name AND stack_id = :stack_id AND status IN
    ('CREATE_IN_PROGRESS', 'UPDATE_IN_PROGRESS', 'UPDATE_COMPLETE_CLEANUP_IN_PROGRESS', 'ROLLBACK_IN_PROGRESS', 'UPDATE_ROLLBACK_IN_PROGRESS', 'DELETE_IN_PROGRESS')
    AND json_extract(stacks.stack, '$.options.engine') IS :previous
RETURNING name;

-- name: list_stack_events
SELECT event FROM stack_events WHERE stack_id = :stack_id AND seq > :after ORDER BY seq;

-- name: delete_stack_events
DELETE FROM stack_events WHERE stack_id = :stack_id;

-- name: put_schedule
INSERT INTO schedules (name, config, state, next_due, token)
VALUES (:name, :config, :state, :next_due, NULL)
ON CONFLICT (name) DO UPDATE SET config = excluded.config, state = excluded.state,
    next_due = excluded.next_due, token = NULL;

-- name: delete_schedule
DELETE FROM schedules WHERE name = :name;

-- name: list_schedules
SELECT config, state FROM schedules ORDER BY name;

-- name: advance_schedule
UPDATE schedules SET state = :state, next_due = :next_due, token = :token
WHERE name = :name AND next_due = :due;

-- name: enqueue_scheduled_event
INSERT INTO async_events (request_id, function, qualifier, payload, accepted_at, due_at,
                          invocations, throttles, trace_id)
SELECT :request_id, :function, :qualifier, :payload, :accepted_at, :due_at, :invocations,
       :throttles, :trace_id
WHERE EXISTS (SELECT 1 FROM schedules WHERE token = :token);

-- name: schedule_advanced
SELECT COUNT(*) FROM schedules WHERE token = :token;

-- name: put_http_api
INSERT INTO http_apis (api_id, config) VALUES (:api_id, :config)
ON CONFLICT (api_id) DO UPDATE SET config = excluded.config;

-- name: delete_http_api
DELETE FROM http_apis WHERE api_id = :api_id;

-- name: list_http_apis
SELECT config FROM http_apis ORDER BY api_id;

-- name: get_engine_clock
SELECT engine_time, wall_time, scale FROM engine_clock WHERE name = 'engine';

-- name: put_engine_clock
INSERT INTO engine_clock (name, engine_time, wall_time, scale)
VALUES ('engine', :engine_time, :wall_time, :scale)
ON CONFLICT (name) DO UPDATE SET engine_time = excluded.engine_time,
    wall_time = excluded.wall_time, scale = excluded.scale;

-- name: put_code_signing_config
INSERT INTO code_signing_configs (arn, config) VALUES (:arn, :config)
ON CONFLICT (arn) DO UPDATE SET config = excluded.config;

-- name: delete_code_signing_config
DELETE FROM code_signing_configs WHERE arn = :arn;

-- name: list_code_signing_configs
SELECT config FROM code_signing_configs ORDER BY arn;

-- name: insert_capacity_provider
INSERT INTO capacity_providers (name, config) VALUES (:name, :config);

-- name: put_capacity_provider
UPDATE capacity_providers SET config = :config WHERE name = :name;

-- name: delete_capacity_provider
DELETE FROM capacity_providers WHERE name = :name;

-- name: list_capacity_providers
SELECT config FROM capacity_providers ORDER BY name;
-- durable executions (domain/durable.py; storage/durable.py) ----------------------------

-- name: insert_execution
INSERT INTO durable_executions (arn, function, version, name, status, started_at, ended_at,
                                due_at, expires_at, seq, writer, doc)
VALUES (:arn, :function, :version, :name, :status, :started_at, :ended_at, :due_at,
        :expires_at, 1, :writer, :doc)
ON CONFLICT DO NOTHING
RETURNING arn;

-- name: get_execution
SELECT seq, doc FROM durable_executions WHERE arn = :arn;

-- name: find_execution
SELECT seq, doc FROM durable_executions WHERE function = :function AND name = :name;

-- name: update_execution
UPDATE durable_executions
SET status = :status, ended_at = :ended_at, due_at = :due_at, expires_at = :expires_at,
    seq = seq + 1, writer = :writer, doc = :doc
WHERE arn = :arn AND seq = :seq
RETURNING seq;

-- name: put_execution_operation
INSERT INTO durable_operations (arn, id, position, doc)
SELECT :arn, :id, :position, :doc
WHERE EXISTS (SELECT 1 FROM durable_executions WHERE arn = :arn AND writer = :writer)
ON CONFLICT (arn, id) DO UPDATE SET doc = excluded.doc;

-- name: add_execution_event
INSERT INTO durable_events (arn, event_id, doc)
SELECT :arn, :event_id, :doc
WHERE EXISTS (SELECT 1 FROM durable_executions WHERE arn = :arn AND writer = :writer);

-- name: execution_operations
SELECT doc FROM durable_operations WHERE arn = :arn ORDER BY position;

-- name: execution_operation
SELECT doc FROM durable_operations WHERE arn = :arn AND id = :id;

-- name: execution_events
SELECT doc FROM durable_events WHERE arn = :arn ORDER BY event_id LIMIT :limit OFFSET :offset;

-- name: execution_events_reversed
SELECT doc FROM durable_events WHERE arn = :arn ORDER BY event_id DESC
LIMIT :limit OFFSET :offset;

-- name: list_executions
SELECT arn, function, version, name, status, started_at, ended_at FROM durable_executions
WHERE function = :function ORDER BY started_at, arn;

-- name: due_executions
SELECT arn FROM durable_executions WHERE due_at <= :now ORDER BY due_at LIMIT :limit;

-- name: next_execution_due
SELECT MIN(due_at) FROM durable_executions WHERE due_at IS NOT NULL;

-- name: running_executions
SELECT arn FROM durable_executions WHERE status = 'RUNNING';

-- name: purge_execution_operations
DELETE FROM durable_operations
WHERE arn IN (SELECT arn FROM durable_executions WHERE expires_at < :now);

-- name: purge_execution_events
DELETE FROM durable_events
WHERE arn IN (SELECT arn FROM durable_executions WHERE expires_at < :now);

-- name: purge_executions
DELETE FROM durable_executions WHERE expires_at < :now RETURNING arn;

-- name: put_debug_mode
INSERT INTO debug_modes (function, version, settings) VALUES (:function, :version, :settings)
ON CONFLICT (function, version) DO UPDATE SET settings = excluded.settings;

-- name: delete_debug_mode
DELETE FROM debug_modes WHERE function = :function AND (version = :version OR :version = '');

-- name: list_debug_modes
SELECT settings FROM debug_modes ORDER BY function, version;
