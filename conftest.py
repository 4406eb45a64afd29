"""The harness's pytest plugin (options --lb, --topology, --driver-dir, --results-dir; fixtures)."""

pytest_plugins = ["harness.plugin"]
