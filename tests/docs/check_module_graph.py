#!/usr/bin/env python3
"""docs/modules.md draws the module graph that lib/*/CMakeLists.txt declares.

The picture (a mermaid graph) shows the transitive reduction of the DEPS of every
facebatch_module(); this check parses both and fails on any difference, so the picture a
newcomer reads first cannot go stale. It also fails on a dependency cycle.
Usage: check_module_graph.py SOURCE_DIR
"""
import pathlib
import re
import sys


def declared(src):
    deps = {}
    for cm in sorted((src / "lib").glob("*/CMakeLists.txt")):
        text = cm.read_text()
        m = re.search(r"facebatch_module\(\s*NAME\s+(\w+)(.*?)\)", text, re.S)
        if not m:
            continue
        body = m.group(2)
        d = re.search(r"DEPS\s+(.*?)(?:\bLIBS\b|\bTORCH\b|$)", body, re.S)
        deps[m.group(1)] = set(d.group(1).split()) if d else set()
    return deps


def closure(deps):
    out = {}

    def visit(m, stack):
        if m in out:
            return out[m]
        if m in stack:
            sys.exit(f"dependency cycle: {' -> '.join(stack + [m])}")
        acc = set()
        for d in deps.get(m, ()):
            acc |= {d} | visit(d, stack + [m])
        out[m] = acc
        return acc

    for m in deps:
        visit(m, [])
    return out


def reduction(deps):
    c = closure(deps)
    return {(m, d) for m in deps for d in c[m] if not any(d in c[x] for x in c[m] if x != d)}


def drawn(doc):
    text = doc.read_text()
    block = re.search(r"```mermaid\n(.*?)```", text, re.S)
    if not block:
        sys.exit(f"{doc}: no mermaid block")
    return set(re.findall(r"^\s*(\w+)\s*-->\s*(\w+)\s*$", block.group(1), re.M))


def main():
    src = pathlib.Path(sys.argv[1])
    deps = declared(src)
    if len(deps) < 5:
        sys.exit(f"only {len(deps)} modules found under {src / 'lib'}")
    want = reduction(deps)
    have = drawn(src / "docs" / "modules.md")
    missing, extra = want - have, have - want
    for m, d in sorted(missing):
        print(f"docs/modules.md lacks the edge {m} --> {d} (declared in lib/{m}/CMakeLists.txt)")
    for m, d in sorted(extra):
        print(f"docs/modules.md draws {m} --> {d}, which lib/{m}/CMakeLists.txt does not imply (or is redundant)")
    if missing or extra:
        return 1
    print(f"module graph: {len(deps)} modules, {len(want)} edges (transitive reduction) drawn as declared")
    return 0


if __name__ == "__main__":
    sys.exit(main())
