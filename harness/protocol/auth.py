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


# ---- Log Cache and the RLP gateway (appended for today's log paths) ------------------------------

#: Scopes that make a token a logs admin in Log Cache's and the RLP gateway's UAA clients.
LOGS_ADMIN_SCOPES = ("doppler.firehose", "logs.admin")
_ANY_CASE_BEARER = re.compile(r"(?i)^bearer\s+")


def trim_bearer_any_case(token: str) -> str:
    """Log Cache and the RLP gateway strip ``bearer`` in any case (log-cache-release
    ``src/internal/auth/uaa_client.go`` trimBearer, ``(?i)^bearer\\s+``), unlike TC's exact prefix."""
    return _ANY_CASE_BEARER.sub("", token)


def is_logs_admin(scopes: list[str] | None) -> bool:
    return bool(scopes) and any(s in LOGS_ADMIN_SCOPES for s in scopes or ())


def logs_reader_allows(token: str | None, scopes: list[str] | None, readable: list[str] | None,
                       source_ids: list[str], *, guid_only: bool) -> bool:
    """Log Cache's ``/api/v1/read/<id>`` and the RLP gateway's ``/v2/read`` middleware: a missing or
    unreadable token, or a source the token cannot read, is refused (both answer 404, never 401).
    ``scopes``: what UAA said of the token (None: invalid); ``readable``: the app GUIDs Cloud
    Controller lists for it. The RLP gateway wants at least one source id from a non-admin, each a
    GUID (``guid_only``) (loggregator-release ``src/rlp-gateway/internal/web/cf_auth_middleware.go``;
    log-cache-release ``src/internal/auth/cf_auth_middleware.go``)."""
    if not token or scopes is None:
        return False
    if is_logs_admin(scopes):
        return True
    if not source_ids:
        return False
    return all((GUID.match(s) or not guid_only) and s in (readable or []) for s in source_ids)


def readable_apps(table: TokenTable, authorization: str | None) -> list[str] | None:
    """What CC's ``GET /v3/apps`` lists for this token: None for a token CC does not know (401)."""
    grant = table.grants.get(trim_bearer_any_case(authorization or ""))
    if grant is None:
        return None
    return sorted(a for a in table.apps if "*" in grant.apps or a in grant.apps)
