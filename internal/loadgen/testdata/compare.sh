#!/usr/bin/env bash
# Compares lode load with wrk and hey (apt-get install wrk hey) against the
# Go hello-world server in testdata/hello, back to back, same connection
# count and duration, several rounds: req/s and each tool's own CPU time
# per request (user+system, from bash's time), which is steadier than req/s
# on a shared machine.
#
#   bash internal/loadgen/testdata/compare.sh            # C=32 D=5 R=3
#   C=64 D=10 R=5 bash internal/loadgen/testdata/compare.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
C=${C:-32} D=${D:-5} R=${R:-3} ADDR=${ADDR:-127.0.0.1:18099}
for tool in wrk hey; do command -v $tool >/dev/null || { echo "needs $tool: apt-get install -y $tool" >&2; exit 1; }; done
bin=$(mktemp -d)
trap 'kill $srv 2>/dev/null; rm -rf "$bin"' EXIT
go build -tags sqlite_fts5 -o "$bin/lode" ./cmd/lode
go build -o "$bin/hello" ./internal/loadgen/testdata/hello
"$bin/hello" -addr $ADDR & srv=$!
for i in $(seq 100); do curl -s -o /dev/null http://$ADDR/ && break; sleep 0.1; done
kill -0 $srv 2>/dev/null || { echo "hello server did not start on $ADDR" >&2; exit 1; }

TIMEFORMAT='%U %S'
out=$bin/out
timed() { { time "$@" >"$out" 2>&1; } 2>&1; }   # prints "user sys"
perreq() { awk -v n="$2" '{printf "%.1f", ($1+$2)*1e6/n}' <<<"$1"; }
for round in $(seq "$R"); do
	t=$(timed wrk -t2 -c"$C" -d"${D}s" http://$ADDR/)
	w=$(awk '/Requests\/sec/ {print $2}' "$out"); wn=$(awk '/requests in/ {print $1}' "$out"); wc=$(perreq "$t" "$wn")
	t=$(timed "$bin/lode" load http://$ADDR/ -c "$C" -d "${D}s" -q)
	l=$(awk '/Aggregated/ {print $5}' "$out"); ln=$(awk '/Aggregated/ {print $2}' "$out"); lc=$(perreq "$t" "$ln")
	t=$(timed hey -c "$C" -z "${D}s" http://$ADDR/)
	h=$(awk '/Requests\/sec/ {print $2}' "$out"); hn=$(awk '/responses/ {s+=$2} END {print s}' "$out"); hc=$(perreq "$t" "$hn")
	printf "round %d -c %d -d %ss: req/s wrk %.0f, lode %.0f, hey %.0f (lode/wrk %.2f, lode/hey %.2f); CPU µs/request wrk %s, lode %s, hey %s; load %s\n" \
		"$round" "$C" "$D" "$w" "$l" "$h" "$(bc -l <<<"$l/$w")" "$(bc -l <<<"$l/$h")" "$wc" "$lc" "$hc" "$(cut -d' ' -f1 /proc/loadavg)"
done
