DROP FUNCTION incident_now(bigint);
DROP FUNCTION transaction_feed_base();
