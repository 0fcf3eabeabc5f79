#!/usr/bin/env python3
"""Sizes of the Rust sources under src/: lines per .rs file (median, p90, max) and the
longest functions (lines from the `fn` line to its closing brace, unit tests included).

Usage: scripts/sizes.py [SRC_DIR] [HOW_MANY]   (defaults: src, 10)
Used for the before/after numbers of a restructuring; it reads files only.
"""
import pathlib
import re
import sys

FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")


def functions(path):
    """(lines, name, line number) of each fn in `path`, by brace counting from its `fn` line."""
    lines = path.read_text().splitlines()
    found = []
    for start, line in enumerate(lines):
        match = FN.match(line)
        if not match:
            continue
        depth, opened = 0, False
        for end in range(start, len(lines)):
            code = re.sub(r'"(?:\\.|[^"\\])*"|//.*', "", lines[end])
            depth += code.count("{") - code.count("}")
            opened = opened or "{" in code
            if opened and depth <= 0:
                found.append((end - start + 1, match.group(1), start + 1))
                break
            if not opened and code.rstrip().endswith(";"):
                break
    return found


def main():
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    most = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    files = sorted(src.rglob("*.rs"))
    sizes = sorted(len(f.read_text().splitlines()) for f in files)
    at = lambda q: sizes[round((len(sizes) - 1) * q)]
    print(f"{len(files)} files; lines per file: median {at(0.5)}, p90 {at(0.9)}, max {sizes[-1]}")
    everything = [(n, f"{f.relative_to(src.parent)}:{line} {name}") for f in files for n, name, line in functions(f)]
    for n, where in sorted(everything, reverse=True)[:most]:
        print(f"{n:5} {where}")


if __name__ == "__main__":
    main()
