from __future__ import annotations

import pytest

from harness.protocol import auth

APP = "6a1b9a0e-2b3c-4d5e-8f90-1a2b3c4d5e6f"
TABLE = auth.TokenTable.from_dict({"tokens": {"dev": {"apps": [APP]}, "admin": {"apps": ["*"],
                                                                                  "scopes": ["doppler.firehose"]}},
                                   "apps": [APP]})


def test_bad_guid_is_401_without_challenge() -> None:
    assert auth.app_stream_precheck("not-a-guid", "bearer x") == auth.Denial(401)


def test_missing_token_is_401_with_basic_challenge() -> None:
    assert auth.app_stream_precheck(APP, None) == auth.Denial(401, headers=auth.BASIC_CHALLENGE)


@pytest.mark.parametrize("cc, tc", [(200, None), (401, 401), (403, 404), (404, 404), (500, 500), (502, 500)])
def test_cc_answers_map_to_tc_answers(cc: int, tc: int | None) -> None:
    denial = auth.from_log_access_status(cc)
    assert (denial.status if denial else None) == tc


def test_token_table_decides_log_access() -> None:
    assert TABLE.log_access("bearer dev", APP) == 200
    assert TABLE.log_access("bearer nobody", APP) == 401
    assert TABLE.log_access("bearer dev", "0f0e0d0c-0b0a-4909-8807-060504030201") == 404
    assert TABLE.log_access("bearer admin", APP) == 200


def test_firehose_needs_the_scope() -> None:
    assert auth.firehose_denial(None, None).body == b"You are not authorized. authorization not provided"  # type: ignore[union-attr]
    assert auth.firehose_denial("bearer dev", []).body == b"You are not authorized. invalid authorization"  # type: ignore[union-attr]
    assert auth.firehose_denial("bearer admin", TABLE.check_token("admin")) is None


def test_only_lower_case_bearer_is_stripped() -> None:
    assert auth.strip_bearer("bearer abc") == "abc" and auth.strip_bearer("Bearer abc") == "Bearer abc"


# ---- Log Cache and the RLP gateway ----------------------------------------------------------------


def test_log_cache_and_rlp_gateway_strip_bearer_in_any_case() -> None:
    assert [auth.trim_bearer_any_case(t) for t in ("bearer a", "Bearer a", "BEARER  a", "a")] == ["a"] * 4


def test_log_readers_refuse_without_a_readable_token_and_admins_read_everything() -> None:
    other = "0f0e0d0c-0b0a-4909-8807-060504030201"
    allows = auth.logs_reader_allows
    assert not allows(None, ["cloud_controller.read"], [APP], [APP], guid_only=False)  # no token
    assert not allows("bearer x", None, [APP], [APP], guid_only=False)  # UAA refused it
    assert allows("bearer dev", ["cloud_controller.read"], [APP], [APP], guid_only=False)
    assert not allows("bearer dev", ["cloud_controller.read"], [APP], [other], guid_only=False)
    assert allows("bearer a", ["logs.admin"], [], [other], guid_only=True)
    assert allows("bearer a", ["doppler.firehose"], None, [], guid_only=True)  # admin firehose read
    assert not allows("bearer dev", ["cloud_controller.read"], [APP], [], guid_only=True)  # RLP: source needed
    assert not allows("bearer dev", ["cloud_controller.read"], ["not-a-guid"], ["not-a-guid"], guid_only=True)


def test_cloud_controller_lists_the_apps_a_token_reads() -> None:
    assert auth.readable_apps(TABLE, "Bearer dev") == [APP]
    assert auth.readable_apps(TABLE, "bearer nobody") is None
    assert auth.readable_apps(TABLE, "bearer admin") == sorted(TABLE.apps)
