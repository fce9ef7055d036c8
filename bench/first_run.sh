#!/usr/bin/env bash
# From a fresh clone: seconds from `make run` to the first answered request, the venv's size, and whether any
# test-only package got in. Usage: bench/first_run.sh [port]   (pip's cache warm or cold, as the machine has it)
set -u
port=${1:-18714}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
git clone -q "$repo" "$work/clone" && cd "$work/clone" || exit 1
start=$(date +%s.%N)
make run INGESTD_PORT="$port" > "$work/run.log" 2>&1 &
make_pid=$!
until curl -sf "http://127.0.0.1:$port/v1/pipelines" > /dev/null 2>&1; do
  kill -0 $! 2>/dev/null || { echo "make run failed:"; tail -5 "$work/run.log"; exit 1; }
  sleep 0.5
done
end=$(date +%s.%N)
printf 'first answer after %.0f s\n' "$(echo "$end - $start" | bc)"
# the CPU time of make's finished children (venv, pip): the install's cost, whatever else loads the machine
read -r -a stat < "/proc/$make_pid/stat"
printf 'install CPU: %.1f s (user + system), load average %s\n' \
  "$(echo "(${stat[15]} + ${stat[16]}) / $(getconf CLK_TCK)" | bc -l)" "$(cut -d' ' -f1-3 /proc/loadavg)"
du -sh .venv | cut -f1 | sed 's/^/venv: /'
.venv/bin/pip list 2>/dev/null | grep -i -E "^(pytest|playwright|hypothesis|schemathesis|mypy|ruff|matplotlib) " \
  || echo "no test-only package"
server=$(ss -ltnp 2>/dev/null | grep ":$port " | grep -o "pid=[0-9]*" | head -1 | cut -d= -f2)
[ -n "$server" ] && kill "$server"
wait
rm -rf "$work"
