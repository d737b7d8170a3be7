"""Ledger URLs as they may be shown: a PostgreSQL URL can carry a password, which never leaves this process.

A password sits in the user part (`postgresql://user:password@host/db`) or in the query
(`?password=...`, `sslpassword=...`; libpq's connection URIs, PostgreSQL docs "Connection URIs").
"""

from __future__ import annotations

import re

__all__ = ["host_part", "redact_url"]

_QUERY_SECRET = re.compile(r"([?&](?:password|sslpassword)=)[^&#]*", re.IGNORECASE)


def _redact_query(text: str) -> str:
    return _QUERY_SECRET.sub(r"\1***", text)


def redact_url(url: str) -> str:
    """`url` with every password in it replaced by ***; a URL without `://` (a file path) as it is."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    credentials, at, host = rest.rpartition("@")
    if at:
        user = credentials.split(":", 1)[0]
        rest = f"{user}{':***' if ':' in credentials else ''}@{host}"
    return f"{scheme}://{_redact_query(rest)}"


def host_part(url: str) -> str:
    """What follows the user part (host, port, database, query), passwords in the query replaced by ***."""
    return _redact_query(url.partition("://")[2].rpartition("@")[2])
