-- A flag version covers every environment, so at most one rollout per flag may be live
-- (a rollback restores the whole pre-rollout version).
DROP INDEX rollouts_one_live;
CREATE UNIQUE INDEX rollouts_one_live_per_flag ON rollouts (flag) WHERE state IN ('running', 'paused');
