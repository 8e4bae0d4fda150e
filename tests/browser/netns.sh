# A viewer behind a veth of its own, for the browser tests and the
# benches (sourced, not run; needs root and iproute2).

# A viewer's network namespace NS behind a veth pair: <veth>0 here with
# OURS (default 192.0.2.1/24), <veth>1 in NS with THEIRS (default
# 192.0.2.2/24; documentation addresses), loopback up there. With "route"
# (or "" for none), NS routes everything through us (Firefox gathers no ICE
# candidate without a default route). Fails the test when it cannot be
# made; remove_viewer_namespace undoes it.
#   make_viewer_namespace NS VETH [route] [OURS THEIRS]
make_viewer_namespace() {
  local ns=$1 veth=$2 ours=${4:-192.0.2.1/24} theirs=${5:-192.0.2.2/24}
  ip netns add "$ns" || { echo "FAIL: ip netns add (needs root)"; exit 1; }
  ip link add "${veth}0" type veth peer name "${veth}1" || exit 1
  ip link set "${veth}1" netns "$ns"
  ip addr add "$ours" dev "${veth}0"
  ip link set "${veth}0" up
  ip netns exec "$ns" ip addr add "$theirs" dev "${veth}1"
  ip netns exec "$ns" ip link set "${veth}1" up
  ip netns exec "$ns" ip link set lo up
  [ "${3:-}" != route ] || ip netns exec "$ns" ip route add default via "${ours%/*}"
}

remove_viewer_namespace() {
  ip netns del "$1" 2>/dev/null
  ip link del "${2}0" 2>/dev/null
}
