"""The import graph of `autograder/`, read from the code: circles, upward imports, and the README's drawing.

    python scripts/import_graph.py           # the drawing and the figures, as the README shows them
    python scripts/import_graph.py --check   # exit 1, one line per problem, on a circle or an upward import

Every import counts, those inside functions too: a circle that only closes
at run time is still a circle for the reader. The folders are ranked from
the bottom up (`FLOORS`); a module may import from its own floor or below,
never above, and no two modules may import each other, directly or not.
"""

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "autograder"

# Bottom to top. A module belongs to the longest prefix listed; the package's own top-level modules are the
# student's front door, except `autograder.cli`, the one command, which dispatches to the grader's verbs.
FLOORS = [
    ("autograder.datasets", "the course's data, as keras.datasets"),
    ("autograder.run", "one grading run: its record and steps, the jail, safe files, the kit"),
    ("autograder.front", "the student's front door: checks, handdrawn, check, Validate"),
    ("autograder.nbgrader_exchange", "nbgrader's exchange, the students' side"),
    ("autograder.grader.course", "the course on disk"),
    ("autograder.grader.hidden_tests", "hidden tests: vocabulary, scorer (inside the jail), launcher (outside)"),
    ("autograder.grader.pages", "what people read: feedback, inert pages"),
    ("autograder.grader.classroom", "grading a class: grade, grade-all, worker, reference"),
    ("autograder.grader.tools", "course tools: publish, otter, drawings check"),
    ("autograder.grader.hub", "the hub, the lab, Formgrader, collect"),
    ("autograder.grader.cli", "the instructors' verbs"),
    ("autograder.cli", "the `autograder` command"),
]
FRONT = "autograder.front"
# Old module paths that still import (`autograder/moved.py`, the grader's in its __init__): aliases, not arrows.
IGNORED = {"autograder.moved", "autograder.grader", "autograder.__main__"}


def modules():
    """``{module: path}`` of every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def floor(module):
    """The index in `FLOORS` of ``module``'s floor."""
    names = [name for name, _ in FLOORS]
    best = max((n for n in names if module == n or module.startswith(n + ".")), key=len, default=None)
    if best is None:
        best = FRONT if module.count(".") == 1 or module == "autograder" else None
    if best is None:
        raise ValueError(f"{module} is on no floor of scripts/import_graph.py")
    return names.index(best)


def arrows(found=None):
    """``{module: {module it imports}}`` within the package, imports inside functions included."""
    found = found or modules()
    graph = defaultdict(set)
    for module, path in found.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in found]
                if not candidates or any(f"{target}.{a.name}" not in found for a in node.names):
                    candidates.append(target)
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            for target in candidates:
                # `from autograder import UserError` is the package's one shared name, not a dependency
                if target in found and target != module and target != "autograder" and module not in IGNORED:
                    graph[module].add(target)
    return graph


def circles(graph):
    """Each strongly connected set of more than one module (Tarjan), sorted."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def upward(graph):
    """``(importer, imported)`` where the imported module lives on a higher floor."""
    return sorted((a, b) for a, targets in graph.items() for b in targets if floor(b) > floor(a))


def depth(graph):
    """The longest chain of imports, in modules (the graph has no circle)."""
    memo = {}

    def longest(v):
        if v not in memo:
            memo[v] = 1 + max((longest(w) for w in graph.get(v, ())), default=0)
        return memo[v]

    return max((longest(v) for v in list(graph)), default=1)


def problems():
    graph = arrows()
    found = [f"import circle: {' -> '.join(group)}" for group in circles(graph)]
    found += [f"upward import: {a} imports {b} ({FLOORS[floor(b)][0]} is above {FLOORS[floor(a)][0]})"
              for a, b in upward(graph)]
    return found


def drawing():
    """The README's drawing: one box per floor, one arrow per pair of floors that import, and the figures."""
    found, graph = modules(), arrows()
    lines = {m: len(p.read_text().splitlines()) for m, p in found.items()}
    per_floor = defaultdict(int)
    for m in found:
        if m not in IGNORED:
            per_floor[floor(m)] += 1
    folders = defaultdict(int)
    for m, p in found.items():
        folders[p.parent.relative_to(ROOT).as_posix()] += lines[m]
    largest = max(folders, key=folders.get)
    pairs = sorted({(floor(a), floor(b)) for a, bs in graph.items() for b in bs if floor(a) != floor(b)})
    out = ["```mermaid", "flowchart BT"]
    for i, (name, what) in enumerate(FLOORS):
        out.append(f'    f{i}["{name.replace("autograder.", "")}<br/>{what}<br/>{per_floor[i]} module{"s" if per_floor[i] != 1 else ""}"]')
    out += [f"    f{a} --> f{b}" for a, b in pairs]
    out.append("```")
    total = sum(lines[m] for m in found if m not in IGNORED)
    out.append("")
    out.append(f"{len(found) - len(IGNORED)} modules, "
               f"{sum(len(v) for v in graph.values())} import arrows, {len(circles(graph))} circles; "
               f"the longest chain of imports is {depth(graph)} modules; the largest folder, `{largest}/`, "
               f"holds {folders[largest] / total:.0%} of the lines. An arrow points from a floor to one it imports "
               "from (`python scripts/import_graph.py`, checked by tests/test_layout.py).")
    return "\n".join(out)


def main(argv):
    if "--check" in argv:
        found = problems()
        for line in found:
            print(line)
        return 1 if found else 0
    print(drawing())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
