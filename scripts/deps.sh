#!/usr/bin/env bash
# Installs what nicteam's build, tests, demo and benchmarks need on a fresh
# Debian machine, and nothing that is already there. Needs root (apt-get).
set -euo pipefail

need=()
want() { # want COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 || need+=("$2")
}
want ip iproute2
want ping iputils-ping
want nsenter util-linux
want ethtool ethtool
want clang clang
want llvm-strip llvm
want iperf3 iperf3
want tc iproute2
want nstat iproute2
want sysctl procps
want tcpdump tcpdump
want curl curl
for extra in "$@"; do
	case "$extra" in
	ovs) want ovs-vswitchd openvswitch-switch ;;
	esac
done

if [ ${#need[@]} -gt 0 ]; then
	mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
	echo "deps: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
