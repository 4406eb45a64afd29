#!/bin/sh
# $LB_CONFIG is a bundle of files, each introduced by a line '#### file: <path>' (records.config,
# remap.config, ...). traffic_server runs in the foreground.
set -e
printf '%s\n' "$LB_CONFIG" | awk '/^#### file: /{f=$3; printf "" > f; next} f{print >> f}'
if [ -n "${LB_TLS_PEM:-}" ]; then printf '%s\n' "$LB_TLS_PEM" > /etc/trafficserver/lb.pem; fi
mkdir -p /var/run/trafficserver /var/log/trafficserver /var/cache/trafficserver
chown -R trafficserver:trafficserver /var/run/trafficserver /var/log/trafficserver /var/cache/trafficserver 2>/dev/null || true
exec traffic_server
