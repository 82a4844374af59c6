#!/usr/bin/env python3
"""The symbol history of doc/abi.md, generated from the version script.

    abi-symbols.py MAP                          print the history table
    abi-symbols.py MAP --check MD [--header H]  check MD's table (and H)

The version script lib/dnngen.map has one node per release that added
symbols, named DNGEN_<major>.<minor> (DNGEN_0.1 is release 0.1.0): a
symbol's node is the release that introduced it. The table sits in MD
between the lines "<!-- symbols:begin -->" and "<!-- symbols:end -->".
--check fails when the table is not exactly what MAP gives (a symbol
missing, extra, or with another version), when a symbol appears in two
nodes, or when a node's name is malformed; it prints each difference.
With --header, the functions declared DNG_API in the public header H must
be exactly the symbols of MAP: a declaration missing from the version
script would be hidden, a script entry without a declaration is no API.
"""
import argparse
import re
import sys

BEGIN, END = "<!-- symbols:begin -->", "<!-- symbols:end -->"
NODE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\{")
SYMBOL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*;")


def parse(path):
    """[(symbol, version, node)] in map order; raises ValueError."""
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    out, seen, node, scope = [], {}, None, None
    for n, line in enumerate(text.split("\n"), 1):
        line = line.split("#", 1)[0]
        m = NODE.match(line)
        if m:
            node = m.group(1)
            v = re.fullmatch(r"DNGEN_(\d+)\.(\d+)", node)
            if not v:
                raise ValueError("%s:%d: node %s is not DNGEN_<major>."
                                 "<minor>" % (path, n, node))
            version = "%s.%s.0" % v.groups()
            scope = None
            continue
        if re.match(r"^\s*\}", line):
            node = None
            continue
        if re.match(r"^\s*global\s*:", line):
            scope = "global"
            continue
        if re.match(r"^\s*local\s*:", line):
            scope = "local"
            continue
        m = SYMBOL.match(line)
        if m and node and scope == "global":
            sym = m.group(1)
            if sym in seen:
                raise ValueError("%s:%d: %s is already in node %s"
                                 % (path, n, sym, seen[sym]))
            seen[sym] = node
            out.append((sym, version, node))
    if not out:
        raise ValueError("%s: no exported symbol found" % path)
    return out


def table(rows):
    lines = ["| Symbol | Since | Version node |",
             "|--------|-------|--------------|"]
    for sym, version, node in sorted(rows):
        lines.append("| `%s` | %s | `%s` |" % (sym, version, node))
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("map")
    ap.add_argument("--check", metavar="MD")
    ap.add_argument("--header", metavar="H")
    a = ap.parse_args()
    try:
        rows = parse(a.map)
    except (OSError, ValueError) as e:
        print("FAIL: %s" % e)
        return 1
    want = table(rows)
    if not a.check:
        print("\n".join(want))
        return 0
    with open(a.check, encoding="utf-8") as f:
        lines = f.read().split("\n")
    try:
        i, j = lines.index(BEGIN), lines.index(END)
    except ValueError:
        print("FAIL: %s has no %s ... %s section" % (a.check, BEGIN, END))
        return 1
    have = [l for l in lines[i + 1:j] if l.strip()]
    faults = ["missing or different: %s" % l for l in want if l not in have]
    faults += ["not in %s: %s" % (a.map, l) for l in have if l not in want]
    if a.header:
        with open(a.header, encoding="utf-8") as f:
            decl = set(re.findall(r"^DNG_API\b[^;{(]*?\b(dng_\w+)\s*\(",
                                  f.read(), re.M))
        mapped = {sym for sym, _, _ in rows}
        faults += ["declared in %s but not exported by %s: %s"
                   % (a.header, a.map, s) for s in sorted(decl - mapped)]
        faults += ["exported by %s but not declared in %s: %s"
                   % (a.map, a.header, s) for s in sorted(mapped - decl)]
    if not faults and have != want:
        faults.append("the rows are not sorted as %s prints them" % ap.prog)
    for f in faults:
        print("FAIL: " + f)
    print("%d symbols in %s; %s %s" % (len(rows), a.map, a.check,
                                      "differs" if faults else "agrees"))
    if faults:
        print("regenerate the table with: %s %s" % (ap.prog, a.map))
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
