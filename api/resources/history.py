from api.resources.common import found, id_page


class History:
    def __init__(self, db, queries):
        self._db = db
        self._queries = queries

    def on_get(self, req, resp, incident_id):
        with self._db.read() as conn:
            found(self._queries.incident_exists(conn, id=incident_id) or None, "incident")
            resp.media = id_page(req, resp, lambda args, after_id, limit: self._queries.list_history(
                conn, incident_id=incident_id, after_id=after_id, limit=limit))
