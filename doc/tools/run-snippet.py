#!/usr/bin/env python3
"""Run one documentation snippet and check what it prints.

    run-snippet.py [options] -- COMMAND [ARGS...]

Options:
  --workdir DIR        run in DIR (created; files the snippet writes go
                       there)
  --expect REGEX       some output line must match REGEX (re.search)
  --check REGEX EXPR   the first line matching REGEX must satisfy EXPR, a
                       Python expression over the named groups of REGEX
                       (numbers converted to float), e.g.
                       --check 'accuracy (?P<a>[0-9.]+)' 'a > 0.7'
  --twice              run twice; the outputs must be identical (same
                       seed, same numbers)
  --reference EXE      also run EXE with ARGS[1:] (COMMAND is an
                       interpreter, ARGS[0] its script) in DIR/reference;
                       both outputs must be identical once the wall-clock
                       times "(1.2 s)" are removed: the C and Python
                       versions of a program compute the same numbers
  --file PATH REGEX    PATH (relative to DIR) must exist and its first
                       bytes, decoded as Latin-1, must match REGEX

Exit status: 0 when every check holds, 1 otherwise.
"""
import argparse
import os
import re
import subprocess
import sys

TIMES = re.compile(r"\s*\(\d+(\.\d+)? s\)")


def run(cmd, cwd):
    os.makedirs(cwd, exist_ok=True)
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    sys.stdout.write("$ %s\n%s" % (" ".join(cmd), p.stdout))
    if p.stderr:
        sys.stdout.write("[stderr]\n%s" % p.stderr)
    if p.returncode != 0:
        print("FAIL: exit status %d" % p.returncode)
        sys.exit(1)
    return p.stdout


def number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default=".")
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("--check", nargs=2, action="append", default=[])
    ap.add_argument("--twice", action="store_true")
    ap.add_argument("--reference")
    ap.add_argument("--file", nargs=2, action="append", default=[])
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        ap.error("no command")
    cwd = os.path.abspath(a.workdir)
    out = run(cmd, cwd)
    faults = []
    for rx in a.expect:
        if not re.search(rx, out, re.M):
            faults.append("no line matches %r" % rx)
    for rx, expr in a.check:
        m = re.search(rx, out, re.M)
        if not m:
            faults.append("no line matches %r" % rx)
            continue
        env = {k: number(v) for k, v in m.groupdict().items()}
        if not eval(expr, {"__builtins__": {}, "abs": abs}, env):
            faults.append("%r fails %s (values %s)" % (m.group(0), expr, env))
    for path, rx in a.file:
        full = os.path.join(cwd, path)
        try:
            with open(full, "rb") as f:
                head = f.read(256).decode("latin-1")
        except OSError as e:
            faults.append("%s: %s" % (path, e))
            continue
        if not re.match(rx, head):
            faults.append("%s starts with %r, not /%s/" % (path, head[:32],
                                                            rx))
    if a.twice:
        again = run(cmd, cwd)
        if TIMES.sub("", again) != TIMES.sub("", out):
            faults.append("a second run printed something else")
    if a.reference:
        ref = run([a.reference] + cmd[2:], os.path.join(cwd, "reference"))
        if TIMES.sub("", ref) != TIMES.sub("", out):
            faults.append("the output differs from that of %s"
                          % a.reference)
    for f in faults:
        print("FAIL: " + f)
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
