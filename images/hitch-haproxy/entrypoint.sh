#!/bin/sh
# $LB_CONFIG is a bundle of files, each introduced by a line '#### file: <path>' (haproxy.cfg and, with
# a TLS listener, hitch.conf). hitch cuts TLS and hands each connection to HAProxy on loopback with a
# PROXY v1 header; HAProxy runs in the foreground.
set -e
mkdir -p /run/haproxy /etc/hitch
printf '%s\n' "$LB_CONFIG" | awk '/^#### file: /{f=$3; printf "" > f; next} f{print >> f}'
if [ -n "${LB_TLS_PEM:-}" ]; then printf '%s\n' "$LB_TLS_PEM" > /etc/hitch/lb.pem; fi
haproxy -c -f /etc/haproxy/haproxy.cfg
if [ -f /etc/hitch/hitch.conf ]; then
  hitch --test --config=/etc/hitch/hitch.conf
  hitch --config=/etc/hitch/hitch.conf &
fi
exec haproxy -W -db -f /etc/haproxy/haproxy.cfg
