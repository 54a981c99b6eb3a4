-- 0019: the deliverability guard's bounce window. Each bounce applied
-- counts the bounces among the last N messages a provider accepted for real
-- (status 'sent': dry-run messages never left, so they never bounce), newest
-- first: a walk of this covering partial index in sent_at order, stopped at
-- N, with one probe of the suppressions' UNIQUE (kind, value) index per
-- message. messages_left (0005) cannot serve it: it holds the dry-run
-- history too, which a long DRY_RUN would make the walk step over.
CREATE INDEX messages_sent_window ON messages (sent_at, to_addr) WHERE status = 'sent';
