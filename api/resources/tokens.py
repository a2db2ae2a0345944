import falcon

from api.auth import new_token, password_matches, unauthorized
from api.openapi import operation
from api.resources.common import created
from api.schemas import TOKEN, TOKEN_CREATE


class Collection:
    auth_required = False

    def __init__(self, db, queries):
        self._db = db
        self._queries = queries

    @operation("Log in: get a bearer token", status=201, response=TOKEN, body=TOKEN_CREATE)
    def on_post(self, req, resp):
        body = req.context.body
        with self._db.read() as conn:
            login = self._queries.get_login(conn, username=body["username"])
        matches = password_matches(login and login["password_hash"], body["password"])
        if not (matches and login["active"]):
            raise unauthorized("Wrong username or password.")
        token, token_hash = new_token()
        with self._db.write() as conn:
            self._queries.create_token(conn, token_hash=token_hash, user_id=login["id"])
        del login["password_hash"]
        created(resp, "/auth/tokens/current", {"token": token, "user": login})


class Current:
    def __init__(self, db, queries):
        self._db = db
        self._queries = queries

    @operation("Log out: revoke the token used", status=204)
    def on_delete(self, req, resp):
        with self._db.write() as conn:
            self._queries.delete_token(conn, token_hash=req.context.token_hash)
        resp.status = falcon.HTTP_204
