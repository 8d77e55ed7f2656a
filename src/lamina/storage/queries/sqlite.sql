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

-- name: upsert_invocation
INSERT INTO invocations (request_id, function, qualifier, invocation_type, accepted_at, status,
                         finished_at, attempts, error_type, duration_ms)
VALUES (:request_id, :function, :qualifier, :invocation_type, :accepted_at, :status,
        :finished_at, :attempts, :error_type, :duration_ms)
ON CONFLICT (request_id) DO UPDATE SET
    status = excluded.status, finished_at = excluded.finished_at,
    attempts = excluded.attempts, error_type = excluded.error_type,
    duration_ms = excluded.duration_ms;

-- name: insert_record
INSERT INTO invocation_records (request_id, at, kind, detail)
VALUES (:request_id, :at, :kind, :detail);

-- name: list_invocations
SELECT request_id, function, qualifier, invocation_type, accepted_at, status, finished_at,
       attempts, error_type, duration_ms
FROM invocations
WHERE (:function IS NULL OR function = :function) AND accepted_at < :before
ORDER BY accepted_at DESC
LIMIT :limit;

-- name: get_invocation
SELECT request_id, function, qualifier, invocation_type, accepted_at, status, finished_at,
       attempts, error_type, duration_ms
FROM invocations WHERE request_id = :request_id;

-- name: list_records
SELECT request_id, at, kind, detail FROM invocation_records
WHERE request_id = :request_id ORDER BY seq;
