#!/bin/sh
# Write the rendered config (and the TLS key pair, if any), check it, run httpd in the foreground.
set -e
mkdir -p /run/apache2 /var/lock/apache2
printf '%s\n' "$LB_CONFIG" > /etc/apache2/lb.conf
if [ -n "${LB_TLS_PEM:-}" ]; then printf '%s\n' "$LB_TLS_PEM" > /etc/apache2/lb.pem; fi
apache2 -t -f /etc/apache2/lb.conf
exec apache2 -f /etc/apache2/lb.conf -DFOREGROUND
