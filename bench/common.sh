# Shared by the bench scripts: the private network namespace they run in,
# and the background processes a run starts (killed when it ends).
# Sourced after `set -euo pipefail` and `cd` to the repository root.

# Runs the calling script again (call it with "$@") inside a private
# network namespace with only loopback (as root, or through sudo), unless
# it already is.
enter_netns() {
  if [ "${WB_BENCH_IN_NETNS:-0}" != 1 ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    exec $sudo unshare --net env WB_BENCH_IN_NETNS=1 bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
  fi
}

PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# The same, for benchmarks that first install what they need and build.
install_build_enter_netns() {
  if [ "${WB_BENCH_IN_NETNS:-0}" != 1 ]; then
    WB_WITH_BROWSER=0 WB_WITH_BENCH=1 bash scripts/install-deps.sh
    bash scripts/build.sh
  fi
  enter_netns "$@"
}

# Stops the server started last (SERVER_PID): SIGINT, then SIGKILL after
# STOP_WAIT seconds (3; a sanitized server needs longer for its leak check).
stop_server() {
  kill -INT "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq $((${STOP_WAIT:-3} * 10))); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}
