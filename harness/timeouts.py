"""One knob scales every bound in the harness: ``HARNESS_TIMEOUT_FACTOR`` (default 1).

CI on a slow runner raises the factor instead of anyone editing a test.
"""

from __future__ import annotations

import os


def factor() -> float:
    return float(os.environ.get("HARNESS_TIMEOUT_FACTOR", "1"))


def scaled(seconds: float) -> float:
    return seconds * factor()
