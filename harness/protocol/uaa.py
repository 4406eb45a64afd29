"""UAA's token endpoint and the token checks of the components that read its tokens, without I/O.

- ``POST /oauth/token`` (UAA ``TokenEndpoint``): the client authenticates with HTTP Basic (the cf
  CLI is client ``cf`` with an empty secret); ``grant_type=password`` (``username``, ``password``)
  issues a user token, ``client_credentials`` a token for the client itself (its authorities as
  scopes), ``refresh_token`` a fresh access token. Answers: 200 ``{access_token, token_type:
  "bearer", refresh_token, expires_in, scope, jti}``; 401 ``{"error": "unauthorized"}`` for bad
  client or user credentials; 400 ``{"error": "unsupported_grant_type"}``.
- Tokens are JWTs signed RS256 with a key id (``kid``); ``GET /token_keys`` publishes the public
  key as ``{"keys": [{"kid", "alg": "RS256", "value": <PEM>, "kty", "use", "n", "e"}]}`` (what
  log-cache-release ``src/internal/auth/uaa_client.go`` reads).
- Cloud Controller takes the ``bearer`` scheme in any case (cloud_controller_ng
  ``lib/cloud_controller/uaa/uaa_token_decoder.rb``, ``token_format_valid?`` upcases it), verifies
  the signature and expiry and wants ``cloud_controller`` in the audience.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.protocol.auth import trim_bearer_any_case

KEY_ID = "key-1"  # UAA's default signing key id
ACCESS_TTL_S = 1200
ISSUER_PATH = "/oauth/token"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: str
    public_pem: str

    @classmethod
    def generate(cls, kid: str = KEY_ID) -> "SigningKey":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return cls(kid, private, public)

    def token_keys(self) -> dict[str, Any]:
        numbers = serialization.load_pem_public_key(self.public_pem.encode()).public_numbers()  # type: ignore[union-attr]

        def b64(n: int) -> str:
            return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()

        return {"keys": [{"kid": self.kid, "alg": "RS256", "value": self.public_pem, "kty": "RSA", "use": "sig",
                          "n": b64(numbers.n), "e": b64(numbers.e)}]}


@dataclass(frozen=True)
class User:
    password: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Client:
    secret: str
    authorities: tuple[str, ...] = ()  # scopes of its client_credentials tokens


def audience(scopes: tuple[str, ...] | list[str]) -> list[str]:
    """UAA derives ``aud`` from the scopes' resource prefixes (``cloud_controller.read`` ->
    ``cloud_controller``)."""
    return sorted({s.split(".", 1)[0] for s in scopes if "." in s})


@dataclass
class Uaa:
    key: SigningKey
    issuer: str
    users: dict[str, User] = field(default_factory=dict)
    clients: dict[str, Client] = field(default_factory=dict)

    def _token(self, claims: dict[str, Any], now: float) -> str:
        body = {"jti": secrets.token_hex(16), "iat": int(now), "exp": int(now) + ACCESS_TTL_S, "iss": self.issuer,
                **claims}
        return jwt.encode(body, self.key.private_pem, algorithm="RS256", headers={"kid": self.key.kid})

    def grant(self, form: dict[str, str], basic: tuple[str, str] | None, now: float | None = None) -> tuple[int, dict[str, Any]]:
        """``POST /oauth/token``: (status, JSON body)."""
        now = time.time() if now is None else now
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        client = self.clients.get(client_id)
        if client is None or client.secret != secret:
            return 401, {"error": "unauthorized", "error_description": "Bad credentials"}
        grant_type = form.get("grant_type", "")
        if grant_type == "password":
            user = self.users.get(form.get("username", ""))
            if user is None or user.password != form.get("password"):
                return 401, {"error": "unauthorized", "error_description": "Bad credentials"}
            subject = {"user_name": form["username"], "user_id": form["username"], "origin": "uaa",
                       "client_id": client_id, "cid": client_id, "grant_type": grant_type}
            scopes = user.scopes
        elif grant_type == "client_credentials":
            subject = {"client_id": client_id, "cid": client_id, "sub": client_id, "grant_type": grant_type}
            scopes = client.authorities
        elif grant_type == "refresh_token":
            claims = self.decode(form.get("refresh_token", ""), audience_id=None, now=now)
            if claims is None or not claims.get("refresh"):
                return 401, {"error": "invalid_token", "error_description": "Invalid refresh token"}
            subject = {k: claims[k] for k in ("user_name", "user_id", "origin", "client_id", "cid") if k in claims}
            scopes = tuple(claims.get("scope", ()))
        else:
            return 400, {"error": "unsupported_grant_type",
                         "error_description": f"Unsupported grant type: {grant_type}"}
        access = self._token({**subject, "scope": list(scopes), "aud": audience(scopes)}, now)
        refresh = self._token({**subject, "scope": list(scopes), "refresh": True, "aud": [client_id]}, now)
        return 200, {"access_token": access, "token_type": "bearer", "refresh_token": refresh,
                     "expires_in": ACCESS_TTL_S - 1, "scope": " ".join(scopes), "jti": secrets.token_hex(16)}

    def decode(self, token: str, *, audience_id: str | None, now: float | None = None) -> dict[str, Any] | None:
        return verify(self.key.public_pem, token, audience_id=audience_id, now=now)


def verify(public_pem: str, token: str, *, audience_id: str | None, now: float | None = None) -> dict[str, Any] | None:
    """The claims of a valid token (signature, expiry and, when asked, audience), else None."""
    try:
        claims = jwt.decode(token, public_pem, algorithms=["RS256"],
                            options={"verify_aud": False, "verify_exp": False})
    except jwt.PyJWTError:
        return None
    if int(claims.get("exp", 0)) < (time.time() if now is None else now):
        return None
    if audience_id is not None and audience_id not in claims.get("aud", []):
        return None
    return dict(claims)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def cc_identity(public_pem: str, authorization: str | None) -> dict[str, Any] | None:
    """Cloud Controller's reading of an ``Authorization`` header: ``bearer`` in any case, a valid
    token for the ``cloud_controller`` audience; None otherwise."""
    if not authorization or not authorization.upper().startswith("BEARER"):
        return None
    return verify(public_pem, trim_bearer_any_case(authorization), audience_id="cloud_controller")


def identity_name(claims: dict[str, Any]) -> str:
    """Whose grant a token carries: the user for user tokens, the client for client tokens."""
    return str(claims.get("user_name") or claims.get("client_id") or "")
