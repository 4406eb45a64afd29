"""Top-level conftest (the layout keeps one). The harness's pytest plugin (options --lb, --topology,
--driver-dir, --customer-config, --results-dir; fixtures; the report) is the ``pytest11`` entry point
``harness.plugin`` of the installed package, so its options work with or without a test path.

Naming it here as well keeps the suite working where entry points are not loaded
(``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``); pytest skips a plugin whose name is already registered, and
the entry point has the module's name, so it is never registered twice.
"""

pytest_plugins = ["harness.plugin"]
