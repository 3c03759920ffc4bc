"""``[tool.lossproof]`` in a user's pyproject.toml: the configuration the pytest plugin and the command line read.

    [tool.lossproof]
    framework = "torch"                       # torch, numpy or jax (default: inferred from each function's code)
    profile = "ci"                            # dev, ci (default) or thorough
    formats = ["float32", "bfloat16"]         # default: all four
    results = "out/lossproof.json"            # default: out/results.json
    strict = false                            # gate on behaviours shared with the framework's reference too

    [tool.lossproof.subjects]                 # the functions the battery checks (pytest --pyargs lossproof.battery)
    cross_entropy = "mypackage.losses:cross_entropy"
    softplus = ["mypackage.ops:softplus", "mypackage.ops:softplus_fast"]
    kl_div = {target = "mypackage.losses:kl", returns = "batchmean", fixed = {log_target = true}}

A subject is "module:function", a table of its target and its own conventions (``SUBJECT_KEYS``: framework,
class_axis, returns, targets, fixed, as ``lossproof check``'s options), or a list of either. Its own conventions
win over the plugin's command-line ones (``--lossproof-class-axis`` ...), which apply to the subjects that set none.

    [[tool.lossproof.accept]]                 # findings accepted with a reason (lossproof.accept)
    behaviour = "torch-ce-sum-overflow"
    reason = "our batches never sum past 3e38"

Every key is optional. A value of the wrong type, an unknown key or an unknown name is a ``ConfigError`` with one
line naming the file and the key: a configuration error is never ignored.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from subjects.user import CLASS_AXES, SubjectError, UserSubject, check_conventions, check_fixed
from subjects.user import load as load_subject

from . import catalogue, profiles

__all__ = ["Config", "ConfigError", "Subject", "load", "find_pyproject", "read_toml"]

KEYS = ("framework", "profile", "formats", "results", "strict", "subjects", "accept", "losses")
FRAMEWORKS = ("torch", "numpy", "jax")
#: a subject's own table: its function and the conventions it is called under (subjects.user)
SUBJECT_KEYS = ("target", "framework", "class_axis", "returns", "targets", "fixed")


class ConfigError(ValueError):
    """A ``[tool.lossproof]`` table that cannot be used: one line, naming the file and the key."""


@dataclass(frozen=True)
class Subject:
    """A function to check: its loss, its target ("module:function" or "path/file.py:function") and the
    conventions it set for itself (None: the run's own apply; ``fixed`` () is an explicit "none built in").
    ``where`` names it in errors."""

    loss: str
    target: str
    framework: str | None = None
    class_axis: int | None = None
    returns: str | None = None
    targets: str | None = None
    fixed: tuple | None = None
    where: str = ""

    def own(self) -> dict:
        """The conventions it sets for itself, by their ``SUBJECT_KEYS`` name (``fixed`` as (name, value) pairs)."""
        return {k: getattr(self, k) for k in SUBJECT_KEYS[1:] if getattr(self, k) is not None}

    @property
    def spec(self) -> str:
        """LOSS=TARGET (a command-line spec without its "=" kept as given: subjects.user.load refuses it)."""
        return f"{self.loss}={self.target}" if self.loss else self.target

    def load(self, framework: str | None = None, class_axis: int = 1, returns: str | None = None,
             targets: str | None = None, fixed: tuple = ()) -> UserSubject:
        """Its function, under the conventions it set for itself, else the run's (the arguments); SubjectError
        (one line, naming the configuration's key where it has one) when it cannot be loaded."""
        try:
            return load_subject(self.spec, self.framework or framework,
                                class_axis if self.class_axis is None else self.class_axis, self.returns or returns,
                                self.targets or targets, fixed if self.fixed is None else self.fixed)
        except SubjectError as e:
            raise SubjectError(f"{self.where}: {e}" if self.where else str(e)) from None


@dataclass
class Config:
    path: str | None = None
    framework: str | None = None
    profile: str | None = None
    formats: tuple = ()
    losses: tuple = ()
    results: str | None = None
    strict: bool = False
    subjects: list = field(default_factory=list)  # [Subject]
    accept: list = field(default_factory=list)  # raw entries (lossproof.accept reads them)


def find_pyproject(start: str | os.PathLike | None = None) -> Path | None:
    """The nearest pyproject.toml at or above ``start`` (default: the working directory)."""
    d = Path(start or os.getcwd()).resolve()
    for folder in (d, *d.parents):
        p = folder / "pyproject.toml"
        if p.is_file():
            return p
    return None


#: the largest TOML file read: a pyproject.toml or an accept file of thousands of entries is a few hundred kB; a
#: larger file is refused before it is parsed (tomllib takes seconds per 10 MB)
MAX_TOML_BYTES = 4 * 2**20


def read_toml(path: str | os.PathLike, error: type[Exception], what: str = "file") -> dict:
    """A TOML file's document, or ``error`` with one line naming the file (missing, a directory, unreadable, past
    MAX_TOML_BYTES, not UTF-8, not TOML): the reader of pyproject.toml and of accept files."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TOML_BYTES + 1)
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not {_a(what)}") from None
    except OSError as e:
        raise error(f"{path}: cannot read it ({e.strerror or e})") from None
    if len(data) > MAX_TOML_BYTES:
        raise error(f"{path}: larger than {MAX_TOML_BYTES // 2**20} MiB, not {_a(what)} lossproof reads")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise error(f"{path}: not {_a(what)} (not UTF-8 text: {e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: not valid TOML ({e})") from None
    except RecursionError:
        raise error(f"{path}: not valid TOML (nested too deep to read)") from None


def _a(what: str) -> str:
    return f"{'an' if what[:1] in 'aeiou' else 'a'} {what}"


def _names(where: str, value: object, allowed: tuple, what: str, single: bool = False) -> tuple:
    if isinstance(value, str):
        value = [value]
    if single and not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], str)):
        raise ConfigError(f"{where}: must be a {what} name, such as {allowed[0]!r}")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: must be a list of {what} names")
    bad = [v for v in value if v not in allowed]
    if bad:
        raise ConfigError(f"{where}: unknown {what} {bad[0]!r}; expected one of {', '.join(allowed)}")
    return tuple(value)


def _subject(where: str, loss: str, entry: object) -> Subject:
    """One entry of ``[tool.lossproof.subjects]``: "module:function" or a table of ``SUBJECT_KEYS`` (``target``
    required); its conventions are checked here against its loss, as ``lossproof check`` checks its options."""
    shape = "must be \"module:function\", a table {target = \"module:function\", ...} or a list of them"
    if isinstance(entry, str) and entry:
        return Subject(loss, entry, where=where)
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: {shape}")
    unknown = [k for k in entry if k not in SUBJECT_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected one of {', '.join(SUBJECT_KEYS)}")
    target = entry.get("target")
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{where}: a subject's table needs target = \"module:function\"")
    framework = entry.get("framework")
    if framework is not None:
        framework = _names(f"{where} framework", framework, FRAMEWORKS, "framework", True)[0]
    class_axis = entry.get("class_axis")
    # an int (TOML's -1.0 equals -1 but is a float, which no axis argument takes)
    if class_axis is not None and (type(class_axis) is not int or class_axis not in CLASS_AXES):
        raise ConfigError(f"{where} class_axis: must be 1 (torch's (N, C, ...)) or -1 (the classes last)")
    for key in ("returns", "targets"):
        if key in entry and not isinstance(entry[key], str):
            raise ConfigError(f"{where} {key}: must be a string")
    fixed = entry.get("fixed")
    if fixed is not None and not isinstance(fixed, dict):
        raise ConfigError(f"{where} fixed: must be a table of parameter = value, such as {{label_smoothing = 0.1}}")
    try:
        check_conventions(loss, target, None, 1 if class_axis is None else class_axis, entry.get("returns"),
                          entry.get("targets"))
        pairs = None if fixed is None else check_fixed(loss, fixed)  # {} sets nothing built in: not the run's
    except SubjectError as e:
        raise ConfigError(f"{where}: {e}") from None
    return Subject(loss, target, framework, class_axis, entry.get("returns"), entry.get("targets"), pairs, where)


def load(path: str | os.PathLike | None = None, *, search_from: str | os.PathLike | None = None) -> Config:
    """The ``[tool.lossproof]`` table of ``path`` (or of the nearest pyproject.toml), or an empty Config."""
    p = Path(path) if path is not None else find_pyproject(search_from)
    if p is None:
        return Config()
    doc = read_toml(p, ConfigError, "pyproject.toml")
    table = doc.get("tool", {}).get("lossproof") if isinstance(doc.get("tool"), dict) else None
    if table is None:
        return Config(path=str(p))
    where = f"{p}: [tool.lossproof]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = [k for k in table if k not in KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected one of {', '.join(KEYS)}")
    cfg = Config(path=str(p))
    if "framework" in table:
        cfg.framework = _names(f"{where} framework", table["framework"], FRAMEWORKS, "framework", True)[0]
    if "profile" in table:
        cfg.profile = _names(f"{where} profile", table["profile"], tuple(profiles.PROFILES), "profile", True)[0]
    if "formats" in table:
        cfg.formats = _names(f"{where} formats", table["formats"], catalogue.FORMATS, "format")
    if "losses" in table:
        cfg.losses = _names(f"{where} losses", table["losses"], catalogue.NAMES, "loss")
    if "results" in table:
        if not isinstance(table["results"], str) or not table["results"]:
            raise ConfigError(f"{where} results: must be a path")
        cfg.results = table["results"]
    if "strict" in table:
        if not isinstance(table["strict"], bool):
            raise ConfigError(f"{where} strict: must be true or false")
        cfg.strict = table["strict"]
    subjects = table.get("subjects", {})
    if not isinstance(subjects, dict):
        raise ConfigError(f"{where} subjects: must be a table of loss = \"module:function\"")
    for loss, entries in subjects.items():
        if loss not in catalogue.NAMES:
            raise ConfigError(f"{where} subjects: unknown loss {loss!r}; expected one of {', '.join(catalogue.NAMES)}")
        entries = entries if isinstance(entries, list) else [entries]
        cfg.subjects += [_subject(f"{where} subjects.{loss}", loss, e) for e in entries]
    accept = table.get("accept", [])
    if not isinstance(accept, list) or not all(isinstance(a, dict) for a in accept):
        raise ConfigError(f"{where} accept: must be an array of tables ([[tool.lossproof.accept]])")
    cfg.accept = accept
    return cfg
