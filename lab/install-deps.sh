#!/usr/bin/env bash
# Installs what the dockplan lab needs (lab/, docs/lab.md) and what the etcd
# state backend's tests need (etcd-server: state/etcdstate), only what is
# missing, and starts the machine's default Docker engine if it is not
# running. Idempotent; needs root. Usage: bash lab/install-deps.sh
set -euo pipefail

log() { printf 'install-deps: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  log "run as root (apt-get, dockerd)"
  exit 1
fi

# program -> Debian package that provides it
need=()
want() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
want dockerd docker.io
want docker docker.io
want docker-registry docker-registry
want ip iproute2
want iptables iptables
want nsenter util-linux
want unshare util-linux
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
# The etcd state backend's tests start their own 3-member cluster from
# Debian's etcd binary (state/etcdstate/etcdtest); the package's service is
# kept from starting by policy-rc.d below.
want etcd etcd-server

if [ "${#need[@]}" -gt 0 ]; then
  mapfile -t pkgs < <(printf '%s\n' "${need[@]}" | sort -u)
  log "installing ${pkgs[*]}"
  # Keep package scripts from starting services (docker-registry would take
  # port 5000 on every address, etcd 2379 and 2380): policy-rc.d exit 101
  # denies them.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  cleanup() { if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi; }
  trap cleanup EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null
else
  log "packages already installed"
fi

if docker info >/dev/null 2>&1; then
  log "default Docker engine is running"
  exit 0
fi

log "starting dockerd (log: /var/log/dockerd.log)"
setsid dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then
    log "default Docker engine is running"
    exit 0
  fi
  sleep 0.5
done
log "dockerd did not answer within 60 s; see /var/log/dockerd.log"
exit 1
