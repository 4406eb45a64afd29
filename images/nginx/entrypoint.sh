#!/bin/sh
# Write the rendered config (and the TLS key pair, if any), check it so a bad template fails loudly
# at start, then run nginx in the foreground.
set -e
printf '%s\n' "$LB_CONFIG" > /etc/nginx/nginx.conf
if [ -n "${LB_TLS_PEM:-}" ]; then printf '%s\n' "$LB_TLS_PEM" > /etc/nginx/lb.pem; fi
nginx -t
exec nginx -g 'daemon off;'
