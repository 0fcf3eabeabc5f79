#!/usr/bin/env python3
"""Writes one benchmark's section into docs/performance.md, then prints it.

    ... | python3 scripts/perf-section.py NAME

The section comes on stdin, from `<!-- NAME -->` to `<!-- /NAME -->`; it replaces the section of
that name, or is added at the end when there is none. Used by the bench-*.sh scripts.
"""
import re
import sys

name = sys.argv[1]
section = sys.stdin.read().strip("\n")
start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
if not (section.startswith(start) and section.endswith(end)):
    sys.exit(f"perf-section: the section must run from {start} to {end}; docs/performance.md is unchanged")
path = "docs/performance.md"
text = open(path).read()
if start in text:
    text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda m: section, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
print(section)
