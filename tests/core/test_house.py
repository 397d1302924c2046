"""The house's rules, read from the code's own imports (issue 14): no import circles, the core
free of web frameworks, layouts free of Redis, a small foundation, every menu page routed; and
from the files themselves: docs that need nothing outside the repository."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("dashboard", "callbacks", "layouts", "feeds")


def modules() -> dict[str, Path]:
    """Every module of the product by dotted name (app.py as `app`)."""
    found = {"app": ROOT / "app.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """The product's modules `path` imports, at any depth of its code (a function-level import
    is still an arrow)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        out.update(n for n in names if n in known)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    # a package's __init__ is not an arrow back: `from layouts import ids` names layouts.ids
    return {name: {m for m in imports(path, known)
                   if not (ROOT / m.replace(".", "/")).is_dir()}
            for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_house001_no_import_circles() -> None:
    assert cycles(graph()) == []


def test_house002_the_core_imports_no_web_framework() -> None:
    framework = ("dash", "flask", "werkzeug", "websockets", "jinja2")
    for name, path in modules().items():
        if not name.startswith("dashboard"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            assert not set(roots) & set(framework), f"{name} imports {roots}"


def test_house003_layouts_never_touch_redis_or_feeds() -> None:
    edges = graph()
    for name, targets in edges.items():
        if name.startswith("layouts"):
            assert not {t for t in targets if t.startswith(("feeds", "callbacks"))}, name
            assert "dashboard.store" not in targets, name
    for name, path in modules().items():
        if name.startswith("layouts"):
            assert "import redis" not in path.read_text(encoding="utf-8"), name


def test_house004_nothing_imports_upward() -> None:
    """dashboard ← feeds, layouts ← callbacks ← app: the core and the feeds never import the
    web side."""
    edges = graph()
    for name, targets in edges.items():
        if name.startswith(("dashboard", "feeds")):
            assert not {t for t in targets if t.startswith(("callbacks", "layouts", "app"))}, name
        if name.startswith("dashboard"):
            assert not {t for t in targets if t.startswith("feeds")}, name


def test_house005_a_small_foundation() -> None:
    direct = [p for p in (ROOT / "dashboard").glob("*.py") if p.name != "__init__.py"]
    assert len(direct) <= 12, sorted(p.name for p in direct)


def test_house006_every_menu_page_is_routed() -> None:
    from layouts.chrome import NAV
    from layouts.pages import PAGES

    assert {path for _, path, _, _ in NAV} <= set(PAGES)
    assert {name for name, _, _, _ in NAV} <= {page for page, _ in PAGES.values()}


def declared() -> set[str]:
    """Distribution names pyproject.toml names, in any of its lists, normalised."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = [*project["dependencies"],
             *(s for group in project["optional-dependencies"].values() for s in group)]
    return {re.split(r"[\[=<>!~ ;]", s, maxsplit=1)[0].lower().replace("_", "-") for s in specs}


def test_house007_every_import_is_declared() -> None:
    import sys
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    ours = {*PACKAGES, "app", "tests", "bench", "scripts", "tools"}
    wanted: set[str] = set()
    folders = [ROOT / p for p in (*PACKAGES, "tests", "bench", "scripts", "tools")]
    for path in [ROOT / "app.py", *(f for d in folders for f in d.rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots = [node.module.split(".")[0]]
            else:
                continue
            wanted.update(r for r in roots
                          if r not in sys.stdlib_module_names and r not in ours)
    names = declared()
    missing = {r for r in wanted
               if not {d.lower().replace("_", "-") for d in dists.get(r, [r])} & names}
    assert missing == set()


def test_house008_nothing_declared_goes_unused() -> None:
    """A pin nobody imports is a pin nobody updates. Tools run as commands and libraries
    picked up without an import are named here."""
    from importlib.metadata import packages_distributions

    used_without_import = {
        "hiredis",  # redis-py's parser, used when installed
        "ruff",  # `make lint`
        "pytest-xdist",  # `pytest -n`, a plugin
        "gunicorn",  # the HTTP server, a command (deploy/gunicorn.conf.py)
    }
    text = "\n".join(p.read_text(encoding="utf-8")
                     for d in (*PACKAGES, "tests", "bench", "scripts")
                     for p in (ROOT / d).rglob("*.py")) + (ROOT / "app.py").read_text()
    modules_of: dict[str, set[str]] = {}
    for module, dists in packages_distributions().items():
        for dist in dists:
            modules_of.setdefault(dist.lower().replace("_", "-"), set()).add(module)
    unused = {name for name in declared() - used_without_import
              if not any(re.search(rf"(import|from) {m}\b", text)
                         for m in modules_of.get(name, {name.replace("-", "_")}))}
    assert unused == set()


# Not part of the repository, or not ours: a clone has none of it, or it is generated.
NOT_OURS = frozenset({".git", ".venv", "node_modules", "__pycache__", ".pytest_cache",
                      ".ruff_cache", "var", "build"})
OUTSIDE_DOC = re.compile(r"\bDESIGN(\.md| §)")
MD_LINK = re.compile(r"\]\(([^)\s#]+\.md)(?:#[^)\s]*)?\)")


def repository_files(*suffixes: str) -> list[Path]:
    """Our files with one of `suffixes`, without the virtualenv, npm's packages and the
    benchmarks' recorded results."""
    found = []
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d not in NOT_OURS and not d.endswith(".egg-info")
                         and here / d != ROOT / "bench" / "results")
        found += [here / f for f in sorted(files) if f.endswith(suffixes)]
    return found


def test_house009_docs_stand_alone() -> None:
    """No file cites a document outside the repository, and every docs/ link resolves."""
    cited = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in repository_files(".py", ".md", ".js")
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if OUTSIDE_DOC.search(line)]
    assert cited == []
    broken = [f"{page.relative_to(ROOT)}: {target}"
              for page in repository_files(".md")
              for target in MD_LINK.findall(page.read_text(encoding="utf-8"))
              if "://" not in target and not (page.parent / target).is_file()]
    assert broken == []


def test_house010_every_bench_imports() -> None:
    """A move of files must not leave a benchmark behind (bench/plans.py once did)."""
    import importlib

    for path in sorted((ROOT / "bench").glob("*.py")):
        importlib.import_module(f"bench.{path.stem}")
