"""The UAA stand-in's token endpoint and Cloud Controller's reading of its tokens, without sockets."""

from __future__ import annotations

import time

import jwt
import pytest

from harness.protocol import uaa

KEY = uaa.SigningKey.generate()
UAA = uaa.Uaa(KEY, "http://uaa.sys.example.com/oauth/token",
              users={"dev": uaa.User("dev-password", ("cloud_controller.read", "openid"))},
              clients={"cf": uaa.Client(""), "nozzle": uaa.Client("s3cret", ("doppler.firehose", "logs.admin"))})
NOW = time.time()


def test_password_grant_issues_a_signed_user_token_with_its_key_id_and_audience() -> None:
    status, body = UAA.grant({"grant_type": "password", "username": "dev", "password": "dev-password"}, ("cf", ""),
                             now=NOW)
    assert status == 200 and body["token_type"] == "bearer" and body["expires_in"] == uaa.ACCESS_TTL_S - 1
    assert jwt.get_unverified_header(body["access_token"])["kid"] == KEY.kid
    claims = UAA.decode(body["access_token"], audience_id="cloud_controller", now=NOW)
    assert claims and claims["user_name"] == "dev" and claims["scope"] == ["cloud_controller.read", "openid"]
    assert claims["aud"] == ["cloud_controller"]


@pytest.mark.parametrize("form, basic, status, error", [
    ({"grant_type": "password", "username": "dev", "password": "wrong"}, ("cf", ""), 401, "unauthorized"),
    ({"grant_type": "password", "username": "nobody", "password": "x"}, ("cf", ""), 401, "unauthorized"),
    ({"grant_type": "password", "username": "dev", "password": "dev-password"}, ("cf", "x"), 401, "unauthorized"),
    ({"grant_type": "implicit"}, ("cf", ""), 400, "unsupported_grant_type"),
])
def test_token_endpoint_refusals_are_uaas(form: dict[str, str], basic: tuple[str, str], status: int,
                                          error: str) -> None:
    assert UAA.grant(form, basic, now=NOW)[0] == status
    assert UAA.grant(form, basic, now=NOW)[1]["error"] == error


def test_client_credentials_carry_the_clients_authorities_and_refresh_works() -> None:
    status, body = UAA.grant({"grant_type": "client_credentials"}, ("nozzle", "s3cret"), now=NOW)
    claims = UAA.decode(body["access_token"], audience_id="doppler", now=NOW)
    assert status == 200 and claims and claims["client_id"] == "nozzle" and uaa.identity_name(claims) == "nozzle"
    assert "cloud_controller" not in claims["aud"]  # CC would refuse it
    status, again = UAA.grant({"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
                              ("nozzle", "s3cret"), now=NOW)
    assert status == 200 and UAA.decode(again["access_token"], audience_id=None, now=NOW)


def test_cloud_controller_takes_bearer_in_any_case_and_refuses_bad_tokens() -> None:
    _, body = UAA.grant({"grant_type": "password", "username": "dev", "password": "dev-password"}, ("cf", ""))
    token = body["access_token"]
    for scheme in ("bearer", "Bearer", "BEARER"):
        assert uaa.cc_identity(KEY.public_pem, f"{scheme} {token}") is not None
    assert uaa.cc_identity(KEY.public_pem, token) is None  # no scheme
    assert uaa.cc_identity(KEY.public_pem, f"bearer {token[:-4]}AAAA") is None  # signature broken
    other = uaa.SigningKey.generate()
    assert uaa.cc_identity(other.public_pem, f"bearer {token}") is None  # signed by someone else
    assert UAA.decode(token, audience_id=None, now=NOW + 10 * uaa.ACCESS_TTL_S) is None  # expired


def test_token_keys_publish_the_public_key_as_log_cache_reads_it() -> None:
    (key,) = KEY.token_keys()["keys"]
    assert key["kid"] == KEY.kid and key["alg"] == "RS256" and key["value"].startswith("-----BEGIN PUBLIC KEY")
    assert key["kty"] == "RSA" and key["e"] == "AQAB"
