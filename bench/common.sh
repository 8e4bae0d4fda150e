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
