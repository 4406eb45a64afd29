"""Who may read what: the Traffic Controller's auth decisions and the CC/UAA stand-in's token table.

Status codes follow loggregator-release ``proxy/log_access_middleware.go``,
``auth/log_access_authorizer.go`` and ``auth/admin_access_authorizer.go``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
FIREHOSE_SCOPE = "doppler.firehose"
BASIC_CHALLENGE = (("WWW-Authenticate", "Basic"),)


@dataclass(frozen=True)
class Denial:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


def app_stream_precheck(app_id: str, token: str | None) -> Denial | None:
    """Checks TC makes before asking Cloud Controller."""
    if not GUID.match(app_id):
        return Denial(401)
    if not token:
        return Denial(401, headers=BASIC_CHALLENGE)
    return None


def from_log_access_status(cc_status: int) -> Denial | None:
    """Map CC's ``/internal/v4/log_access/<guid>`` answer to TC's."""
    if cc_status == 200:
        return None
    if cc_status == 401:
        return Denial(401, headers=BASIC_CHALLENGE)
    if cc_status in (403, 404):
        return Denial(404)
    return Denial(500)


def firehose_denial(token: str | None, scopes: list[str] | None) -> Denial | None:
    """``scopes`` is what UAA's check_token returned, None when it refused the token."""
    if not token:
        return Denial(401, b"You are not authorized. authorization not provided", BASIC_CHALLENGE)
    if scopes is None or FIREHOSE_SCOPE not in scopes:
        return Denial(401, b"You are not authorized. invalid authorization", BASIC_CHALLENGE)
    return None


def strip_bearer(token: str) -> str:
    """TC strips the exact lower-case ``bearer `` prefix; ``Bearer `` stays (and then fails check_token)."""
    return token[len("bearer "):] if token.startswith("bearer ") else token


@dataclass(frozen=True)
class Grant:
    """One token in the stand-in's table: the scopes UAA reports and the apps CC lets it read."""

    scopes: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()  # "*" reads every existing app (global auditor/admin)


@dataclass
class TokenTable:
    grants: dict[str, Grant] = field(default_factory=dict)
    apps: frozenset[str] = frozenset()

    def log_access(self, authorization: str | None, app_id: str) -> int:
        """CC's answer: 401 unknown token, 404 cannot see or no such app, 200 readable."""
        grant = self.grants.get(strip_bearer(authorization or ""))
        if grant is None:
            return 401
        if app_id in self.apps and ("*" in grant.apps or app_id in grant.apps):
            return 200
        return 404

    def check_token(self, token: str) -> list[str] | None:
        grant = self.grants.get(token)
        return list(grant.scopes) if grant else None

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "TokenTable":
        grants = {
            token: Grant(tuple(g.get("scopes", ())), tuple(g.get("apps", ())))  # type: ignore[union-attr]
            for token, g in data.get("tokens", {}).items()  # type: ignore[union-attr]
        }
        return cls(grants, frozenset(data.get("apps", ())))  # type: ignore[arg-type]
