# Shell functions the scripts share. Source it after changing to the repository root:
#   # shellcheck source=scripts/lib.sh
#   source scripts/lib.sh
# It defines functions only, and sets no shell options.

pg_bin() { # the directory of the newest installed PostgreSQL server binaries
  local dir
  dir=$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# start_kube_stub DIR: the stand-in API server (scripts/kube-stub.py) on a free loopback port, in
# the background; returns once it answers (or after 5 s), with DIR/kubeconfig pointing at it and
# stub_pid set to its process id, for the caller to stop. Not in a $(...): the stub must be a job
# of the calling shell.
start_kube_stub() {
  local dir=$1 port
  port=$(free_port)
  python3 scripts/kube-stub.py "$port" &
  stub_pid=$!
  for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  cat >"$dir/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [ { name: stub, cluster: { server: "http://127.0.0.1:$port" } } ]
users: [ { name: stub, user: { token: stub } } ]
contexts: [ { name: stub, context: { cluster: stub, user: stub } } ]
current-context: stub
YAML
}
