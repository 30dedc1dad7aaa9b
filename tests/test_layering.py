"""The layering the README declares, enforced: every import inside ``vigil`` (module-level
and function-level alike) must go down the table below, and no two modules may import each
other, directly or round a longer loop. A new upward import fails here, in CI."""

from __future__ import annotations

import ast
from pathlib import Path

import vigil

ROOT = Path(vigil.__file__).resolve().parent

# Foundation: small modules every layer may use.
FOUNDATION = {"vigil", "errors", "timeutil", "fsutil", "config", "progress"}

# What each top-level package or module of ``vigil`` may import, besides itself.
# Keep in step with the README's architecture table.
ALLOWED: dict[str, set[str]] = {
    "vigil": set(),
    "errors": set(),
    "timeutil": {"errors"},
    "fsutil": {"errors"},
    "progress": set(),
    "config": {"errors", "fsutil"},
    # below the service layer: models, search, persistence, accountability mechanics, runtimes
    "engine": FOUNDATION,
    "index": FOUNDATION | {"engine"},
    "store": FOUNDATION,
    "governance": FOUNDATION | {"store"},
    "evaluation": FOUNDATION | {"engine"},
    "synth": FOUNDATION | {"engine"},
    "retro": FOUNDATION | {"engine", "index"},
    "live": FOUNDATION | {"engine", "index"},
    # the service layer: every use case (permission, transaction, audit)
    "services": FOUNDATION | {"engine", "index", "store", "governance", "evaluation", "synth", "retro", "live"},
    # front ends: translate only
    "api": FOUNDATION | {"services"},
    "web": FOUNDATION | {"services"},
    # the cluster transport (NATS): a front end of the service layer that also hosts the
    # live runtime on worker nodes and gallery shards of the search index
    "cluster": FOUNDATION | {"services", "live", "index", "engine"},
    "server": FOUNDATION | {"services", "api", "web", "cluster"},
    # the CLI also runs the stateless tools (verify two photos, evaluate on a data set, render a
    # synthetic crowd) that touch no data directory, need no permission and write no audit
    "cli": FOUNDATION | {"services", "server", "cluster", "engine", "evaluation", "synth"},
    "__main__": {"cli"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every ``vigil.*`` module this file imports, anywhere in it."""
    tree = ast.parse(path.read_text(), str(path))
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "vigil")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "vigil":
                continue
            found.add(target)
            for alias in node.names:  # "from vigil.store import schema" imports a module
                candidate = f"{target}.{alias.name}"
                if (ROOT.parent / Path(*candidate.split("."))).with_suffix(".py").exists() or \
                        (ROOT.parent / Path(*candidate.split(".")) / "__init__.py").exists():
                    found.add(candidate)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in ROOT.rglob("*.py") if "migrations" not in p.parts}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "vigil"


def test_every_layer_is_declared():
    layers = {_layer(m) for m in _graph()}
    assert layers <= set(ALLOWED), f"undeclared packages: {sorted(layers - set(ALLOWED))}"


def test_no_upward_imports():
    bad = []
    for module, targets in sorted(_graph().items()):
        src = _layer(module)
        for target in sorted(targets):
            dst = _layer(target)
            if dst != src and dst not in ALLOWED[src]:
                bad.append(f"{module} -> {target}")
    assert not bad, f"{len(bad)} imports against the declared layering:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = _graph()
    known = set(graph)
    edges = {m: {t for t in ts if t in known and t != m} for m, ts in graph.items()}
    # a package's __init__ that re-exports its own modules is not a cycle with them
    for m in edges:
        edges[m] = {t for t in edges[m] if not (m.startswith(t + ".") )}
    cycles, state, stack = [], {}, []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


FRONT_ENDS = ("cli", "api", "web", "server")
FORBIDDEN_IN_FRONT_ENDS = ("session(", "audit.record", "require(", ".can(", "permission(")


def test_front_ends_hold_no_transaction_audit_or_permission_check():
    bad = []
    for front in FRONT_ENDS:
        base = ROOT / front
        files = list(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
        for path in files:
            if not path.exists():
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if any(token in line for token in FORBIDDEN_IN_FRONT_ENDS):
                    bad.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bad, "front ends must leave these to the service layer:\n" + "\n".join(bad)
