#!/bin/sh
# $LB_CONFIG is a bundle of files, each introduced by a line '#### file: <path>' (the VCL, varnishd's
# arguments and, with a TLS listener, hitch's config). hitch cuts TLS and hands each connection to
# varnishd with a PROXY v2 header; varnishd runs in the foreground.
set -e
mkdir -p /etc/hitch
printf '%s\n' "$LB_CONFIG" | awk '/^#### file: /{f=$3; printf "" > f; next} f{print >> f}'
if [ -n "${LB_TLS_PEM:-}" ]; then printf '%s\n' "$LB_TLS_PEM" > /etc/hitch/lb.pem; fi
varnishd -C -f /etc/varnish/lb.vcl -n /tmp/varnish-check >/dev/null
if [ -f /etc/hitch/hitch.conf ]; then
  hitch --test --config=/etc/hitch/hitch.conf
  hitch --config=/etc/hitch/hitch.conf &
fi
# shellcheck disable=SC2046
exec varnishd -F -n /tmp/varnish -f /etc/varnish/lb.vcl -s malloc,64m $(cat /etc/varnish/varnishd.args)
