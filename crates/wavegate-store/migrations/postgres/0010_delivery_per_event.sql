-- A delivery is one target hearing one event at one audit sequence number: an audit checkpoint
-- (event `checkpoint`) of the entry a rollout event reports goes to the same target too.
ALTER TABLE notify_deliveries DROP CONSTRAINT notify_deliveries_audit_seq_target_key;
ALTER TABLE notify_deliveries ADD CONSTRAINT notify_deliveries_audit_seq_target_event_key
    UNIQUE (audit_seq, target, event);
