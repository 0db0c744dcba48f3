#!/usr/bin/env python3
"""Mutation score per module, from cargo-mutants' result lists (docs/mutants.md).

Usage: scripts/mutants-score.py [--min PERCENT] [--current LIST] OUT_DIR...

Each OUT_DIR is a cargo-mutants output folder (it holds mutants.out/, or is
one). Later folders override earlier ones mutant by mutant, matched by file
and description (not line, which moves as tests are added): pass a module's
full run first, then its `--missed` re-run.

Score = (caught + timeouts) / (caught + timeouts + missed); unviable mutants
do not compile and do not count. Mutants matching .cargo/mutants.toml's
exclude_re (equivalent ones, for runs made before a pattern was added) are
counted apart. With --current LIST (the output of `cargo mutants --list` on
the tree as it is now), results for mutants the tree no longer has (code
renamed or rewritten since the run) are dropped, and mutants of the listed
modules that no run tested are counted as untested. Exits 1 when a mechanism
module is below --min (default 90), or has untested mutants.
"""

import re
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

KINDS = {"caught.txt": "caught", "timeout.txt": "timeout", "missed.txt": "missed", "unviable.txt": "unviable"}
REQUIRED = ["process", "channel", "mq", "shm", "sync", "queue", "manager", "pool", "csp", "frame", "pyvalue"]
LINE = re.compile(r"^(src/[^:]+):(\d+:\d+): (.*)$")


def module_of(path):
    """src/mq/sysv.rs -> mq; src/queue.rs -> queue."""
    parts = Path(path).parts
    return parts[1] if len(parts) > 2 else Path(parts[1]).stem


def outcomes(folder):
    """[(file, line:col, description, kind)] for one output folder."""
    folder = Path(folder)
    if (folder / "mutants.out").is_dir():
        folder = folder / "mutants.out"
    found = []
    for name, kind in KINDS.items():
        f = folder / name
        if not f.exists():
            continue
        for line in f.read_text().splitlines():
            m = LINE.match(line.strip())
            if m:
                found.append((m.group(1), m.group(2), m.group(3), kind))
    return found


def merge(runs):
    """The first run, with every (file, description) a later run tested
    replaced by that run's results (a re-run tests all mutants that share a
    description, wherever they moved)."""
    merged = []
    for run in runs:
        retested = {(f, d) for f, _, d, _ in run}
        merged = [m for m in merged if (m[0], m[2]) not in retested] + run
    return merged


def main(argv):
    minimum, current = 90.0, None
    while argv[:1] in (["--min"], ["--current"]):
        if argv[0] == "--min":
            minimum = float(argv[1])
        else:
            current = [LINE.match(l.strip()) for l in Path(argv[1]).read_text().splitlines()]
            current = {(m.group(1), m.group(3)) for m in current if m}
        argv = argv[2:]
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    config = Path(__file__).resolve().parent.parent / ".cargo" / "mutants.toml"
    excluded = [re.compile(p) for p in tomllib.loads(config.read_text()).get("exclude_re", [])]
    counts = defaultdict(lambda: defaultdict(int))
    results = merge([outcomes(f) for f in argv])
    if not results:
        print(f"no results in {' '.join(argv)}: nothing to score", file=sys.stderr)
        return 2
    if current is not None:
        tested = {(f, d) for f, _, d, _ in results}
        modules = {module_of(f) for f, _, _, _ in results}
        gone = [r for r in results if (r[0], r[2]) not in current]
        results = [r for r in results if (r[0], r[2]) in current]
        results += [(f, "0:0", d, "untested") for f, d in current
                    if (f, d) not in tested and module_of(f) in modules]
        if gone:
            print(f"({len(gone)} results dropped: no longer generated (excluded since, or the code was renamed))")
    for path, at, description, kind in results:
        name = f"{path}:{at}: {description}"
        if any(p.search(name) for p in excluded):
            kind = "excluded"
        counts[module_of(path)][kind] += 1
    print(f"{'module':<10} {'caught':>6} {'timeout':>7} {'missed':>6} {'unviable':>8} {'excluded':>8} {'untested':>8}  score")
    low = []
    for module in sorted(counts):
        c = counts[module]
        viable = c["caught"] + c["timeout"] + c["missed"]
        score = 100.0 * (c["caught"] + c["timeout"]) / viable if viable else 100.0
        mark = ""
        if module in REQUIRED and score < minimum:
            low.append(module)
            mark = f"  below {minimum:g}%"
        if module in REQUIRED and c["untested"]:
            low.append(module)
            mark += "  not all tested"
        print(f"{module:<10} {c['caught']:>6} {c['timeout']:>7} {c['missed']:>6} {c['unviable']:>8} "
              f"{c['excluded']:>8} {c['untested']:>8}  {score:5.1f}%{mark}")
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
