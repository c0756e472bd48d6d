"""sandbox/crawlenv.py: the environment of a crawl pointed at the sandbox site."""

from __future__ import annotations

from types import SimpleNamespace

from sandbox.crawlenv import SANDBOX_COOKIES, crawl_env, isolated_environ
from sandbox.harness import ROOT, sandbox_env

SITE = SimpleNamespace(url="http://127.0.0.1:1", cdn_url="http://127.0.0.1:2")


def test_isolated_environ_drops_everything_that_reaches_a_real_service() -> None:
    environ = {
        "PATH": "/bin",
        "HOME": "/h",
        "GEMINI_API_KEYS": "p:k",
        "GOOGLE_API_KEY": "k",
        "MONGO_URI": "mongodb://prod",
        "REDIS_URL": "redis://prod",
        "XHS_COOKIES": "a1=real",
        "ENRICH_BACKEND": "gemini",
    }
    assert isolated_environ(environ) == {"PATH": "/bin", "HOME": "/h"}


def test_crawl_env_points_at_the_site_and_extra_wins() -> None:
    env = crawl_env(SITE, {"PATH": "/bin", "XHS_BASE_URL": "https://real"}, MONGO_URI="m")
    assert env["XHS_BASE_URL"] == SITE.url
    assert env["XHS_COOKIES"] == SANDBOX_COOKIES and "web_session=" in SANDBOX_COOKIES
    assert env["XHS_IMAGE_ORIGIN_TEMPLATES"] == f"{SITE.cdn_url}/{{token}}"
    assert env["MONGO_URI"] == "m" and env["PATH"] == "/bin"
    assert crawl_env(SITE, {}, XHS_BASE_URL="http://other")["XHS_BASE_URL"] == "http://other"


def test_sandbox_env_is_isolated_and_imports_this_checkout(monkeypatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEYS", "p:real-key")
    env = sandbox_env(SITE, ENRICH_BACKEND="off")
    assert "GEMINI_API_KEYS" not in env
    assert env["PYTHONPATH"] == str(ROOT) and env["ENRICH_BACKEND"] == "off"
