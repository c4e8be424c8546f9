#!/usr/bin/env bash
# Issue 3's speed check: wrk against a Go hello-world handler and against
# lode serve answering a row lookup (/fixtures/facetable/1.json of the
# Datasette fixtures database), interleaved in rounds on the same machine,
# so the ratio is measured side by side. Prints req/s, the ratio, and each
# server's CPU time per request (from /proc, user+system), which is steadier
# than req/s on a shared machine. Needs wrk (apt-get install wrk).
#
#   bash internal/server/testdata/rowspeed/rowspeed.sh            # C=32 D=5 R=3 WORKERS="0 1"
#   R=5 D=10 WORKERS=1 bash internal/server/testdata/rowspeed/rowspeed.sh
#   WRITTEN=1 bash internal/server/testdata/rowspeed/rowspeed.sh  # see below
#   BASELINE=/tmp/lode-old bash internal/server/testdata/rowspeed/rowspeed.sh
#       # also an older lode binary, in the same rounds: before/after a change
#   METRICS_OFF=1 bash internal/server/testdata/rowspeed/rowspeed.sh
#       # also lode with --setting metrics off, in the same rounds: what the
#       # metrics (request counters, the counting VFS) cost a row lookup
#
# lode serve opens the copy in WAL mode. While the WAL holds no frame, SQLite
# learns the database size with an fstat() in every read transaction; once
# anything was committed it reads it from the WAL index instead. WRITTEN=1
# commits one row (python3's sqlite3, another process) after the servers
# start, which is the state of any database that is being written to.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
C=${C:-32} D=${D:-5} R=${R:-3} WORKERS=${WORKERS:-0 1}
URLPATH=${URLPATH:-/fixtures/facetable/1.json}
DB=${DB:-../shared/datasette-examples/fixtures.db}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install -y wrk" >&2; exit 1; }
[ -f "$DB" ] || { echo "no database at $DB: set DB=path/to/fixtures.db" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
go build -tags sqlite_fts5 -o "$tmp/lode" ./cmd/lode
go build -o "$tmp/hello" ./internal/loadgen/testdata/hello
cp "$DB" "$tmp/fixtures.db"

port=18190
wait_up() { for _ in $(seq 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
"$tmp/hello" -addr 127.0.0.1:$port & pids+=($!)
hello_pid=$!; hello_url=http://127.0.0.1:$port/
wait_up "$hello_url"
declare -A lode_url lode_pid base_url base_pid off_url off_pid
for w in $WORKERS; do
	port=$((port + 1))
	"$tmp/lode" serve "$tmp/fixtures.db" --port $port --workers "$w" --log-level warn & pids+=($!)
	lode_pid[$w]=$!; lode_url[$w]=http://127.0.0.1:$port$URLPATH
	wait_up "${lode_url[$w]}"
	if [ -n "${BASELINE:-}" ]; then
		port=$((port + 1))
		"$BASELINE" serve "$tmp/fixtures.db" --port $port --workers "$w" --log-level warn & pids+=($!)
		base_pid[$w]=$!; base_url[$w]=http://127.0.0.1:$port$URLPATH
		wait_up "${base_url[$w]}"
	fi
	if [ -n "${METRICS_OFF:-}" ]; then
		port=$((port + 1))
		"$tmp/lode" serve "$tmp/fixtures.db" --port $port --workers "$w" --log-level warn --setting metrics off & pids+=($!)
		off_pid[$w]=$!; off_url[$w]=http://127.0.0.1:$port$URLPATH
		wait_up "${off_url[$w]}"
	fi
done

if [ -n "${WRITTEN:-}" ]; then
	python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("create table rowspeed_probe (x)"); c.execute("insert into rowspeed_probe values (1)"); c.commit()' "$tmp/fixtures.db"
	for w in $WORKERS; do wait_up "${lode_url[$w]}"; done
fi

# cpu PID...: summed utime+stime ticks of the processes and their children.
cpu() {
	local t=0 p
	for p in "$@" $(for q in "$@"; do pgrep -P "$q" || true; done); do
		t=$((t + $(awk '{print $14+$15}' /proc/"$p"/stat)))
	done
	echo $t
}
tick=$(getconf CLK_TCK)
# run URL PID -> "req/s µs-CPU-per-request"
run() {
	local c0 c1 out n
	c0=$(cpu "$2")
	out=$(wrk -t2 -c"$C" -d"${D}s" "$1")
	c1=$(cpu "$2")
	if grep -q 'Non-2xx' <<<"$out"; then echo "error responses from $1:" >&2; echo "$out" >&2; exit 1; fi
	n=$(awk '/requests in/ {print $1}' <<<"$out")
	awk -v r="$(awk '/Requests\/sec/ {print $2}' <<<"$out")" -v c=$((c1 - c0)) -v n="$n" -v t="$tick" \
		'BEGIN {printf "%.0f %.1f", r, c * 1e6 / t / n}'
}
for round in $(seq "$R"); do
	read -r h hc <<<"$(run "$hello_url" "$hello_pid")"
	line=$(printf "round %d -c %d -d %ss: hello %s req/s (%s µs CPU/req)" "$round" "$C" "$D" "$h" "$hc")
	for w in $WORKERS; do
		if [ -n "${METRICS_OFF:-}" ] && [ $((round % 2)) -eq 0 ]; then
			# Every other round measures metrics off first, so neither
			# variant always runs right after hello-world.
			read -r o oc <<<"$(run "${off_url[$w]}" "${off_pid[$w]}")"
		fi
		read -r l lc <<<"$(run "${lode_url[$w]}" "${lode_pid[$w]}")"
		line+=$(printf "; lode --workers %s %s req/s (%s µs CPU/req) = %.0f%%" "$w" "$l" "$lc" "$(bc -l <<<"100*$l/$h")")
		if [ -n "${BASELINE:-}" ]; then
			read -r b bc_ <<<"$(run "${base_url[$w]}" "${base_pid[$w]}")"
			line+=$(printf "; baseline %s req/s (%s µs CPU/req) = %.0f%%" "$b" "$bc_" "$(bc -l <<<"100*$b/$h")")
		fi
		if [ -n "${METRICS_OFF:-}" ]; then
			[ $((round % 2)) -eq 0 ] || read -r o oc <<<"$(run "${off_url[$w]}" "${off_pid[$w]}")"
			line+=$(printf "; metrics off %s req/s (%s µs CPU/req), on/off = %.3f" "$o" "$oc" "$(bc -l <<<"$l/$o")")
		fi
	done
	echo "$line; load $(cut -d' ' -f1 /proc/loadavg)"
done
