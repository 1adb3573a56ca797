#!/usr/bin/env bash
# A real three-node Docker Swarm on one machine, for the `docker-swarm` tests and benchmark:
# three extra dockerd daemons (swl-n1 manager, swl-n2 and swl-n3 workers), each in its own network
# namespace on a bridge that lives in a namespace of its own (swl-br), plus two Debian
# `docker-registry` instances on the host end of the bridge (10.77.0.1): plain HTTP on :5000 and
# TLS + htpasswd on :5443. The host's dockerd and its containers are not touched.
#
#   scripts/swarm-fixture.sh up      start it (idempotent), then print the env lines below
#   scripts/swarm-fixture.sh env     print the env lines (`eval "$(… env)"`) of a running fixture
#   scripts/swarm-fixture.sh down    stop everything it started: daemons by pid, namespaces,
#                                    cgroups, mounts, files
#   scripts/swarm-fixture.sh kill-node N   SIGKILL node N's dockerd (and so its containers)
#   scripts/swarm-fixture.sh start-node N  start node N's dockerd again (it rejoins the swarm)
#
# Needs root, iproute2 (`ip netns`), util-linux (`nsenter`, `unshare`), docker.io, docker-registry,
# openssl, python3 (bcrypt for htpasswd through the crypt module). Why it is built this way:
# - a bridge in the root namespace drops node-to-node traffic (the host Docker sets FORWARD to
#   DROP), so the bridge has its own namespace and the host reaches it through a veth;
# - `ip netns exec … dockerd` fails with "Devices cgroup isn't mounted" (it remounts /sys), so a
#   node is entered with `nsenter --net` plus `unshare -m -u -p -f --mount-proc`, remounts sysfs and
#   moves the cgroup tree back under it; each node has private tmpfs over /run/containerd,
#   /run/docker and /etc/docker, its own data/exec roots and socket, the cgroupfs driver and a
#   cgroup parent of its own (removed on `down`);
# - dockerd is PID 1 of its node's pid namespace, so killing it ends the whole node.
# The kernel here may have no IPVS: then the routing mesh and VIPs don't work; tests publish in
# `host` mode with `endpoint_mode = "dnsrr"`. `WAYLINE_SWARM_IPVS=1` in the env says it exists.
set -euo pipefail

DIR=${WAYLINE_SWARM_DIR:-/tmp/wayline-swarm}
NET=10.77.0
HOST_IP=$NET.1
NODES=(1 2 3)
REGISTRY_USER=wayline
REGISTRY_PASSWORD=swarm-fixture-secret

node_sock() { echo "$DIR/n$1/docker.sock"; }
ndocker() { local n=$1; shift; docker -H "unix://$(node_sock "$n")" "$@"; }

log() { echo "swarm-fixture: $*" >&2; }

die() {
  log "$*"
  exit 1
}

wait_for() { # wait_for <seconds> <description> <command…>: bounded poll, says what failed
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${limit}s waiting for $what"
      return 1
    fi
    sleep 0.1
  done
}

