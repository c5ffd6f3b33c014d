"""Package structure: module size limit, no import cycles, leaf packages import nothing above them."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("encoders", "hw_models", "neurosim", "analysis")
LEAVES = ("encoders", "hw_models")
MAX_LINES = 600
EXEMPT: set[str] = set()  # none: the GPU calibration has its own module (hw_models/gpu_calibration.py)


def _modules() -> list[str]:
    out = []
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            rel = p.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out.append(".".join(parts))
    return out


def test_no_package_module_over_600_lines():
    long = {}
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            rel = str(p.relative_to(ROOT))
            n = len(p.read_text(encoding="utf-8").splitlines())
            if n > MAX_LINES and rel not in EXEMPT:
                long[rel] = n
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def _module_imports(module: str) -> set[str]:
    """Package modules that ``module`` imports, at module level or lazily inside functions."""
    path = ROOT / (module.replace(".", "/") + ".py")
    is_pkg = not path.exists()
    if is_pkg:
        path = ROOT / module.replace(".", "/") / "__init__.py"
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):  # lazy imports in functions too
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                stem = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            names = [stem] + [f"{stem}.{a.name}" for a in node.names]
        for n in names:
            if n.split(".")[0] in PACKAGES:
                found.add(n)
    return found


def test_no_import_cycle():
    """The graph of imports between package modules (lazy ones included) is acyclic."""
    mods = set(_modules())
    graph = {m: {i for i in _module_imports(m) if i in mods and i != m} for m in mods}
    # importing a submodule also runs its package __init__
    for m in list(graph):
        graph[m] |= {".".join(i.split(".")[:k]) for i in graph[m] for k in range(1, i.count(".") + 1)} & mods
        graph[m].discard(m)
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                if not m.startswith(n + "."):  # a package's own submodules import through it
                    raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n, stack + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


_PROBE = r"""
import os, sys, importlib
for heavy in ("numpy", "torch", "h5py", "matplotlib.figure", "scipy", "tqdm.auto"):
    try:
        importlib.import_module(heavy)  # third-party, imported once; each package module in a fork
    except ImportError:
        pass
failed = []
for mod in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            importlib.import_module(mod)
            leaf = mod.split(".")[0]
            if leaf in {leaves}:
                bad = sorted(m for m in sys.modules if m.split(".")[0] in {packages} and m.split(".")[0] != leaf)
                if bad:
                    print(f"leaf module {{mod}} imported {{bad}}", file=sys.stderr)
                    code = 1
        except BaseException as e:
            print(f"{{mod}}: {{type(e).__name__}}: {{e}}", file=sys.stderr)
            code = 1
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status:
        failed.append(mod)
if failed:
    raise SystemExit(f"failed: {{failed}}")
"""


def test_each_module_imports_alone():
    """Each package module imports in a fresh interpreter state (a forked child of one that has only
    third-party libraries loaded): an import-order dependency or cycle would fail here, and
    modules of the leaf packages pull in nothing from the other packages."""
    probe = _PROBE.format(leaves=set(LEAVES), packages=set(PACKAGES))
    r = subprocess.run([sys.executable, "-c", probe, *_modules()], cwd=ROOT, capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
