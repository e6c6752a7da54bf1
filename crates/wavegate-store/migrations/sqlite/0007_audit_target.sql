-- The dashboard and reports read one rollout's (or flag's) audit trail.
CREATE INDEX audit_log_target ON audit_log (target, seq);