gen_certs() {
  local c=$DIR/certs
  mkdir -p "$c" && chmod 700 "$c"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=wayline swarm fixture CA" \
    -keyout "$c/ca-key.pem" -out "$c/ca.pem" 2>/dev/null
  issue() { # issue <name> <subjectAltName or ''> <extendedKeyUsage>
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$c/$1-key.pem" -out "$c/$1.csr" 2>/dev/null
    {
      [ -n "$2" ] && echo "subjectAltName=$2"
      echo "extendedKeyUsage=$3"
    } >"$c/$1.ext"
    openssl x509 -req -in "$c/$1.csr" -CA "$c/ca.pem" -CAkey "$c/ca-key.pem" -CAcreateserial \
      -days 2 -extfile "$c/$1.ext" -out "$c/$1.pem" 2>/dev/null
    rm -f "$c/$1.csr" "$c/$1.ext"
  }
  issue registry "IP:$HOST_IP" serverAuth
  issue manager "IP:$NET.11,IP:127.0.0.1" serverAuth
  issue client "" clientAuth
  # The client's files as the Docker CLI wants them (DOCKER_CERT_PATH, `client_config.cert_path`).
  mkdir -p "$c/docker" && cp "$c/ca.pem" "$c/docker/ca.pem" && cp "$c/client.pem" "$c/docker/cert.pem" \
    && cp "$c/client-key.pem" "$c/docker/key.pem"
  chmod 600 "$c"/*.pem "$c"/docker/*
}

start_registries() {
  local user_hash
  user_hash=$(python3 -W ignore -c \
    "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))" \
    "$REGISTRY_PASSWORD")
  echo "$REGISTRY_USER:$user_hash" >"$DIR/htpasswd"
  chmod 600 "$DIR/htpasswd"
  cat >"$DIR/registry-plain.yml" <<EOF
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $DIR/registry-plain }, delete: { enabled: true } }
http: { addr: "$HOST_IP:5000" }
EOF
  cat >"$DIR/registry-tls.yml" <<EOF
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $DIR/registry-tls }, delete: { enabled: true } }
http:
  addr: "$HOST_IP:5443"
  tls: { certificate: $DIR/certs/registry.pem, key: $DIR/certs/registry-key.pem }
auth: { htpasswd: { realm: wayline-fixture, path: $DIR/htpasswd } }
EOF
  for r in plain tls; do
    docker-registry serve "$DIR/registry-$r.yml" >"$DIR/registry-$r.log" 2>&1 &
    echo $! >"$DIR/registry-$r.pid"
  done
  wait_for 20 "the plain registry on $HOST_IP:5000" curl -sf "http://$HOST_IP:5000/v2/"
  wait_for 20 "the TLS registry on $HOST_IP:5443" curl -s --cacert "$DIR/certs/ca.pem" \
    -u "$REGISTRY_USER:$REGISTRY_PASSWORD" -f "https://$HOST_IP:5443/v2/"
}

make_network() {
  ip netns add swl-br
  ip -n swl-br link set lo up
  ip -n swl-br link add br0 type bridge
  ip -n swl-br link set br0 up
  ip link add swl-host type veth peer name host0 netns swl-br
  ip addr add "$HOST_IP/24" dev swl-host
  ip link set swl-host up
  ip -n swl-br link set host0 master br0 up
  for n in "${NODES[@]}"; do
    ip netns add "swl-n$n"
    ip -n swl-br link add "node$n" type veth peer name eth0 netns "swl-n$n"
    ip -n swl-br link set "node$n" master br0 up
    ip -n "swl-n$n" link set lo up
    ip -n "swl-n$n" addr add "$NET.1$n/24" dev eth0
    ip -n "swl-n$n" link set eth0 up
    ip -n "swl-n$n" route add default via "$HOST_IP"
  done
}

# The script a node's namespaces run: fresh sysfs with the cgroup tree moved back under it,
# private runtime dirs, then dockerd as PID 1 of the node.
node_init() {
  local n=$1 d=$DIR/n$1 tls_flags=""
  if [ "$n" = 1 ]; then
    tls_flags="-H tcp://$NET.11:2376 --tlsverify --tlscacert $DIR/certs/ca.pem \
      --tlscert $DIR/certs/manager.pem --tlskey $DIR/certs/manager-key.pem"
  fi
  cat <<EOF
set -e
mount --make-rprivate /
mkdir -p $d/cgroup-hold
mount --rbind /sys/fs/cgroup $d/cgroup-hold
mount -t sysfs sysfs /sys
mount --move $d/cgroup-hold /sys/fs/cgroup
for p in /run/containerd /run/docker /etc/docker; do mkdir -p \$p; mount -t tmpfs -o mode=0700 tmpfs \$p; done
mkdir -p /etc/docker/certs.d/$HOST_IP:5443
cp $DIR/certs/ca.pem /etc/docker/certs.d/$HOST_IP:5443/ca.crt
hostname swl-n$n
exec dockerd --data-root $d/data --exec-root $d/exec --pidfile $d/dockerd.pid \
  -H unix://$d/docker.sock $tls_flags --exec-opt native.cgroupdriver=cgroupfs \
  --cgroup-parent /swl-n$n --insecure-registry $HOST_IP:5000 --userland-proxy=false
EOF
}

start_node() {
  local n=$1 d=$DIR/n$1
  mkdir -p "$d"
  rm -rf "$d/exec" "$d/dockerd.pid" "$d/docker.sock"
  node_init "$n" >"$d/init.sh"
  nsenter --net="/run/netns/swl-n$n" unshare -m -u -p -f --mount-proc --kill-child \
    sh "$d/init.sh" >"$d/dockerd.log" 2>&1 &
  echo $! >"$d/unshare.pid"
}

node_up() { ndocker "$1" version --format '{{.Server.Version}}'; }

init_swarm() {
  ndocker 1 swarm init --advertise-addr "$NET.11" --listen-addr "$NET.11:2377" >/dev/null
  local token
  token=$(ndocker 1 swarm join-token -q worker)
  local joins=()
  for n in 2 3; do
    ndocker "$n" swarm join --token "$token" --advertise-addr "$NET.1$n" "$NET.11:2377" >/dev/null &
    joins+=($!)
  done
  for pid in "${joins[@]}"; do wait "$pid"; done
  all_ready() { [ "$(ndocker 1 node ls --format '{{.Status}}' | grep -c Ready)" = 3 ]; }
  wait_for 30 "three Ready nodes in \`docker node ls\`" all_ready
}

print_env() {
  [ -f "$DIR/up" ] || die "not running (run \`$0 up\`)"
  local ipvs=0
  [ -e /proc/net/ip_vs ] && ipvs=1
  cat <<EOF
export WAYLINE_SWARM_DIR=$DIR
export WAYLINE_SWARM_MANAGER=unix://$(node_sock 1)
export WAYLINE_SWARM_MANAGER_TCP=tcp://$NET.11:2376
export WAYLINE_SWARM_NODES="unix://$(node_sock 1) unix://$(node_sock 2) unix://$(node_sock 3)"
export WAYLINE_SWARM_HOST_IP=$HOST_IP
export WAYLINE_SWARM_NODE_IPS="$NET.11 $NET.12 $NET.13"
export WAYLINE_SWARM_REGISTRY=$HOST_IP:5000
export WAYLINE_SWARM_REGISTRY_TLS=$HOST_IP:5443
export WAYLINE_SWARM_REGISTRY_USER=$REGISTRY_USER
export WAYLINE_SWARM_REGISTRY_PASSWORD=$REGISTRY_PASSWORD
export WAYLINE_SWARM_CERTS=$DIR/certs
export WAYLINE_SWARM_CLIENT_CERTS=$DIR/certs/docker
export WAYLINE_SWARM_IPVS=$ipvs
EOF
}

up() {
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces, mounts, dockerd)"
  for tool in ip nsenter unshare dockerd docker docker-registry openssl python3 curl; do
    command -v "$tool" >/dev/null || die "\`$tool\` is missing: apt-get install -y iproute2 docker.io docker-registry curl openssl python3"
  done
  if [ -f "$DIR/up" ] && node_up 1 >/dev/null 2>&1; then
    print_env
    return
  fi
  down >/dev/null 2>&1 || true
  local started=$SECONDS t0
  t0=$(date +%s.%N)
  mkdir -p "$DIR" && chmod 700 "$DIR"
  trap 'log "start failed; tearing down"; tail -5 "$DIR"/n*/dockerd.log >&2 || true; down; exit 1' ERR
  gen_certs
  make_network
  start_registries
  for n in "${NODES[@]}"; do start_node "$n"; done
  for n in "${NODES[@]}"; do wait_for 60 "node $n's dockerd (log: $DIR/n$n/dockerd.log)" node_up "$n"; done
  init_swarm
  trap - ERR
  touch "$DIR/up"
  log "up in $(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")s ($((SECONDS - started))s wall)"
  print_env
}

