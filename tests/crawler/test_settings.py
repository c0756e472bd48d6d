"""One settings mechanism: every knob declared once, every env var applied by one loop,
`-s` over env over the declared default, and the addon's derived settings."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from scrapy.settings import Settings

import crawler.settings as project
from crawler.addons import XhsAddon

ROOT = Path(__file__).resolve().parents[2]
# A table row whose first cell names knobs: "| `NAME` |" or "| `WEB_HOST` / `WEB_PORT` |".
README_KNOB_CELL = re.compile(r"^\| (`[A-Z][A-Z0-9_]+`(?: / `[A-Z][A-Z0-9_]+`)*) \|", re.M)
README_KNOB = re.compile(r"`([A-Z][A-Z0-9_]+)`")


def readme_knobs() -> list[str]:
    section = (ROOT / "README.md").read_text(encoding="utf-8")
    return [
        name for cell in README_KNOB_CELL.findall(section) for name in README_KNOB.findall(cell)
    ]


def test_a_readme_row_naming_two_knobs_yields_both() -> None:
    assert {"WEB_HOST", "WEB_PORT"} <= set(readme_knobs())


def env_value(name: str, default: object) -> str:
    """A value of the knob's type that differs from its default."""
    if isinstance(default, bool):
        return str(not default)
    if isinstance(default, int | float):
        return str(default + 7)
    return f"env-{name.lower()}"


def project_settings_under(env: dict[str, str], *cmdline: str) -> dict[str, object]:
    """``get_project_settings()`` in a fresh process with ``env`` (and ``-s``-like pairs)."""
    code = (
        "import json, sys\n"
        "from scrapy.utils.project import get_project_settings\n"
        "s = get_project_settings()\n"
        "for pair in sys.argv[2:]:\n"
        "    k, _, v = pair.partition('=')\n"
        "    s.set(k, v, priority='cmdline')\n"
        "print(json.dumps({n: s.get(n) for n in json.loads(sys.argv[1])}))\n"
    )
    names = sorted(set(env) | {p.partition("=")[0] for p in cmdline})
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(names), *cmdline],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    return json.loads(proc.stdout)


def test_every_readme_knob_is_declared_once_with_its_default() -> None:
    knobs = readme_knobs()
    assert len(knobs) >= 10, "README's settings table not found"
    missing = [name for name in knobs if name not in project.knob_defaults]
    assert not missing, f"README documents knobs crawler/settings.py does not declare: {missing}"
    source = (ROOT / "crawler" / "settings.py").read_text(encoding="utf-8")
    for name in knobs:
        assert len(re.findall(rf"^{name} = ", source, re.M)) == 1, name


def test_every_readme_knob_takes_its_env_var() -> None:
    env = {name: env_value(name, project.knob_defaults[name]) for name in readme_knobs()}
    seen = project_settings_under(env)
    assert {name: str(seen[name]) for name in env} == env


def test_every_declared_knob_takes_its_env_var_including_those_the_old_list_missed() -> None:
    assert {"ANTIBOT_COOLDOWN", "MEDIA_MAX_VIDEO_BYTES", "RUN_LEASE_TTL"} <= set(
        project.knob_defaults
    )
    env = {name: env_value(name, default) for name, default in project.knob_defaults.items()}
    seen = project_settings_under(env)
    assert {name: str(seen[name]) for name in env} == env


def test_env_keeps_the_string_form_and_scrapy_converts_it() -> None:
    seen = project_settings_under({"ANTIBOT_COOLDOWN": "7.5", "RUN_LEASE_ENABLED": "0"})
    assert seen == {"ANTIBOT_COOLDOWN": "7.5", "RUN_LEASE_ENABLED": "0"}
    settings = Settings(seen)
    assert settings.getfloat("ANTIBOT_COOLDOWN") == 7.5
    assert settings.getbool("RUN_LEASE_ENABLED") is False


