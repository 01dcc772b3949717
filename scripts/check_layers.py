#!/usr/bin/env python3
"""Checks libhz3/src's include graph against the layer table of libhz3/src/README.md.

Every .h/.cc file of the folder must be in one row of the table; every `#include "x"` naming a
file of the folder must stay in the includer's layer or go to a lower one; no include cycle
between files. Prints the graph bottom-up (layer, file -> what it includes), then one line per
violation. Exit status 0 when clean, 1 on a violation, 2 when the table cannot be read.
Not a compiler: includes inside #if branches count as written, system includes are ignored.

Usage: check_layers.py [SRC_DIR]   (default: libhz3/src next to this script's parent)
"""
import os
import re
import sys

PUBLIC = ("hz3/",)  # the public header folder (libhz3/include): allowed from every layer
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def read_layers(readme):
    """The table rows `| layer | files… | … |` below the header row, bottom-up."""
    layers = []
    with open(readme, encoding="utf-8") as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not line.lstrip().startswith("|") or len(cells) < 2:
                continue
            if cells[0] == "layer" or set(cells[0]) <= set("-: "):
                continue
            layers.append((cells[0], cells[1].split()))
    return layers


def includes_of(path):
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE_RE.match(line)
            if m:
                out.append((m.group(1), n))
    return out


def find_cycle(graph):
    """One include cycle as a list of files (first == last), or None."""
    state = {}  # 1 on the stack, 2 done
    stack = []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in graph.get(u, ()):
            if state.get(v) == 1:
                return stack[stack.index(v):] + [v]
            if v not in state:
                c = visit(v)
                if c:
                    return c
        stack.pop()
        state[u] = 2
        return None

    for u in sorted(graph):
        if u not in state:
            c = visit(u)
            if c:
                return c
    return None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "libhz3", "src")
    readme = os.path.join(src, "README.md")
    try:
        layers = read_layers(readme)
    except OSError as e:
        print(f"check_layers: cannot read {readme}: {e.strerror}")
        return 2
    if not layers:
        print(f"check_layers: no layer table in {readme}")
        return 2
    rank = {}
    errors = []
    for i, (name, files) in enumerate(layers):
        for f in files:
            if f in rank:
                errors.append(f"{f}: listed in two layers ({layers[rank[f]][0]}, {name})")
            rank[f] = i
    files = sorted(f for f in os.listdir(src) if f.endswith((".h", ".cc")))
    for f in files:
        if f not in rank:
            errors.append(f"{f}: in no layer of README.md")
    for f in sorted(rank):
        if f not in files:
            errors.append(f"{f}: listed in README.md but not in {src}")

    graph = {}
    print("include graph of libhz3/src, bottom-up (file -> the files of the folder it includes):")
    by_layer = sorted(files, key=lambda f: (rank.get(f, len(layers)), f))
    for f in by_layer:
        local = []
        for inc, line in includes_of(os.path.join(src, f)):
            if inc.startswith(PUBLIC):
                local.append(inc)
                continue
            if inc not in files:
                errors.append(f"{f}:{line}: includes \"{inc}\", not a file of {src}")
                continue
            local.append(inc)
            graph.setdefault(f, []).append(inc)
            if f in rank and inc in rank and rank[inc] > rank[f]:
                errors.append(
                    f"{f}:{line}: includes {inc} upward ({layers[rank[f]][0]} -> "
                    f"{layers[rank[inc]][0]})"
                )
        layer = layers[rank[f]][0] if f in rank else "?"
        print(f"  {layer:8} {f:16} -> {' '.join(local) if local else '-'}")
    cycle = find_cycle(graph)
    if cycle:
        errors.append("include cycle: " + " -> ".join(cycle))
    for e in errors:
        print("violation: " + e)
    print(f"{len(files)} files, {sum(len(v) for v in graph.values())} includes, "
          f"{len(errors)} violations")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
