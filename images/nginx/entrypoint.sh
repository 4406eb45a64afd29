#!/bin/sh
# Write the rendered config, check it (so a bad template fails loudly at start), run in foreground.
set -e
printf '%s\n' "$LB_CONFIG" > /etc/nginx/nginx.conf
nginx -t
exec nginx -g 'daemon off;'
