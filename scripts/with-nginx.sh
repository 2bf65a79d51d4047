#!/usr/bin/env bash
# Run a command with nginx at hand for the proxy-config tests: export BROADSHEET_TEST_NGINX
# (the binary; the tests start their own throwaway servers), then run "$@". Installs Debian's
# nginx when it is missing. With CI=true a missing nginx is an error, never a skip.
set -euo pipefail

# Debian starts a package's service on install; only the binary is wanted here, so a
# policy-rc.d (unless one is already there) refuses every start while apt-get runs.
apt_install_quietly() {
  local made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local status=0
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || status=$?
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  return "$status"
}

find_nginx() {
  command -v nginx 2>/dev/null && return
  [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx
}

NGINX=$(find_nginx || true)
if [ -z "$NGINX" ]; then
  echo "with-nginx: nginx not found; installing Debian's nginx" >&2
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt_install_quietly nginx || true
    NGINX=$(find_nginx || true)
  fi
fi
if [ -z "$NGINX" ]; then
  echo "with-nginx: nginx is not available and could not be installed" >&2
  exit 1
fi

export BROADSHEET_TEST_NGINX="$NGINX"
echo "with-nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //') at $NGINX" >&2
"$@"
