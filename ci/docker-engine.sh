#!/usr/bin/env bash
# Make sure a Docker engine answers. On a fresh machine: install Debian's docker.io and start dockerd
# in the background with an address pool sized for many per-scenario networks.
set -euo pipefail
log() { printf '[docker-engine] %s\n' "$*"; }

start_dockerd() {
  log "starting dockerd in the background (log: /var/log/harness-dockerd.log)"
  nohup dockerd >/var/log/harness-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    if timeout 5 docker info >/dev/null 2>&1; then
      log "engine answers: $(docker info --format '{{.ServerVersion}} ({{.Driver}})')"
      return 0
    fi
    sleep 1
  done
  log "dockerd did not answer within 60 s; last lines of its log:"
  tail -n 20 /var/log/harness-dockerd.log >&2
  return 1
}

# Harness networks an earlier run left. Docker 20.10 sometimes keeps a network's endpoint count
# after its last container is gone ("has active endpoints" with no container: moby/moby#42119,
# open); only a restart of the engine clears it. Restarted only when no container runs at all
# (a restart without live-restore stops every container) and only the dockerd this script started.
clear_stale_networks() {
  local stale
  stale=$(docker network ls -q --filter label=harness=1)
  [ -n "$stale" ] || return 0
  for net in $stale; do docker network rm "$net" >/dev/null 2>&1 || true; done
  stale=$(docker network ls -q --filter label=harness=1)
  [ -n "$stale" ] || { log "removed harness networks an earlier run left"; return 0; }
  if [ -n "$(docker ps -q)" ] || ! pgrep -f "^dockerd$" >/dev/null; then
    log "harness networks left by an earlier run cannot be removed now (a container still uses them, or moby/moby#42119): $(echo $stale)"
    log "  restart the Docker engine when no container runs to clear them"
    return 0
  fi
  log "harness networks left by an earlier run hold stale endpoint counts (moby/moby#42119): restarting dockerd"
  pkill -x dockerd; for _ in $(seq 1 30); do pgrep -x dockerd >/dev/null || break; sleep 1; done
  start_dockerd
  for net in $(docker network ls -q --filter label=harness=1); do docker network rm "$net" >/dev/null || true; done
}

if timeout 10 docker info >/dev/null 2>&1; then
  log "engine answers: $(docker info --format '{{.ServerVersion}} ({{.Driver}})')"
  clear_stale_networks
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "no dockerd on PATH: installing Debian's docker.io"
  start=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io iptables >/dev/null
  log "installed docker.io in $((SECONDS - start)) s"
fi

# 256 /24 networks: every scenario gets its own networks, and -n auto runs several at once.
mkdir -p /etc/docker
if [ ! -f /etc/docker/daemon.json ]; then
  cat >/etc/docker/daemon.json <<'JSON'
{
  "default-address-pools": [{"base": "10.213.0.0/16", "size": 24}],
  "log-driver": "json-file"
}
JSON
  log "wrote /etc/docker/daemon.json (address pool 10.213.0.0/16 in /24s)"
fi

start_dockerd
