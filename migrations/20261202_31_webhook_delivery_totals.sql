-- Running totals of webhook delivery attempts by outcome, for GET /metrics's
-- incidents_webhook_deliveries_total. The statement that logs attempts in webhook_deliveries
-- adds them here too (sql/webhooks.sql, add_to_delivery_totals), so every attempt counts once
-- whichever delivery worker made it, and the totals stay when the retention job prunes the
-- log. One row per webhook: a delivery worker sends to a webhook only while it holds the
-- webhook's lock, so the workers never wait for one another's row. NOTE: no foreign key, on
-- purpose: a deleted webhook's attempts still count (a counter must never fall).
-- depends: 20261202_30_triage_list
CREATE TABLE webhook_delivery_totals (
    webhook_id bigint PRIMARY KEY,
    delivered  bigint NOT NULL DEFAULT 0,
    failed     bigint NOT NULL DEFAULT 0
);
