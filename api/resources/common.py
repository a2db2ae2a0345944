"""Small helpers shared by the resources."""
import falcon

from api.errors import Problem


def found(row, what="resource"):
    """`row`, or a 404 problem when the query found nothing."""
    if row is None:
        raise Problem(falcon.HTTP_404, f"No such {what}.")
    return row


def created(resp, location, media):
    resp.status = falcon.HTTP_201
    resp.location = location
    resp.media = media


def check_if_match(req, version):
    """A 412 when `If-Match` is sent and names no current version (strong comparison)."""
    tags = req.if_match
    if tags is None or tags == ["*"]:
        return
    if not any(not tag.is_weak and tag == str(version) for tag in tags if tag != "*"):
        raise Problem(falcon.HTTP_412, "The incident has changed since you read it (If-Match); "
                                       "GET it again and retry.")


def etag_matches(req, version):
    """Whether `If-None-Match` names the current version (weak comparison)."""
    tags = req.if_none_match or []
    return any(tag == "*" or tag == str(version) for tag in tags)
