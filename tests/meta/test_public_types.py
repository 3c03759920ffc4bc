"""Type hints on every public function of the oracle and of lossproof's public strategies, verdicts and catalogue:
every public module-level function, and every public method of a public class, of those modules annotates all its
parameters (``self`` and ``cls`` aside) and its return type. Public means a name that does not start with an
underscore; private helpers may stay unannotated.

The check reads the sources with ``ast``, so it needs no import. mypy enforces the same for these modules
(``disallow_incomplete_defs`` in pyproject.toml's ``[tool.mypy]`` overrides); this test also catches a public
function with no annotation at all, which mypy leaves alone.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATHS = sorted((ROOT / "oracles").glob("*.py")) + [ROOT / "lossproof" / f"{name}.py"
                                                   for name in ("strategies", "verdicts", "catalogue", "api",
                                                                "accept", "config", "regimes")]

Function = ast.FunctionDef | ast.AsyncFunctionDef


def _public(name: str) -> bool:
    return not name.startswith("_")


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of a module or class body, those inside if/try/with blocks included (a definition under
    ``if TYPE_CHECKING:`` or in an ``except ImportError:`` fallback is still at that level), not those inside
    functions or nested classes."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            yield from _top_level(node.body)
            yield from _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            yield from _top_level(node.body)
            for handler in node.handlers:
                yield from _top_level(handler.body)
            yield from _top_level(node.orelse)
            yield from _top_level(node.finalbody)
        elif isinstance(node, ast.With):
            yield from _top_level(node.body)


def _public_functions(tree: ast.Module) -> Iterator[tuple[str, Function, bool]]:
    """(qualified name, definition, is a method) of every public function and public method of a public class."""
    for node in _top_level(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _public(node.name):
            yield node.name, node, False
        elif isinstance(node, ast.ClassDef) and _public(node.name):
            for member in _top_level(node.body):
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)) and _public(member.name):
                    yield f"{node.name}.{member.name}", member, True


def _missing(fn: Function, method: bool) -> list[str]:
    """What a definition leaves unannotated: parameter names, and "return"."""
    a = fn.args
    positional = a.posonlyargs + a.args
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in fn.decorator_list)
    if method and not static and positional and positional[0].arg in ("self", "cls"):
        positional = positional[1:]
    params = positional + a.kwonlyargs + [p for p in (a.vararg, a.kwarg) if p is not None]
    missing = [p.arg for p in params if p.annotation is None]
    if fn.returns is None:
        missing.append("return")
    return missing


def _offenders() -> list[str]:
    out = []
    for path in PATHS:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        rel = path.relative_to(ROOT).as_posix()
        for name, fn, method in _public_functions(tree):
            missing = _missing(fn, method)
            if missing:
                out.append(f"{rel}:{fn.lineno} {name}: {', '.join(missing)}")
    return out


def test_the_checked_modules_exist():
    assert len(PATHS) > 3 and all(p.is_file() for p in PATHS), PATHS


def test_public_functions_are_fully_annotated():
    offenders = _offenders()
    assert not offenders, (f"{len(offenders)} public function(s) without a complete annotation (parameter names, "
                           "or return):\n" + "\n".join(offenders))


def test_the_check_sees_what_it_should():
    src = '''
def f(x, y: int) -> int: ...
def g(x: int): ...
def _private(x): ...
class A:
    def m(self, x): ...
    @classmethod
    def c(cls) -> None: ...
    @staticmethod
    def s(self) -> None: ...
    def _p(self, y): ...
class _B:
    def m(self, x): ...
try:
    def h(*args, **kwargs) -> None: ...
except ImportError:
    pass
'''
    found = {name: _missing(fn, method) for name, fn, method in _public_functions(ast.parse(src))}
    assert found == {"f": ["x"], "g": ["return"], "A.m": ["x", "return"], "A.c": [], "A.s": ["self"],
                     "h": ["args", "kwargs"]}
