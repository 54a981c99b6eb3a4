-- 0019 (PostgreSQL): the deliverability guard's bounce window; as
-- db/migrations/0019. Each bounce applied counts the bounces among the last
-- N messages a provider accepted for real (status 'sent'), newest first: a
-- walk of this partial index in sent_at order, stopped at N.
CREATE INDEX messages_sent_window ON messages (sent_at, to_addr) WHERE status = 'sent';
