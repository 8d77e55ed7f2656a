-- Tenant isolation: the tenant an asynchronous event was sent for (X-Amz-Tenant-Id).
ALTER TABLE async_events ADD COLUMN tenant_id TEXT;
