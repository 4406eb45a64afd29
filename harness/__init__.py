"""Network-emulation harness: which load-balancer topologies carry Cloud Foundry's WebSocket logs.

Submodules are imported explicitly; ``harness.protocol`` and ``harness.cf`` run inside containers
with only websockets, protobuf and PyYAML installed, so this package imports nothing at top level.
"""
