-- A synchronous call's short timeline is kept on its summary row (one write per call).
ALTER TABLE invocations ADD COLUMN timeline TEXT;
