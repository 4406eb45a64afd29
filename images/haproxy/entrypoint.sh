#!/bin/sh
# Write the rendered config (and the TLS key pair, if any), check it, run in the foreground.
set -e
mkdir -p /run/haproxy
printf '%s\n' "$LB_CONFIG" > /etc/haproxy/haproxy.cfg
if [ -n "${LB_TLS_PEM:-}" ]; then printf '%s\n' "$LB_TLS_PEM" > /etc/haproxy/lb.pem; fi
haproxy -c -f /etc/haproxy/haproxy.cfg
exec haproxy -W -db -f /etc/haproxy/haproxy.cfg
