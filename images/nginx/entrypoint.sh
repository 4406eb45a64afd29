#!/bin/sh
# Write the rendered config (and the TLS key pair, if any), then run nginx in the foreground; a bad
# template fails loudly there ([emerg] on stderr, exit 1).
# No `nginx -t` first: it binds and listens on every configured port before it exits (strace:
# bind + listen(4, 511) on :80 in the `nginx -t` process), so the harness's readiness probe could
# connect to that short-lived listener, pass, and the first client of the cell be refused in the gap
# before this nginx listens (seen once in CI as discovery_failed on a cell's first check). The other
# images' checks (haproxy -c, apache2 -t, caddy validate, lighttpd -tt, hitch --test) do not listen.
set -e
printf '%s\n' "$LB_CONFIG" > /etc/nginx/nginx.conf
if [ -n "${LB_TLS_PEM:-}" ]; then printf '%s\n' "$LB_TLS_PEM" > /etc/nginx/lb.pem; fi
exec nginx -g 'daemon off;'