stop_pid() { # stop_pid <pidfile> <grace seconds>: TERM, then KILL after the grace period
  local f=$1 grace=$2 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  rm -f "$f"
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

# The node's PID 1 (dockerd) as seen from the host: the child of the `unshare` we started.
node_init_pid() {
  local f=$DIR/n$1/unshare.pid
  [ -f "$f" ] || return 1
  pgrep -P "$(cat "$f")" | head -1
}

kill_node() {
  local n=$1 pid
  pid=$(node_init_pid "$n") || die "node $n is not running"
  kill -KILL "$pid"
  log "killed node $n's dockerd (pid $pid)"
}

restart_node() {
  local n=$1
  [ -f "$DIR/up" ] || die "not running (run \`$0 up\`)"
  if node_init_pid "$n" >/dev/null 2>&1 && node_up "$n" >/dev/null 2>&1; then return; fi
  stop_pid "$DIR/n$n/unshare.pid" 5
  remove_cgroups "swl-n$n"
  start_node "$n"
  wait_for 60 "node $n's dockerd (log: $DIR/n$n/dockerd.log)" node_up "$n"
  node_ready() { ndocker 1 node ls --format '{{.Hostname}} {{.Status}}' | grep -qx "swl-n$n Ready"; }
  wait_for 60 "swl-n$n Ready again in \`docker node ls\`" node_ready
  log "node $n is back"
}

remove_cgroups() { # depth-first rmdir of /sys/fs/cgroup/*/<prefix>*: empty once the nodes are gone
  local dir prefix=${1:-swl-n}
  for dir in /sys/fs/cgroup/*/"$prefix"* /sys/fs/cgroup/unified/"$prefix"*; do
    [ -d "$dir" ] || continue
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

down() {
  for n in "${NODES[@]}"; do
    local pid
    if pid=$(node_init_pid "$n" 2>/dev/null) && [ -n "$pid" ]; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for n in "${NODES[@]}"; do stop_pid "$DIR/n$n/unshare.pid" 15; done
  for r in plain tls; do stop_pid "$DIR/registry-$r.pid" 5; done
  for n in "${NODES[@]}"; do ip netns del "swl-n$n" 2>/dev/null || true; done
  ip link del swl-host 2>/dev/null || true
  ip netns del swl-br 2>/dev/null || true
  remove_cgroups
  # The nodes' mounts lived in their own mount namespaces and ended with them; what remains is
  # files (overlay layers are plain directories once unmounted).
  if [ -d "$DIR" ]; then
    grep -o " $DIR[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$DIR"
  fi
  log "down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) print_env ;;
  kill-node) kill_node "${2:?node number}" ;;
  start-node) restart_node "${2:?node number}" ;;
  *) die "usage: $0 up|down|env|kill-node N|start-node N" ;;
esac
