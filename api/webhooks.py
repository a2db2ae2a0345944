"""Sending one webhook message: where it may go (URL safety), how it is signed (Standard
Webhooks v1), and the attempt itself. Used by the delivery worker and by POST .../ping."""

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import ipaddress
import secrets
import socket
import time
import urllib.parse

import aiohttp
import aiohttp.abc

SECRET_PREFIX = "whsec_"
TIMEOUT_SECONDS = 15.0
RESOLVE_TIMEOUT_SECONDS = 5.0


def new_secret():
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret, message_id, timestamp, body):
    """`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}`, keyed by the secret's bytes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = b"%s.%d.%s" % (message_id.encode(), timestamp, body)
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(signing_secrets, message_id, body):
    timestamp = int(time.time())
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(s, message_id, timestamp, body) for s in signing_secrets if s
        ),
    }


class UnsafeURL(ValueError):
    pass


def address_allowed(address, allowed_networks):
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global or any(ip in network for network in allowed_networks)


async def check_url(url, allowed_networks):
    """Raises UnsafeURL unless `url` is http(s) and its host resolves only to global addresses
    or to addresses in `allowed_networks`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("must be an http:// or https:// URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURL("has an invalid port") from None
    for address in await resolve(parts.hostname, port):
        if not address_allowed(address, allowed_networks):
            raise UnsafeURL(f"reaches {address}, which is not a public address")


async def resolve(host, port):
    """The addresses `host` (as urlsplit gives it) resolves to (an IP literal is itself), or
    UnsafeURL."""
    literal = _literal(host)
    if literal is not None:
        return [literal.compressed]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS
        )
    except (OSError, TimeoutError, UnicodeError):
        raise UnsafeURL(f"has a host, {host}, that does not resolve") from None
    return sorted({info[4][0] for info in infos})


class RefusedAddress(OSError):
    # NOTE: aiohttp reports a resolver's OSError by its strerror alone.
    def __init__(self, message):
        super().__init__(None, message)

    def __str__(self):
        return self.strerror


class SafeResolver(aiohttp.abc.AbstractResolver):
    """Resolves as usual, then keeps only the allowed addresses: the check made when the URL was
    saved is made again when connecting (the name may resolve elsewhere by now)."""

    def __init__(self, allowed_networks):
        self._allowed = allowed_networks
        self._resolver = aiohttp.ThreadedResolver()

    async def resolve(self, host, port=0, family=socket.AF_INET):
        found = await self._resolver.resolve(host, port, family)
        allowed = [info for info in found if address_allowed(info["host"], self._allowed)]
        if not allowed:
            raise RefusedAddress(f"{host} resolves to no public address")
        return allowed

    async def close(self):
        await self._resolver.close()


@dataclasses.dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def delivered(self):
        return self.error is None


def session(allowed_networks):
    """An HTTP client that connects only to allowed addresses and never follows a redirect."""
    connector = aiohttp.TCPConnector(resolver=SafeResolver(allowed_networks), limit=0)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
        skip_auto_headers=("User-Agent",),
        headers={"User-Agent": "incidents-api-webhooks"},
    )


async def send(client, url, signing_secrets, message_id, body, allowed_networks):
    """POSTs `body` (bytes) signed; an Attempt: delivered on a 2xx within the timeout."""
    started = time.perf_counter()
    status, error = None, None
    try:
        host = urllib.parse.urlsplit(url).hostname or ""
        # NOTE: aiohttp does not ask the resolver about an IP literal.
        literal = _literal(host)
        if literal is not None and not address_allowed(literal, allowed_networks):
            raise RefusedAddress(f"{host} is not a public address")
        async with client.post(
            url, data=body, headers=headers(signing_secrets, message_id, body), allow_redirects=False
        ) as response:
            status = response.status
            if not 200 <= status < 300:
                error = f"the receiver answered {status}" + (
                    " (redirects are not followed)" if status < 400 else ""
                )
    except TimeoutError:
        error = f"no answer within {TIMEOUT_SECONDS:g} s"
    except (aiohttp.ClientError, OSError, ValueError) as ex:
        error = f"could not deliver: {ex}" if str(ex) else f"could not deliver: {type(ex).__name__}"
    return Attempt(status, error, round((time.perf_counter() - started) * 1000, 1))


def _literal(host):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
