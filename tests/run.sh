#!/usr/bin/env bash
# run.sh — the whole test suite: the unit tests (build/nabla-tests), the
# command-line tests (tests/cli.sh), training under mpirun (tests/mpi.sh, skipped
# without MPI), injected faults (tests/faults.sh), the
# equation index (tests/equations.sh: docs/equations.md against the test
# names) and the README's own commands (tests/readme.sh), with one total at
# the end.
set -u
cd "$(dirname "$0")/.."
export NABLA_THREADS=${NABLA_THREADS:-2}
# Tests share a 2-core machine with other work: sleeping OpenMP workers
# (instead of spinning ones) keep small kernels fast when cores are busy.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
total_p=0 total_f=0 total_s=0 status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for suite in "build/nabla-tests" "tests/cli.sh" "tests/mpi.sh" "tests/faults.sh" "tests/equations.sh" "tests/readme.sh"; do
    echo "== $suite"
    $suite 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    out=$(tail -1 "$log")
    if [[ $out =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)? ]]; then
        total_p=$((total_p + BASH_REMATCH[1]))
        total_f=$((total_f + BASH_REMATCH[2]))
        total_s=$((total_s + ${BASH_REMATCH[4]:-0}))
    else
        echo "$suite did not finish (status $rc)"
        total_f=$((total_f + 1))
    fi
    ((rc == 0)) || status=1
done
if ((total_s)); then echo "$total_p passed, $total_f failed, $total_s skipped"; else echo "$total_p passed, $total_f failed"; fi
exit $status
