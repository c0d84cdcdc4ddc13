"""The shape of the house, read from the code's own imports (ast): no import cycles, the
plugin contract at the bottom, the example package written against the contract alone,
small files, and ``theseus --help`` without torch.

Every import counts: top-level, inside functions, and under ``if TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "theseus_cli": ROOT / "theseus_cli",
    "theseus_builtin": ROOT / "plugins" / "theseus_builtin",
    "theseus_example": ROOT / "plugins" / "theseus-example" / "src" / "theseus_example",
}
OURS = tuple(PACKAGES)
#: libraries slow enough to import that a function may import them (or a module of ours
#: that imports one at its top) where it needs them, so that ``theseus --help`` stays fast
HEAVY = {"torch", "transformers", "datasets", "onnx", "onnxruntime", "onnxscript", "optuna",
         "matplotlib", "accelerate", "sklearn", "scipy", "safetensors", "numpy",
         "huggingface_hub", "tensorboard", "mlflow", "wandb"}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for pkg, root in PACKAGES.items():
        for f in root.rglob("*.py"):
            parts = [pkg, *f.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module of ours a dotted name lives in (``a.b.func`` -> ``a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, list[str], bool, ast.AST]]:
    """``(imported dotted name, names taken, at top level?, node)`` for every import."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                if path.name != "__init__.py":
                    parts = parts[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            out.append((base, [a.name for a in node.names], id(node) in top, node))
        elif isinstance(node, ast.Import):
            out.extend((a.name, [], id(node) in top, node) for a in node.names)
    return out


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for m in MODULES:
        for base, names, _, _ in _imports(m):
            targets = [f"{base}.{n}" for n in names] or [base]
            for t in targets:
                r = _resolve(t)
                if r and r != m:
                    edges[m].add(r)
    return edges


def _heavy(module: str, seen: set[str] | None = None) -> bool:
    """Whether importing ``module`` imports a heavy library (through its top-level imports)."""
    seen = set() if seen is None else seen
    if module in seen:
        return False
    seen.add(module)
    for base, names, top, _ in _imports(module):
        if not top:
            continue
        if base.split(".")[0] in HEAVY:
            return True
        for t in [f"{base}.{n}" for n in names] or [base]:
            r = _resolve(t)
            if r and r != module and _heavy(r, seen):
                return True
    return False


def test_no_import_cycles():
    edges = _edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_the_contract_is_at_the_bottom():
    """theseus_cli.plugin imports nothing of theseus but the error types and itself."""
    for m, targets in _edges().items():
        if m == "theseus_cli.plugin" or m.startswith("theseus_cli.plugin."):
            outside = {t for t in targets if not t.startswith("theseus_cli.plugin")}
            assert outside <= {"theseus_cli.errors"}, (m, outside)


def test_the_example_package_uses_the_contract_only():
    for m in MODULES:
        if not m.startswith("theseus_example"):
            continue
        for base, _, _, _ in _imports(m):
            if base.split(".")[0] in ("theseus_cli", "theseus_builtin"):
                assert base == "theseus_cli.plugin", (m, base)


def test_function_level_imports_of_ours_only_defer_heavy_modules():
    """Imports sit at the top of a file; a function imports a module of ours only when that
    module imports a heavy library (torch, ...) at its top, for ``theseus --help``'s sake."""
    bad = []
    for m in MODULES:
        for base, names, top, node in _imports(m):
            if top or base.split(".")[0] not in OURS:
                continue
            targets = {_resolve(t) for t in [f"{base}.{n}" for n in names] or [base]} - {None}
            if not any(_heavy(t) for t in targets):
                bad.append(f"{MODULES[m].relative_to(ROOT)}:{node.lineno} imports {base}")
    assert not bad, "\n".join(bad)


def test_no_private_name_is_imported_across_modules():
    bad = []
    for m in MODULES:
        for base, names, _, node in _imports(m):
            if base.split(".")[0] in OURS:
                bad += [f"{MODULES[m].relative_to(ROOT)}:{node.lineno} {base}.{n}"
                        for n in names if n.startswith("_")]
    assert not bad, "\n".join(bad)


def test_files_stay_small():
    big = {str(p.relative_to(ROOT)): n for p in MODULES.values()
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, big


def test_help_imports_no_heavy_library():
    """Loading the CLI and every registered plugin (what ``theseus --help`` does) imports
    no heavy library."""
    code = ("import sys, theseus_cli.cli.app as app\n"
            "from theseus_cli.plugin import registry\n"
            "[registry.available(g) for g in registry.BASES]\n"
            f"heavy = sorted(set({sorted(HEAVY)!r}) & set(m.split('.')[0] for m in sys.modules))\n"
            "print(heavy)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
