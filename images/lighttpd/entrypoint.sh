#!/bin/sh
# Write the rendered config (and the TLS key pair, if any), check it, run lighttpd in the foreground.
set -e
printf '%s\n' "$LB_CONFIG" > /etc/lighttpd/lb.conf
if [ -n "${LB_TLS_PEM:-}" ]; then printf '%s\n' "$LB_TLS_PEM" > /etc/lighttpd/lb.pem; fi
lighttpd -tt -f /etc/lighttpd/lb.conf
exec lighttpd -D -f /etc/lighttpd/lb.conf
