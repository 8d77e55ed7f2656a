-- Invocation lists filtered by outcome or type walk these, newest first (the console).
-- Partial: the common case (a successful synchronous call) is in neither, so recording it
-- costs no extra index write; lists of successes or of sync calls walk invocations_by_time.
CREATE INDEX IF NOT EXISTS invocations_by_status ON invocations (status, accepted_at)
    WHERE status <> 'success';
CREATE INDEX IF NOT EXISTS invocations_by_type ON invocations (invocation_type, accepted_at)
    WHERE invocation_type <> 'RequestResponse';
