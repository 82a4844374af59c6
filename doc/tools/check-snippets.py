#!/usr/bin/env python3
"""Check that the code shown in the documentation is the code that is
compiled and run.

    check-snippets.py DOC_DIR [--whole PAGE.md]...

Every fenced ```c or ```python block of DOC_DIR/*.md must appear, line for
line, in one file of DOC_DIR/snippets with the matching extension (.c,
.py): those files are built and run by the 'docs' test suite, so a block
that compiles nowhere cannot slip into a page. For a page named with
--whole (the tutorial), each snippet file it quotes must be quoted
completely and in order (blank lines aside): the page is the program.

Relative links and images of the pages ([text](file.md),
![alt](images/x.png)) must point to existing files, and every snippet file must be quoted by some
page. Exit status 0 when all holds, 1 otherwise, with one line per fault.
"""
import argparse
import os
import re
import sys

FENCE = re.compile(r"^(```+|~~~+)\s*([A-Za-z0-9_+-]*)\s*$")
LANGS = {"c": ".c", "python": ".py", "py": ".py"}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def blocks(text):
    """Yield (language, first line number, lines) for each fenced block."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        start = i + 1
        j = start
        while j < len(lines) and not lines[j].startswith(fence):
            j += 1
        yield lang, start + 1, lines[start:j]
        i = j + 1


def find(block, lines):
    """First index at which block occurs in lines as consecutive lines."""
    n = len(block)
    for i in range(len(lines) - n + 1):
        if lines[i:i + n] == block:
            return i
    return -1


def strip_blank_edges(block):
    while block and not block[0].strip():
        block = block[1:]
    while block and not block[-1].strip():
        block = block[:-1]
    return block


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("doc_dir")
    ap.add_argument("--whole", action="append", default=[],
                    help="a page that must quote its snippets completely")
    a = ap.parse_args()
    sdir = os.path.join(a.doc_dir, "snippets")
    snippets = {}
    for name in sorted(os.listdir(sdir)):
        ext = os.path.splitext(name)[1]
        if ext in (".c", ".py"):
            with open(os.path.join(sdir, name), encoding="utf-8") as f:
                snippets[name] = f.read().split("\n")
    faults = []
    quoted = set()
    pages = sorted(p for p in os.listdir(a.doc_dir) if p.endswith(".md"))
    for page in pages:
        path = os.path.join(a.doc_dir, page)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        # Per snippet file, the line ranges this page quotes, in page order.
        used = {}
        for lang, lineno, block in blocks(text):
            ext = LANGS.get(lang)
            if ext is None:
                continue
            block = strip_blank_edges(block)
            if not block:
                continue
            hits = [n for n, lines in snippets.items()
                    if n.endswith(ext) and find(block, lines) >= 0]
            if not hits:
                faults.append("%s:%d: this %s block is in no file of %s"
                              % (path, lineno, lang, sdir))
                continue
            # A block found in several files counts for the first one the
            # page already quotes, else for the first by name.
            name = next((n for n in hits if n in used), hits[0])
            quoted.add(name)
            used.setdefault(name, []).append((lineno, block))
        if page in a.whole:
            for name, parts in used.items():
                shown = [l for _, b in parts for l in b if l.strip()]
                real = [l for l in snippets[name] if l.strip()]
                if shown != real:
                    at = next((k for k, (x, y) in
                               enumerate(zip(shown, real)) if x != y),
                              min(len(shown), len(real)))
                    faults.append(
                        "%s: the blocks quoting snippets/%s do not add up "
                        "to the whole file, in order (first difference at "
                        "non-blank line %d of the file: %r)"
                        % (path, name, at + 1,
                           real[at] if at < len(real) else "<end>"))
        for m in LINK.finditer(text):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or \
                    target.startswith("#"):
                continue
            file_part = target.split("#", 1)[0]
            if not os.path.exists(os.path.join(a.doc_dir, file_part)):
                lineno = text.count("\n", 0, m.start()) + 1
                faults.append("%s:%d: link to %s, which does not exist"
                              % (path, lineno, target))
    for name in snippets:
        if name not in quoted:
            faults.append("%s: quoted by no page" % os.path.join(sdir, name))
    for f in faults:
        print(f)
    print("%d pages, %d snippet files, %d faults"
          % (len(pages), len(snippets), len(faults)))
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
