DROP TABLE notifications;
DROP TABLE follows;
DROP TABLE incident_history;
