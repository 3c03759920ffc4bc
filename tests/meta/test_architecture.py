"""The house has one way through (docs/DESIGN.md): the installed modules import each other without a circle, each
room imports only what it may, nothing installed imports this repository's tests, no module imports another's
private names, and an import inside a function is one of the few listed here with its reason.

The check reads every module's source with ``ast`` (module-level and function-level imports alike, relative ones
resolved), so a circle hidden behind a function-level import is still a circle. Importing ``a.b.c`` runs
``a/__init__.py`` and ``a/b/__init__.py`` too: those count as imported.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("oracles", "subjects", "reports", "lossproof")
FRAMEWORKS = ("torch", "jax", "jaxlib", "optax", "scipy", "numpy", "ml_dtypes")

#: the imports allowed inside a function: (module, imported module) -> why it is not at the top
_CLI_FIRST = ("a command checks its arguments before it imports what its work needs (torch, pytest, the "
              "oracle): a refusal answers in ~0.5 s, not after seconds of unused imports")
_OPTIONAL_JAX = "JAX is optional (the jax extra): imported when a JAX case or a JAX user function runs"
_USER_FRAMEWORK = ("a user's function loads only the framework it is written in (a NumPy or JAX user needs no "
                   "torch, and the reverse)")
_SWEEP_SUBJECT = "a sweep imports its subject's framework when it runs (a NumPy sweep needs no torch)"

LAZY = {
    # lossproof.cli's commands (hostile input: issue 18)
    ("lossproof.cli.battery", "lossproof"): _CLI_FIRST,
    ("lossproof.cli.battery", "lossproof.accept"): _CLI_FIRST,
    ("lossproof.cli.battery", "lossproof.config"): _CLI_FIRST,
    ("lossproof.cli.battery", "subjects.user"): _CLI_FIRST,
    ("lossproof.cli.battery", "pytest"): _CLI_FIRST,
    ("lossproof.cli.demo", "lossproof"): _CLI_FIRST,
    ("lossproof.cli.demo", "lossproof.demo"): _CLI_FIRST,
    ("lossproof.cli.detect", "numpy"): _CLI_FIRST,
    ("lossproof.cli.detect", "torch"): _CLI_FIRST,
    ("lossproof.cli.detect", "lossproof"): _CLI_FIRST,
    ("lossproof.cli.detect", "lossproof.detect"): _CLI_FIRST,
    ("lossproof.cli.detect", "lossproof.profiles"): _CLI_FIRST,
    ("lossproof.cli.detect", "lossproof.zoo"): _CLI_FIRST,
    ("lossproof.cli.hunt", "numpy"): _CLI_FIRST,
    ("lossproof.cli.hunt", "lossproof"): _CLI_FIRST,
    ("lossproof.cli.hunt", "lossproof.hunt"): _CLI_FIRST,
    ("lossproof.cli.report", "reports"): _CLI_FIRST,
    ("lossproof.cli.report", "reports.html"): _CLI_FIRST,
    ("subjects.array_subject", "scipy"): "SciPy is a test dependency: imported when its subject is asked for",
    ("lossproof.plugin", "torch"): "start-up time: the plugin loads in every pytest session, torch takes seconds",
    ("lossproof.plugin", "lossproof.cases"): "start-up time: imports the subjects (torch)",
    ("lossproof.strategies", "torch"): "to_torch, for a user's own tests: the strategies need no framework",
    ("lossproof.api", "torch"): "start-up time: lossproof's public API loads without a framework",
    ("lossproof.recorder", "torch"): "the environment names torch's kernels only where torch is installed",
    ("lossproof.recorder", "numpy._core._multiarray_umath"): "NumPy's private SIMD table, which moved in NumPy 2",
    ("lossproof.recorder", "numpy.core._multiarray_umath"): "NumPy's private SIMD table, before NumPy 2",
    ("lossproof.recorder", "importlib.metadata"): "only when the environment is recorded",
    ("lossproof.zoo.controls", "scipy"): "SciPy is a test dependency: a control that uses it imports it when run",
    # JAX, an optional framework (the jax extra): imported when a JAX case or a JAX user function runs, so that
    # lossproof works, and its jax cases skip with the reason, where JAX is not installed
    ("subjects.jax_subject", "jax"): _OPTIONAL_JAX,
    ("subjects.jax_subject", "jax.numpy"): _OPTIONAL_JAX,
    ("subjects.jax_subject", "ml_dtypes"): _OPTIONAL_JAX,
    ("subjects.jax_subject", "optax"): _OPTIONAL_JAX,
    ("subjects.jax_subject", "lossproof.cache"): "subjects sit below the engine (lossproof imports subjects): the "
                                                 "JAX compilation cache's directory is read when JAX first loads",
    ("subjects.user", "torch"): _USER_FRAMEWORK,
    ("subjects.user", "numpy"): _USER_FRAMEWORK,
    ("subjects.user", "subjects"): _USER_FRAMEWORK,
    ("subjects.user", "subjects.jax_subject"): _USER_FRAMEWORK,
    ("subjects.user", "oracles.tensors"): _USER_FRAMEWORK,
    ("lossproof.judge", "lossproof.cases"): "lossproof.cases imports judge's helpers (circular at the top): the "
                                            "JAX reference's cases are built when a JAX user function is judged",
    # the exhaustive sweeps: a subject's framework when its sweep runs, Dask only for float32 (the sweep extra)
    ("lossproof.sweep", "torch"): _SWEEP_SUBJECT,
    ("lossproof.sweep", "subjects"): _SWEEP_SUBJECT,
    ("lossproof.sweep", "subjects.torch_subject"): _SWEEP_SUBJECT,
    ("lossproof.sweep", "subjects.jax_subject"): _SWEEP_SUBJECT,
    ("lossproof.sweep", "distributed"): "Dask is optional (the sweep extra): only the float32 engine needs it",
    ("lossproof.cli.sweep", "lossproof"): _CLI_FIRST,
    ("lossproof.cli.sweep", "lossproof.sweep"): _CLI_FIRST,
    ("lossproof.cli.sweep", "lossproof.recorder"): _CLI_FIRST,
    ("lossproof.cli.sweep", "reports"): _CLI_FIRST,
    ("lossproof.cli.sweep", "reports.html"): _CLI_FIRST,
}


def _modules() -> dict:
    """{module name: path} of every installed module."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path):
    """[(imported module, line, at module level?, imported names)] of one module."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    in_functions = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                    for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
    out = []

    def level_ok(node):
        return id(node) not in in_functions

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out.append((a.name, node.lineno, level_ok(node), ()))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            names = tuple(a.name for a in node.names)
            out.append((mod, node.lineno, level_ok(node), names))
            for n in names:  # ``from package import module``
                if f"{mod}.{n}" in MODULES:
                    out.append((f"{mod}.{n}", node.lineno, level_ok(node), ()))
    return out


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _project(mod: str) -> list:
    """The project modules executed by importing ``mod`` (its parent packages too)."""
    parts = mod.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in MODULES]


def _graph() -> dict:
    """{module: the project modules it imports}; a module's own parent packages are not counted (Python is already
    running them when it imports the module: a package's __init__ re-exporting its modules is no circle)."""
    g = {name: set() for name in MODULES}
    for name, imps in IMPORTS.items():
        ancestors = set(_project(name))
        for mod, _, _, _ in imps:
            for target in _project(mod):
                if target not in ancestors:
                    g[name].add(target)
    return g


