"""The committed *_pb2.py modules are what ci/gen-proto makes from the .proto files beside them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pb2_modules_are_up_to_date(tmp_path: Path) -> None:
    protos = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "harness/protocol/dropsonde").glob("*.proto"))
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", ".", f"--python_out={tmp_path}", *protos],
                   cwd=ROOT, check=True)
    for proto in protos:
        module = proto.replace(".proto", "_pb2.py")
        assert (tmp_path / module).read_text() == (ROOT / module).read_text(), f"run ci/gen-proto ({module} is stale)"
