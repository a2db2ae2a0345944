DROP VIEW incident_details;
DROP TABLE comments;
DROP TABLE incident_categories;
DROP TABLE incidents;
DROP FUNCTION incidents_require_active_assignee();
DROP TYPE incident_severity;
DROP TYPE incident_status;