def _cycles(g: dict) -> list:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
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
                out.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_among_the_installed_modules():
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_circle():
    """The check itself can fail: a graph with a circle through three modules is found."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _transitive(name: str, g: dict) -> set:
    seen, todo = set(), [name]
    while todo:
        v = todo.pop()
        for w in g[v]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def _external(names) -> set:
    """The top-level external packages that ``names`` import directly."""
    out = set()
    for n in names:
        for mod, _, _, _ in IMPORTS[n]:
            if mod and mod.split(".")[0] not in PACKAGES:
                out.add(mod.split(".")[0])
    return out


#: the oracle's certified fast paths, the only oracle modules that may use NumPy (each derives its error bound)
FAST_PATHS = ("oracles.fast", "oracles.fast64", "oracles.univariate", "oracles.fast_grad", "oracles.fast_elementwise")


def test_the_oracle_imports_no_framework_and_nothing_above_it():
    """oracles/ is the ground truth: mpmath, and NumPy in its certified fast paths (the softmax family's and the
    univariate sweeps'), and nothing of the project above it (docs/DESIGN.md)."""
    for name in (n for n in MODULES if n.split(".")[0] == "oracles"):
        for mod, line, _, _ in IMPORTS[name]:
            top = mod.split(".")[0]
            assert top not in ("lossproof", "subjects", "reports"), f"{name}:{line} imports {mod}"
            assert top not in FRAMEWORKS or (top == "numpy" and name in FAST_PATHS), f"{name}:{line} imports {mod}"


def test_the_reports_import_no_framework():
    """reports/ reads results files: no framework, directly or through what it imports (NumPy only through the
    oracle's fast path, which the oracle package loads)."""
    g = _graph()
    for name in (n for n in MODULES if n.split(".")[0] == "reports"):
        reach = _transitive(name, g) | {name}
        frameworks = _external(reach) & set(FRAMEWORKS)
        assert frameworks <= {"numpy"}, f"{name} imports {frameworks}"
        assert not any(n.startswith("subjects.torch") for n in reach), name


def test_nothing_installed_imports_the_tests():
    for name, imps in IMPORTS.items():
        for mod, line, _, _ in imps:
            assert mod.split(".")[0] not in ("tests", "conftest"), f"{name}:{line} imports {mod}"


def test_no_module_imports_another_modules_private_names():
    for name, imps in IMPORTS.items():
        for mod, line, _, names in imps:
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            assert not private or mod.split(".")[0] not in PACKAGES, f"{name}:{line} imports {private} from {mod}"


def test_imports_inside_functions_are_listed_with_their_reason():
    found = set()
    for name, imps in IMPORTS.items():
        for mod, line, module_level, _ in imps:
            if not module_level:
                key = (name, mod)
                found.add(key)
                assert key in LAZY, f"{name}:{line} imports {mod} inside a function: move it to the top, or list " \
                                    f"it in LAZY with the reason"
    stale = set(LAZY) - found
    assert not stale, f"LAZY lists imports that no longer exist: {sorted(stale)}"
