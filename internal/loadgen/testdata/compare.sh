#!/usr/bin/env bash
# Compares lode load with wrk (and hey, when installed) against the Go
# hello-world server in testdata/hello: interleaved rounds, same
# connection count and duration, each tool's req/s and its own CPU time
# per request (user+system of the tool's process, from /usr/bin/time; on a
# shared machine steadier than req/s). lode runs twice per round: the plain
# URL, and a scenario whose URL has one {{randInt 1 1000}}. The summary
# gives the medians over the rounds and lode's ratios to wrk.
#
#   bash internal/loadgen/testdata/compare.sh            # C=32 D=5 R=3
#   C=64 D=10 R=5 bash internal/loadgen/testdata/compare.sh
#   OTHER=/tmp/lode-old bash internal/loadgen/testdata/compare.sh   # also another lode build, same rounds
set -euo pipefail
cd "$(dirname "$0")/../../.."
C=${C:-32} D=${D:-5} R=${R:-3} ADDR=${ADDR:-127.0.0.1:18099} OTHER=${OTHER:-}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install -y wrk" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time: apt-get install -y time" >&2; exit 1; }
bin=$(mktemp -d)
srv=
trap '[ -n "$srv" ] && kill $srv 2>/dev/null; rm -rf "$bin"' EXIT
go build -tags sqlite_fts5 -o "$bin/lode" ./cmd/lode
go build -o "$bin/hello" ./internal/loadgen/testdata/hello
"$bin/hello" -addr "$ADDR" & srv=$!
for i in $(seq 100); do curl -s -o /dev/null "http://$ADDR/" && break; sleep 0.1; done
kill -0 $srv 2>/dev/null || { echo "hello server did not start on $ADDR" >&2; exit 1; }
printf 'requests:\n  - url: http://%s/?id={{randInt 1 1000}}\n' "$ADDR" >"$bin/scenario.yaml"

out=$bin/out tm=$bin/time res=$bin/results
: >"$res"
# run NAME CMD...: runs CMD under /usr/bin/time and appends "NAME req/s µs/req" to $res.
run() {
	local name=$1; shift
	/usr/bin/time -f '%U %S' -o "$tm" "$@" >"$out" 2>&1
	local n rps
	case $name in
	wrk) n=$(awk '/requests in/ {print $1}' "$out"); rps=$(awk '/Requests\/sec/ {print $2}' "$out") ;;
	hey) n=$(awk '/responses/ {s+=$2} END {print s}' "$out"); rps=$(awk '/Requests\/sec/ {print $2}' "$out") ;;
	*) n=$(awk '/Aggregated/ {print $2}' "$out"); rps=$(awk '/Aggregated/ {print $5}' "$out") ;;
	esac
	awk -v name="$name" -v n="$n" -v rps="$rps" '{printf "%s %.0f %.2f\n", name, rps, ($1+$2)*1e6/n}' "$tm" | tee -a "$res"
}
tools="wrk lode-url lode-scenario"
for round in $(seq "$R"); do
	echo "round $round (load average $(cut -d' ' -f1 /proc/loadavg)):"
	run wrk wrk -t2 -c"$C" -d"${D}s" "http://$ADDR/"
	run lode-url "$bin/lode" load "http://$ADDR/" -c "$C" -d "${D}s" -q
	run lode-scenario "$bin/lode" load -f "$bin/scenario.yaml" -c "$C" -d "${D}s" -q
	if [ -n "$OTHER" ]; then
		run other-url "$OTHER" load "http://$ADDR/" -c "$C" -d "${D}s" -q
		run other-scenario "$OTHER" load -f "$bin/scenario.yaml" -c "$C" -d "${D}s" -q
		tools="wrk lode-url lode-scenario other-url other-scenario"
	fi
	if command -v hey >/dev/null; then
		run hey hey -c "$C" -z "${D}s" "http://$ADDR/"
		tools="$tools hey"
	fi
done
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
echo
echo "medians of $R rounds, -c $C, ${D}s each:"
wrk_rps=$(awk '$1=="wrk" {print $2}' "$res" | median)
wrk_cpu=$(awk '$1=="wrk" {print $3}' "$res" | median)
for t in $tools; do
	rps=$(awk -v t="$t" '$1==t {print $2}' "$res" | median)
	cpu=$(awk -v t="$t" '$1==t {print $3}' "$res" | median)
	printf "%-15s %8.0f req/s (%.2fx wrk)  %6.2f µs CPU/request (%.2fx wrk)\n" "$t" "$rps" "$(bc -l <<<"$rps/$wrk_rps")" "$cpu" "$(bc -l <<<"$cpu/$wrk_cpu")"
done
