"""gunicorn's worker class: uvicorn's, with its proxy-headers handling off. By default uvicorn
replaces the client address by X-Forwarded-For whenever the peer is in gunicorn's
`forwarded_allow_ips` (127.0.0.1 unless set), so any local client could pose as any address.
The app decides instead, from FORWARDED_ALLOW_IPS (api.auth.client_address)."""

from uvicorn_worker import UvicornWorker


class Worker(UvicornWorker):
    CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "proxy_headers": False}
