"""Settings derived from the user's configuration, applied by Scrapy's add-on hook.

The add-on runs after env vars, settings.py and `-s` options are all known and before
the settings freeze, so derived settings follow whatever the user set, wherever.
"""

from __future__ import annotations

import shutil

from scrapy.settings import BaseSettings


class XhsAddon:
    def update_settings(self, settings: BaseSettings) -> None:
        self._distributed(settings)
        self._chromium(settings)
        settings.set("FILES_STORE", settings.get("IMAGES_STORE"), priority="addon")

    @staticmethod
    def _chromium(settings: BaseSettings) -> None:
        """CHROMIUM_PATH, else Debian's `chromium` on PATH, as Playwright's browser.

        Without either, Playwright's own downloaded browser is used where installed. An
        ``executable_path`` given in PLAYWRIGHT_LAUNCH_OPTIONS itself is kept.
        """
        path = settings.get("CHROMIUM_PATH") or shutil.which("chromium")
        options = dict(settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS"))
        if not path or "executable_path" in options:
            return
        options["executable_path"] = path
        priority = settings.getpriority("PLAYWRIGHT_LAUNCH_OPTIONS") or 0
        settings.set("PLAYWRIGHT_LAUNCH_OPTIONS", options, priority=max(priority, 20))

    @staticmethod
    def _distributed(settings: BaseSettings) -> None:
        """With REDIS_URL: scrapy-redis's scheduler and a shared, note-aware dupefilter.

        Keys are namespaced by REDIS_RUN so that workers of one run share a queue and a
        later run starts clean (seed it with `-s SCHEDULER_FLUSH_ON_START=True`).
        """
        redis_url = settings.get("REDIS_URL")
        if not redis_url:
            return
        run = settings.get("REDIS_RUN")
        for name, value in {
            "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
            "SCHEDULER_DUPEFILTER_CLASS": "crawler.fingerprint.RedisNoteDupeFilter",
            "DUPEFILTER_CLASS": "crawler.fingerprint.RedisNoteDupeFilter",
            "SCHEDULER_QUEUE_KEY": f"xhs:{run}:%(spider)s:requests",
            "SCHEDULER_DUPEFILTER_KEY": f"xhs:{run}:%(spider)s:dupefilter",
            # Another worker may still be busy when this one finishes: never flush.
            "SCHEDULER_PERSIST": True,
        }.items():
            settings.set(name, value, priority="addon")