def test_an_empty_env_var_is_a_value_and_cmdline_wins_over_env() -> None:
    seen = project_settings_under(
        {"RUN_REPORT_DIR": "", "ANTIBOT_COOLDOWN": "7"}, "ANTIBOT_COOLDOWN=9"
    )
    assert seen == {"RUN_REPORT_DIR": "", "ANTIBOT_COOLDOWN": "9"}


def test_scrapy_own_settings_are_not_env_knobs() -> None:
    assert "DOWNLOAD_DELAY" not in project.knob_defaults
    assert "LOG_LEVEL" not in project.knob_defaults
    assert "IMAGES_STORE" in project.knob_defaults  # Scrapy declares it without a value
    seen = project_settings_under({"DOWNLOAD_DELAY": "0.1"})
    assert seen["DOWNLOAD_DELAY"] == 2.0


def test_addon_derives_files_store_and_the_chromium_path() -> None:
    settings = Settings(
        {
            "IMAGES_STORE": "/tmp/img",
            "CHROMIUM_PATH": "/opt/chromium",
            "PLAYWRIGHT_LAUNCH_OPTIONS": {"headless": True},
        },
        priority="project",
    )
    XhsAddon().update_settings(settings)
    assert settings["FILES_STORE"] == "/tmp/img"
    assert settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS") == {
        "headless": True,
        "executable_path": "/opt/chromium",
    }
    assert not settings.get("SCHEDULER", "").startswith("scrapy_redis")


def test_addon_keeps_an_explicit_executable_path_and_wires_redis() -> None:
    settings = Settings(
        {
            "CHROMIUM_PATH": "/opt/chromium",
            "PLAYWRIGHT_LAUNCH_OPTIONS": {"executable_path": "/usr/bin/mine"},
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "REDIS_RUN": "nightly",
        },
        priority="project",
    )
    XhsAddon().update_settings(settings)
    assert settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS") == {"executable_path": "/usr/bin/mine"}
    assert settings["SCHEDULER"] == "scrapy_redis.scheduler.Scheduler"
    assert settings["SCHEDULER_QUEUE_KEY"] == "xhs:nightly:%(spider)s:requests"


_REPEATED_DEFAULT = re.compile(r"settings\.get\w*\(\s*\"[A-Z][A-Z0-9_]+\",")
# A reader helper handed a knob and a literal default: `_float(mapping, "GEMINI_X", 60.0`.
_HELPER_DEFAULT = re.compile(r"\(\s*\w+,\s*\"[A-Z][A-Z0-9_]+\",\s*(?:-?\d|\"[^\"]*\")")
# A literal fallback after the read: `settings.get("PRIVACY") or "off"`.
_FALLBACK_DEFAULT = re.compile(
    r"\.get(?:int|float|bool)?\(\s*\"[A-Z][A-Z0-9_]+\"\s*\)\s*or\s*(?:-?\d|\"[^\"]+\")"
)


def _repeated_defaults(files: list[Path]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in files
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _REPEATED_DEFAULT.search(line)
        or _HELPER_DEFAULT.search(line)
        or _FALLBACK_DEFAULT.search(line)
    ]


def test_app_layer_components_read_knobs_without_repeating_defaults() -> None:
    """Defaults live in crawler/settings.py only: every crawler module reads knobs without
    a default of its own."""
    files = [
        p for p in sorted((ROOT / "crawler").rglob("*.py")) if p != ROOT / "crawler" / "settings.py"
    ]
    assert not _repeated_defaults(files)


def test_pipelines_read_knobs_without_repeating_defaults() -> None:
    """pipelines/ may not import crawler.settings; the only defaults there are the typed
    settings' field defaults (GeminiSettings', checked against crawler/settings.py in
    tests/gemini_client/test_keys_settings.py), never a literal beside a knob's read."""
    files = sorted((ROOT / "pipelines").rglob("*.py"))
    assert not _repeated_defaults(files)
