DROP TABLE webhook_delivery_totals;
