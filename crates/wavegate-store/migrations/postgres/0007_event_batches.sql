-- Idempotency keys of event batches (kept two days): a retried batch counts once.
CREATE TABLE event_batches (batch_key TEXT PRIMARY KEY, received_at BIGINT NOT NULL);
CREATE INDEX event_batches_received ON event_batches (received_at);
