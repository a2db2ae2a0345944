class Health:
    auth_required = False

    def __init__(self, db, queries):
        self._db = db
        self._queries = queries

    def on_get(self, req, resp):
        with self._db.read() as conn:
            self._queries.ping(conn)
        resp.media = {"status": "ok", "database": "ok"}
