#!/usr/bin/env bash
# Make sure a Docker engine answers. On a fresh machine: install Debian's docker.io and start dockerd
# in the background with an address pool sized for many per-scenario networks.
set -euo pipefail
log() { printf '[docker-engine] %s\n' "$*"; }

if timeout 10 docker info >/dev/null 2>&1; then
  log "engine answers: $(docker info --format '{{.ServerVersion}} ({{.Driver}})')"
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

log "starting dockerd in the background (log: /var/log/harness-dockerd.log)"
nohup dockerd >/var/log/harness-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if timeout 5 docker info >/dev/null 2>&1; then
    log "engine answers: $(docker info --format '{{.ServerVersion}} ({{.Driver}})')"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 60 s; last lines of its log:"
tail -n 20 /var/log/harness-dockerd.log >&2
exit 1
