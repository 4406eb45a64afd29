"""Foundation profiles: which Loggregator and cf CLI generation a cell emulates.

- ``classic`` (the seed's foundation, Loggregator <= 106, cf CLI <= 6.49): ``cf logs`` and
  ``cf logs --recent`` ride the Traffic Controller (WebSocket stream, multipart recent logs).
- ``current`` (Loggregator >= 107, cf CLI >= 6.50, v7, v8): the Traffic Controller no longer serves
  ``/apps/{guid}/recentlogs`` (404; loggregator-release ee2b5225e); ``cf logs`` polls Log Cache
  over HTTPS (cloudfoundry/cli 8b028dcf7); v2 nozzles read the RLP gateway; noaa nozzles and
  plugins still use the Traffic Controller's WebSocket.

Both run in every cell (the default: the report answers for today's foundations and the seed's).
Log Cache and the RLP gateway run in every cell; only the Traffic Controller differs, so a cell
switches its TC between profiles (``/harness/profile``, from inside the TC container) instead of
being brought up twice. Checks that do not name a profile see ``classic``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import ScenarioError

if TYPE_CHECKING:
    from harness.deployment import Deployment

PROFILES = ("classic", "current")
DEFAULT = "classic"


@dataclass(frozen=True)
class ClientKind:
    """A kind of log client a support engineer meets, and the path it takes."""

    check: str  # the check id in the report
    title: str
    profiles: tuple[str, ...]  # foundations where this client is how logs are read


CLIENT_KINDS = (
    ClientKind("logs", "cf CLI <= 6.49 / noaa app stream (Traffic Controller WebSocket)", PROFILES),
    ClientKind("firehose", "noaa firehose nozzle (Traffic Controller WebSocket)", PROFILES),
    ClientKind("recent_logs", "cf logs --recent on cf CLI <= 6.49 (Traffic Controller, classic)", ("classic",)),
    ClientKind("recent_logs_current", "Traffic Controller recent logs on a current foundation (404 expected)",
               ("current",)),
    ClientKind("cf_logs_log_cache", "cf logs on cf CLI >= 6.50 (Log Cache, HTTPS polling)", ("current",)),
    ClientKind("cf_recent_log_cache", "cf logs --recent on cf CLI >= 6.50 (Log Cache)", ("current",)),
    ClientKind("v2_nozzle", "v2 nozzle (RLP gateway server-sent events)", ("current",)),
    ClientKind("third_party_logs", "cloudfoundry-client (PyPI) log stream (Traffic Controller WebSocket)", PROFILES),
    ClientKind("third_party_recent_logs", "cloudfoundry-client recent logs (Traffic Controller)", ("classic",)),
    ClientKind("third_party_rlp", "cloudfoundry-client RLP gateway reader", ("current",)),
)


def use_profile(dep: "Deployment", profile: str) -> None:
    """Make the cell's Traffic Controller emulate ``profile`` (a no-op when it already does)."""
    if profile not in PROFILES:
        raise ScenarioError(f"unknown foundation profile {profile!r}; use one of {', '.join(PROFILES)}", "")
    tc = dep.nodes["tc"]
    if tc.settings.get("profile", DEFAULT) == profile:  # on the node: a later cell may keep this TC
        return
    taken, code, out = tc.ask(f"http://127.0.0.1:8088/harness/profile?set={profile}",
                              lambda answer: _said(answer) == profile)
    if not taken:
        raise ScenarioError(f"the Traffic Controller did not switch to profile {profile!r} (exit {code})", out)
    tc.settings["profile"] = profile


def _said(out: str) -> str | None:
    try:
        return str(json.loads(out).get("profile"))
    except ValueError:
        return None
