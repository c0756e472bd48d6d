"""The exit statuses of ``scrapy crawl``: one enum, the single truth.

README.md's "Scheduling" table lists exactly these values with these meanings;
``tests/crawler/test_exit_statuses.py`` reads the table and checks it against
:data:`MEANINGS`, so the two cannot drift apart.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    OVERLAP = 3
    COOKIE_EXPIRED = 4
    BLOCKED = 5
    STORAGE_DOWN = 6


#: What each status means, as the README table says it.
MEANINGS: dict[ExitStatus, str] = {
    ExitStatus.OK: "finished",
    ExitStatus.ERROR: "failed otherwise (crash, interrupted, forced stop)",
    ExitStatus.USAGE: (
        "nothing usable asked for: bad configuration, an unknown or bad spider argument, "
        "no input at all, every input refused (one line on stderr names it)"
    ),
    ExitStatus.OVERLAP: "another run of the same spider and arguments holds the lease",
    ExitStatus.COOKIE_EXPIRED: "cookie expired (site code -100)",
    ExitStatus.BLOCKED: "blocked (IP 300012, account 300011, captchas that never cleared)",
    ExitStatus.STORAGE_DOWN: "MongoDB down: notes are safe in the spool, replayed at the next start",
}
