#!/usr/bin/env python3
"""Usage: scripts/check-imports.py [SRC_DIR]

Import circles between hsmca's source files, and imports across layers the design forbids
(issue 15). Every `crate::`/`super::`/`self::` path outside a file's `mod tests` is an edge from
that file to the module file it names; a path to one's own parent module is not counted (a
parent re-exports its children). Prints each circle and each forbidden import; exits 1 if
there is one.
"""
import glob
import os
import re
import sys

# What each top-level module may use. The token layer knows nothing of X.509 and the
# certificate layer nothing of PKCS#11; `ca` is the bridge; only `cli` parses and prints.
LAYERS = {
    "token": set(),
    "x509": set(),
    "notice": set(),
    "output": set(),
    "error": {"output", "token", "x509"},
    "ca": {"error", "notice", "output", "token", "x509"},
    "k8s": {"ca", "error", "notice", "output", "x509"},
    "ceremony": {"ca", "error", "k8s", "notice", "output", "token", "x509"},
}

root = sys.argv[1] if len(sys.argv) > 1 else "src"
mods = {}
for f in glob.glob(f"{root}/**/*.rs", recursive=True):
    rel = os.path.relpath(f, root)[:-3].split("/")
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    mods[tuple(rel)] = f


def resolve(path):
    """The module file a path lands in: its longest prefix that is a module."""
    for n in range(len(path), -1, -1):
        if tuple(path[:n]) in mods:
            return tuple(path[:n])
    return None


def absolute(m, parts):
    """`parts` (crate::/super::/self:: path) from module `m`, as a path from the crate root."""
    if parts[0] == "crate":
        return parts[1:]
    if parts[0] == "self":
        return list(m) + parts[1:]
    cur = list(m)
    while parts and parts[0] == "super":
        cur, parts = cur[:-1], parts[1:]
    return cur + parts


graph = {m: set() for m in mods}
for m, f in mods.items():
    text = open(f).read()
    text = re.split(r"\n#\[cfg\(test\)\]\s*\nmod tests", text)[0]
    text = re.sub(r"//[^\n]*", "", text)
    paths = [p.split("::") for p in re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", text)]
    for base, group in re.findall(r"use ((?:crate|super|self)(?:::\w+)*)::\{([^}]*)\}", text):
        for item in re.split(r"[,\s]+", group):
            if item and item != "self":
                paths.append(base.split("::") + item.split("::")[:1])
    for parts in paths:
        target = resolve(absolute(m, parts))
        if target in (None, m, ()) or m[: len(target)] == target:
            continue
        graph[m].add(target)

# Tarjan's strongly connected components.
sys.setrecursionlimit(10000)
index, low, stack, on, circles, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            circles.append(comp)


for v in graph:
    if v not in index:
        visit(v)
for comp in circles:
    print("import circle:", " <-> ".join("::".join(x) for x in sorted(comp)))
crossings = []
for m, targets in sorted(graph.items()):
    if not m or m[0] not in LAYERS:
        continue
    for t in sorted(targets):
        if t[0] != m[0] and t[0] not in LAYERS[m[0]]:
            crossings.append((m, t))
            print(f"layer crossed: {'::'.join(m)} uses {'::'.join(t)} ({mods[m]})")
sys.exit(1 if circles or crossings else 0)
