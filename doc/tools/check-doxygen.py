#!/usr/bin/env python3
"""Run Doxygen on the API reference and check the result.

    check-doxygen.py DOXYGEN DOXYFILE MAP HEADER OUTDIR

Runs DOXYGEN with DOXYFILE, its output and warning log redirected to
OUTDIR and warnings collected rather than fatal, then fails when:
- Doxygen exits non-zero or logs any warning;
- an exported function of the version script MAP has no entry in the
  function index (undocumented, or hidden from Doxygen);
- a status code of HEADER's DNG_STATUS_MAP has no entry in the
  enum-value index (the X-macro was not expanded);
- a public macro (the version macros of the generated dnngen-version.h,
  DNG_MAX_DIMS, DNG_STATUS_MAP) has no entry in the macro index.
"""
import glob
import os
import re
import subprocess
import sys


def index_names(outdir, stem):
    """Names listed by Doxygen's global index pages ("<li>name&#160;:"),
    each entry a documented member."""
    names = set()
    for path in glob.glob(os.path.join(outdir, "html", stem + "*.html")):
        with open(path, encoding="utf-8") as f:
            names.update(re.findall(r"<li>([^&<]+)&#160;", f.read()))
    return names


def main():
    if len(sys.argv) != 6:
        print(__doc__)
        return 2
    doxygen, doxyfile, mapfile, header, outdir = sys.argv[1:]
    os.makedirs(outdir, exist_ok=True)
    log = os.path.join(outdir, "warnings.log")
    with open(doxyfile, encoding="utf-8") as f:
        conf = f.read()
    # Later assignments override earlier ones in a Doxyfile.
    conf += ("\nOUTPUT_DIRECTORY = %s\nWARN_LOGFILE = %s\n"
             "WARN_AS_ERROR = NO\nQUIET = YES\n" % (outdir, log))
    if os.path.exists(log):
        os.remove(log)
    p = subprocess.run([doxygen, "-"], input=conf, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    faults = []
    if p.stdout.strip():
        print(p.stdout)
    if p.returncode != 0:
        faults.append("doxygen exited with status %d" % p.returncode)
    warnings = ""
    if os.path.exists(log):
        with open(log, encoding="utf-8") as f:
            warnings = f.read().strip()
    if warnings:
        print(warnings)
        faults.append("%d warning lines" % len(warnings.split("\n")))

    with open(mapfile, encoding="utf-8") as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    exported = set(re.findall(r"^\s*(dng_\w+)\s*;", text, re.M))
    functions = {n.rstrip("()") for n in index_names(outdir, "globals_func")}
    for sym in sorted(exported - functions):
        faults.append("%s is exported but absent from the function index"
                      % sym)

    with open(header, encoding="utf-8") as f:
        h = f.read()
    m = re.search(r"#define DNG_STATUS_MAP\(X\)(.*?)\n\n", h, re.S)
    codes = ["DNG_" + c for c in re.findall(r"X\((\w+),", m.group(1))] \
        if m else []
    if not codes:
        faults.append("no DNG_STATUS_MAP found in %s" % header)
    values = index_names(outdir, "globals_eval")
    for code in codes:
        if code not in values:
            faults.append("%s has no entry in the enum-value index" % code)

    # The public macros, the version ones from the generated header
    # included.
    defines = index_names(outdir, "globals_defs")
    for name in ("DNG_VERSION", "DNG_VERSION_MAJOR", "DNG_VERSION_MINOR",
                 "DNG_VERSION_PATCH", "DNG_VERSION_STRING", "DNG_MAX_DIMS",
                 "DNG_STATUS_MAP"):
        if name not in defines:
            faults.append("%s has no entry in the macro index" % name)

    for f in faults:
        print("FAIL: " + f)
    print("%d exported functions, %d status codes checked; %s"
          % (len(exported), len(codes), "FAILED" if faults else "ok"))
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
