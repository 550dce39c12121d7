#!/bin/sh
# One command: PouchDB's push-replication throughput on this machine, on the records bench/push_bench.py pushes.
#   bench/pouchdb/run.sh [--records 10000] [--runs 5] [--spoke 3]
# --spoke N also runs the project's own bench/push_bench.py N times right after, for a same-sitting ratio.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY="$ROOT/.venv/bin/python"; [ -x "$PY" ] || PY=python3
RECORDS=10000 RUNS=5 SPOKE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --records) RECORDS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --spoke) SPOKE=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
cd "$HERE"
# npm ci on first use, or when package-lock.json changed since the last install (the versions stay the lock's)
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci
fi
START=$(date +%s)
"$PY" export_records.py --records "$RECORDS" --out data/records.jsonl
node push.js --records data/records.jsonl --runs "$RUNS"
echo "pouchdb: $(( $(date +%s) - START )) s in all"
i=1
while [ "$i" -le "$SPOKE" ]; do
  echo "--- bench/push_bench.py, run $i"
  (cd "$ROOT" && "$PY" bench/push_bench.py)
  i=$((i + 1))
done
