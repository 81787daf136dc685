"""A webhook URL, checked and shown without its secret.

A webhook's path and query string are its secret (a Slack token, a signature): whatever a person
can read shows ``scheme://host[:port]/***``. The check runs when the settings are read, so a typo
fails at start-up in one line instead of at the first alert, after a run has stored its forecast.
Nothing here raises on a malformed URL: masking one is how its error message is written.

This is the one mask of a notification URL (settings, `flows.notify`). A database URL is masked
by ``db.engine.mask_url`` instead, on purpose: its secret is the password only, and its path (the
database name, the SQLite file) is what a person needs to read to fix a connection error, while
a webhook's path is its secret. One function cannot show and hide the same part; and ``db/``
must not import ``flows/``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST_PORT = re.compile(r"(?P<host>\[[^\]]*\]|[^:]*)(?::(?P<port>.*))?")


def mask_url(url: str) -> str:
    """``scheme://host[:port]/***``, or ``***`` when the text has no scheme and host."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced '[' in the host
        return "***"
    host, port = _host_and_port(parts.netloc)
    if not parts.scheme or not host:
        return "***"
    shown_port = f":{port}" if port else ""
    hidden = "/***" if parts.path.strip("/") or parts.query or parts.fragment else ""
    return f"{parts.scheme}://{host.lower()}{shown_port}{hidden}"


def mask_urls(text: str) -> str:
    """``text`` with every URL in it masked (an error message from a notification library)."""
    return _URL.sub(lambda match: mask_url(match.group(0)), text)


def webhook_url_problem(url: str) -> str | None:
    """What is wrong with a webhook URL, in words that never quote its secret; None if nothing.

    ``url`` is taken as given: the caller strips the blanks around it first.
    """
    if _CONTROL.search(url):
        return "it contains a line break, a tab or another control character"
    if " " in url:
        return "it contains a space"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "its host is malformed"
    if parts.scheme.lower() not in ("http", "https") or not url.lower().startswith(
        f"{parts.scheme.lower()}://"
    ):
        return "it must start with https:// or http://"
    host, port = _host_and_port(parts.netloc)
    if not host:
        return "it names no host"
    if port:  # an empty port (``host:``) is the scheme's default, as RFC 3986 has it
        if not port.isdigit():
            return f"port {port!r} is not a number"
        if not 1 <= int(port) <= 65535:
            return f"port {int(port)} is out of range (1-65535)"
    return None


def _host_and_port(netloc: str) -> tuple[str, str | None]:
    """The host and the port text of ``[user[:password]@]host[:port]``, without parsing the port
    (``urlsplit(...).port`` raises on ``:99999``)."""
    match = _HOST_PORT.fullmatch(netloc.rpartition("@")[2])
    if match is None:  # cannot happen with this pattern; kept for the type checker
        return "", None
    return match.group("host"), match.group("port")
