#!/usr/bin/env bash
# Instructions one command executes (valgrind's callgrind; the median of 3):
# steady on a busy machine, where wall times drift by several per cent.
#     bash benchmarks/instructions.sh VENV/bin/python VENV/bin/selfheal wrap ... -- PLUGIN 0 ok
# Compare two installations by running it for each (docs/performance.md).
set -euo pipefail
for _ in 1 2 3; do
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
        grep -o "Collected : [0-9]*" | awk '{print $3}'
done | sort -n | sed -n 2p
