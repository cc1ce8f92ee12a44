#!/usr/bin/env bash
# coverage.sh — which lines and functions of src/ and cli/ the unit tests and
# the command-line tests execute. Builds nabla with gcc --coverage (at -O1,
# so that lines map to code) in its own folder, build-cov (or $COV_BUILD), runs
# build-cov/nabla-tests and tests/cli.sh against build-cov/nabla, and writes
# build-cov/coverage.txt (per file), build-cov/coverage.json and
# build-cov/summary.txt (totals, functions never executed, the largest runs
# of never-executed lines). Needs gcovr (apt-get install gcovr).
# Usage: tests/coverage.sh [--report-only] [NAME...]  (NAME: as for the test
# runners, to measure some tests only; the counters start from zero).
set -u
cd "$(dirname "$0")/.."
B=${COV_BUILD:-build-cov}
command -v gcovr >/dev/null || { echo "coverage.sh: needs gcovr (apt-get install gcovr)" >&2; exit 2; }
report_only=0
if [[ ${1:-} == --report-only ]]; then report_only=1; shift; fi
mkdir -p $B
if ((!report_only)); then
    make -j2 BUILD=$B OPT=-O1 SAN=--coverage $B/nabla-tests $B/nabla examples >$B/build.log 2>&1 || { tail -20 $B/build.log; exit 1; }
    # Relink both programs with the hook that writes the counters on abort.
    cc -O1 -c tests/coverage/gcov_flush.c -o $B/gcov_flush.o && rm -f $B/nabla-tests $B/nabla &&
        make -j2 BUILD=$B OPT=-O1 SAN="--coverage $PWD/$B/gcov_flush.o" $B/nabla-tests $B/nabla >>$B/build.log 2>&1 ||
        { tail -20 $B/build.log; exit 1; }
    find $B -name '*.gcda' -delete
    export NABLA_THREADS=${NABLA_THREADS:-2} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
    $B/nabla-tests "$@" >$B/unit.log 2>&1; echo "unit tests: $(tail -1 $B/unit.log)"
    NABLA=$PWD/$B/nabla tests/cli.sh "$@" >$B/cli.log 2>&1; echo "cli tests: $(tail -1 $B/cli.log)"
fi
gcovr -r . --object-directory $B -f src/ -f cli/ --txt $B/coverage.txt --json $B/coverage.json 2>$B/gcovr.log ||
    { tail $B/gcovr.log; exit 1; }
python3 tests/coverage/summary.py $B/coverage.json 40 >$B/summary.txt
head -3 $B/summary.txt
