#!/bin/sh
# Write the rendered Caddyfile (and the TLS key pair, if any), validate it, run Caddy in the foreground.
set -e
export XDG_DATA_HOME=/tmp/caddy-data XDG_CONFIG_HOME=/tmp/caddy-config
printf '%s\n' "$LB_CONFIG" > /etc/caddy/Caddyfile
if [ -n "${LB_TLS_PEM:-}" ]; then printf '%s\n' "$LB_TLS_PEM" > /etc/caddy/lb.pem; fi
caddy validate --config /etc/caddy/Caddyfile --adapter caddyfile
exec caddy run --config /etc/caddy/Caddyfile --adapter caddyfile
