"""The dependency rule of docs/architecture.md, enforced on every module's imports.

Every ``import`` and ``from … import`` in crawler/, pipelines/ and sandbox/ is read with
``ast`` (function-level and ``TYPE_CHECKING`` imports included, relative imports
resolved) and checked against the layer of the importing module. A forbidden edge
fails the test with its file, line and the rule it breaks.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("crawler", "pipelines", "sandbox", "bench", "tests")
# They run the crawler for tests, benches and the demo; never a bench or test module.
SANDBOX_BRIDGES = {"sandbox.harness", "sandbox.crawlenv", "sandbox.demo", "sandbox.crawl_runner"}
CORE = ("crawler.core",)
PURE = ("crawler.core", "crawler.parsing", "crawler.urls")
PIPELINES = (*PURE, "pipelines")
APP = (*PIPELINES, "crawler")


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer_of(module: str) -> tuple[str, tuple[str, ...]]:
    """The rule for ``module``: its name and the packages of ours it may import."""
    if _under(module, CORE):
        return "crawler.core imports nothing else of ours", CORE
    if _under(module, ("crawler.parsing", "crawler.urls")):
        return "crawler.parsing and crawler.urls import only crawler.core and each other", PURE
    if _under(module, ("pipelines",)):
        return (
            "pipelines import only crawler.core, crawler.parsing, crawler.urls and pipelines",
            PIPELINES,
        )
    if _under(module, ("crawler",)):
        return "the app layer (the rest of crawler/) imports crawler and pipelines", APP
    if module in SANDBOX_BRIDGES:
        return "sandbox.harness, crawlenv, demo and crawl_runner may import the crawler", (
            "crawler",
            "pipelines",
            "sandbox",
        )
    if _under(module, ("sandbox",)):
        return "sandbox imports no crawler or pipelines module (but harness, crawlenv, demo)", (
            "sandbox",
        )
    raise ValueError(f"no layer for {module}")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, module: str) -> Iterator[tuple[int, str]]:
    """``(line, imported module)`` for every import in the file, at any depth."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # `from crawler import config` imports crawler.config
                yield node.lineno, f"{target}.{alias.name}"


def sources() -> list[Path]:
    return sorted(
        p
        for top in ("crawler", "pipelines", "sandbox")
        for p in (ROOT / top).rglob("*.py")
        if "__pycache__" not in p.parts
    )


def violations(path: Path, module: str, shown: str) -> list[str]:
    rule, allowed = layer_of(module)
    return [
        f"{shown}:{line}: imports {target} ({rule})"
        for line, target in imports(path, module)
        if _under(target, OURS) and not _under(target, allowed)
    ]


def test_every_module_keeps_to_its_layer() -> None:
    problems = [
        problem
        for path in sources()
        for problem in violations(path, module_name(path), str(path.relative_to(ROOT)))
    ]
    assert not problems, "forbidden imports:\n" + "\n".join(problems)


def test_the_check_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """The checker itself: an edge hidden in a function or written relatively is found."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f():\n    from crawler.config import ConfigError\n    return ConfigError\n"
        "from . import storage\n",
        encoding="utf-8",
    )
    found = violations(probe, "pipelines.media.probe", "probe.py")
    targets = [target for _, target in imports(probe, "pipelines.media.probe")]
    assert found[0].startswith("probe.py:2: imports crawler.config (pipelines import only")
    assert "pipelines.media.storage" in targets


@pytest.mark.parametrize(
    ("module", "target", "allowed"),
    [
        ("crawler.core.items", "crawler.parsing.errors", False),
        ("crawler.parsing.notes", "crawler.core.items", True),
        ("crawler.parsing.notes", "crawler.config", False),
        ("crawler.urls", "crawler.parsing.errors", True),
        ("pipelines.media", "crawler.core.items", True),
        ("pipelines.media", "crawler.middlewares", False),
        ("crawler.extensions.lease", "pipelines.mongo", True),
        ("crawler.web.app", "sandbox.site", False),
        ("sandbox.site.server", "crawler.urls", False),
        ("sandbox.harness", "crawler.settings", True),
        ("sandbox.crawl_runner", "crawler.extensions", True),
        ("sandbox.harness", "bench.memory", False),
    ],
)
def test_rule_table(module: str, target: str, allowed: bool) -> None:
    _, prefixes = layer_of(module)
    assert _under(target, prefixes) is allowed


def test_sandbox_runs_no_bench_module() -> None:
    """The harness shells out to its runner (``python -m sandbox.crawl_runner``): a bench
    module named in a command would be a dependency the import check cannot see."""
    named = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "sandbox").rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if '"bench.' in line or "'bench." in line
    ]
    assert not named
