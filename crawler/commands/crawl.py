"""`scrapy crawl` with exit statuses a scheduler can act on; bad configuration and bad
spider arguments reported in one line on stderr (exit status 2) before anything starts.

Scrapy's own command exits 0 whatever happened during the crawl. This one returns the
status the run record decided (``RunContext.of(crawler).exit_status``; the values are
:class:`crawler.commands.exit_status.ExitStatus`, the README table's single truth).
A run whose close never decided one (a forced stop, a crash at start) exits 1, never 0.

Refused before anything starts (status 2, one line, so no run record and no report):
a bad knob, a bad spider argument, an argument the spider does not take (``-a
keyword=`` → "did you mean keywords=?"), a run asked for nothing or whose every input
is refused (the spider's ``check_arguments(settings, spargs)`` when it has one). With ``JOBDIR`` set, the state a killed run
left there is set aside first (:mod:`crawler.extensions.jobdir`).

The checks run in ``process_options``, before Scrapy sets up logging and the crawler
process, so the error line is the only thing on stderr: every knob through
:func:`crawler.validation.validate_settings`, then the spider's own arguments.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import sys
from typing import Any, NoReturn

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.spiderloader import get_spider_loader

from crawler.commands.exit_status import ExitStatus
from crawler.core.run_context import RunContext
from crawler.extensions.jobdir import set_aside_if_killed
from crawler.validation import validate_settings

EXIT_CONFIG = int(ExitStatus.USAGE)  # bad configuration or spider arguments


def unknown_argument(spidercls: type, spargs: dict[str, str]) -> str | None:
    """The message for the first ``-a`` name the spider's ``__init__`` does not take, or
    None (also for a spider that takes no named arguments of its own)."""
    init = next(c.__dict__["__init__"] for c in spidercls.__mro__ if "__init__" in c.__dict__)
    if getattr(init, "__module__", "").startswith("scrapy."):
        return None
    params = inspect.signature(init).parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    known = sorted(p.name for p in params if p.kind in named and p.name not in ("self", "name"))
    for arg in spargs:
        if arg in known or arg.startswith("_"):
            continue
        close = difflib.get_close_matches(arg, known, n=1, cutoff=0.6)
        hint = (
            f"did you mean {close[0]}=?"
            if close
            else "arguments: " + ", ".join(f"{k}=" for k in known)
        )
        return f"unknown argument {arg}; {hint}"
    return None


def fail(message: str) -> NoReturn:
    """One line on stderr, exit status 2."""
    sys.stderr.write(f"scrapy crawl: error: {' '.join(message.split())}\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_CONFIG)


class Command(ScrapyCrawlCommand):
    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        assert self.settings is not None
        try:
            validate_settings(self.settings)
            if args:
                spidercls = get_spider_loader(self.settings).load(args[0])
                unknown = unknown_argument(spidercls, opts.spargs)
                if unknown:
                    fail(unknown)
                check = getattr(spidercls, "check_arguments", None)
                if check is not None:
                    check(self.settings, dict(opts.spargs))
                else:
                    spidercls(**opts.spargs)
        except KeyError:
            pass  # an unknown spider name: Scrapy's own message, later
        except ValueError as exc:  # ConfigError, SpiderArgumentError, a spider's own check
            fail(str(exc))

    def _create_crawler(self, spname: Any) -> Any:
        self._crawler = super()._create_crawler(spname)
        return self._crawler

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        jobdir = self.settings.get("JOBDIR")
        if jobdir:  # before Scrapy reads it: a killed run's half-written state goes aside
            set_aside_if_killed(jobdir)
        super().run(args, opts)
        crawler = getattr(self, "_crawler", None)
        if self.exitcode == 0 and crawler is not None:
            status = RunContext.of(crawler).exit_status
            self.exitcode = int(ExitStatus.ERROR if status is None else status)
