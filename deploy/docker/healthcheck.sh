#!/bin/bash
# Container health probe for `veriface serve`: exits 0 when GET PATH (default
# /healthz) on 127.0.0.1:$PORT answers 200, else 1.
#
# usage: veriface-healthcheck [PATH]
#
# It speaks HTTP/1.0 over bash's /dev/tcp so that the runtime image needs no
# curl or wget (see the HEALTHCHECK note in the Dockerfile). It assumes the
# server listens on loopback too, which VERIFACE_BIND=0.0.0.0 (the image's
# default) includes.
set -u

port="${PORT:-5000}"
path="${1:-/healthz}"

# A refused or unreachable port fails here, at once.
{ exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || exit 1
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3 || exit 1
# The status line: "HTTP/1.1 200 OK". A server that accepts but never answers
# fails after 4 s, inside the HEALTHCHECK's 5 s timeout.
read -r -t 4 _ status _ <&3 || exit 1
exec 3<&-
[ "$status" = 200 ]
