"""Storage URLs made safe to show: passwords masked in URLs and scrubbed from messages.

Every place that prints, logs or writes a storage URL goes through ``mask_url``; every
driver or library message that may quote one goes through ``mask_secrets``.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

MASK = "***"
# Query parameters that carry a password to the driver (libpq, MySQL drivers).
_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pass", "sslpassword"})
# Credentials of a URL that SQLAlchemy cannot parse: "scheme://user:SECRET@", up to the last "@".
_RAW_CREDENTIALS = re.compile(r"^(?P<head>(?:[^:/@]+://)?[^:/@]*:)(?P<secret>.*)@")


def _parse(url: str) -> URL | None:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return None
    if parsed.host and "@" in parsed.host:
        # An unencoded "@" in the password: SQLAlchemy splits at the first "@", so the
        # password's tail lands in the host. Everything before the last "@" is credentials.
        tail, host = parsed.host.rsplit("@", 1)
        parsed = parsed.set(password=f"{parsed.password or ''}@{tail}", host=host)
    return parsed


def _secrets(parsed: URL) -> list[str]:
    found = [parsed.password] if parsed.password else []
    for key, value in parsed.query.items():
        if key.lower() in _SECRET_QUERY_KEYS:
            found.extend([value] if isinstance(value, str) else value)
    return [s for s in found if s]


def mask_url(url: str) -> str:
    """``url`` with its password (in the user part or the query) replaced by ``***``.

    Safe to print, log or write. URLs without a password come back unchanged.
    """
    parsed = _parse(url)
    if parsed is None:
        return _RAW_CREDENTIALS.sub(lambda m: f"{m['head']}{MASK}@", url, count=1)
    if not _secrets(parsed):
        return url
    query = {k: (MASK if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in parsed.query.items()}
    masked = parsed.set(password=MASK if parsed.password else None, query=query)
    # Render by hand: SQLAlchemy would percent-encode the mask itself.
    return masked.render_as_string(hide_password=False).replace(quote(MASK, safe=""), MASK)


def mask_secrets(text: str, url: str) -> str:
    """``text`` (an error message, a log line) with ``url`` masked and its password removed.

    Drivers sometimes quote the URL or the password in their messages; this removes the
    whole URL, then every remaining form of the password (as typed, percent-encoded).
    """
    if not text:
        return text
    text = text.replace(url, mask_url(url))
    parsed = _parse(url)
    secrets = _secrets(parsed) if parsed is not None else []
    if parsed is None:
        match = _RAW_CREDENTIALS.match(url)
        secrets = [match["secret"]] if match and match["secret"] else []
    forms = {form for s in secrets for form in (s, quote(s, safe=""), quote_plus(s))}
    for form in sorted(forms, key=len, reverse=True):  # longest first: no partial leftovers
        text = text.replace(form, MASK)
    return text
