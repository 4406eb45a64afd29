#!/bin/sh
set -e
mkdir -p /run/haproxy
printf '%s\n' "$LB_CONFIG" > /etc/haproxy/haproxy.cfg
haproxy -c -f /etc/haproxy/haproxy.cfg
exec haproxy -W -db -f /etc/haproxy/haproxy.cfg
