# summary.py COVERAGE.JSON [N] — from gcovr's JSON (tests/coverage.sh): line
# and function coverage of src/ and cli/ and both, and with N the functions
# never executed and the N largest runs of never-executed lines (runs may
# step over up to 3 lines that are not code).
import json, sys, collections
d = json.load(open(sys.argv[1]))
tot = collections.defaultdict(lambda: [0, 0, 0, 0])
runs = []
unfn = []
for f in d['files']:
    name = f['file']
    top = name.split('/')[0]
    lines = [l for l in f['lines'] if not l['gcovr/noncode']]
    lines_by = {l['line_number']: l['count'] for l in lines}
    cov = sum(1 for l in lines if l['count'] > 0)
    fns = {}
    for fn in f['functions']:
        fns[(fn['name'], fn['lineno'])] = max(fns.get((fn['name'], fn['lineno']), 0), fn['execution_count'])
    fcov = sum(1 for v in fns.values() if v > 0)
    for k in (top, 'all'):
        t = tot[k]; t[0] += len(lines); t[1] += cov; t[2] += len(fns); t[3] += fcov
    for (n, ln), v in fns.items():
        if v == 0: unfn.append((name, ln, n))
    # runs of uncovered lines (gaps of non-code allowed)
    cur = []
    for ln in sorted(lines_by):
        if lines_by[ln] == 0:
            if cur and ln - cur[-1] > 3:
                runs.append((len(cur), name, cur[0], cur[-1])); cur = []
            cur.append(ln)
        else:
            if cur: runs.append((len(cur), name, cur[0], cur[-1])); cur = []
    if cur: runs.append((len(cur), name, cur[0], cur[-1]))
for k in ('src', 'cli', 'all'):
    t = tot[k]
    print(f"{k:4s} lines {t[1]}/{t[0]} = {100*t[1]/t[0]:.1f}%   functions {t[3]}/{t[2]} = {100*t[3]/t[2]:.1f}%")
if len(sys.argv) > 2:
    print("\nnever-executed functions:", len(unfn))
    for u in sorted(unfn): print("  %s:%d %s" % u)
    print("\nlargest never-executed runs:")
    for r in sorted(runs, reverse=True)[:int(sys.argv[2])]: print("  %3d lines  %s:%d-%d" % r)
