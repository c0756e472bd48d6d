"""``python -m pipelines.storage replay``: store the spooled units now."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Iterable

from pipelines.mongo import MongoHandle, MongoSettings
from pipelines.storage.spool import Spool
from pipelines.storage.writer import CounterStats, UnitWriter


async def replay_main(settings: MongoSettings) -> CounterStats:
    handle = MongoHandle(settings)
    stats = CounterStats()
    await handle.start()
    try:
        writer = UnitWriter(handle.db, settings, stats)
        await writer.start()
        if writer.down:
            stats.inc_value("storage/replay_failed_db_down")
    finally:
        await handle.close()
    return stats


def _settings_for_cli(overrides: Iterable[tuple[str, str | None]]) -> MongoSettings:
    from scrapy.utils.project import get_project_settings

    settings = get_project_settings()
    for name, value in overrides:
        if value is not None:
            settings.set(name, value, priority="cmdline")
    return MongoSettings.from_settings(settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.storage")
    sub = parser.add_subparsers(dest="command", required=True)
    p_replay = sub.add_parser("replay", help="store the spooled notes now")
    p_replay.add_argument("--uri", help="MONGO_URI (default: settings / env / embedded)")
    p_replay.add_argument("--database", help="MONGO_DATABASE")
    p_replay.add_argument("--data", help="MONGO_DATA_DIR of the embedded server")
    p_replay.add_argument("--spool", help="MONGO_SPOOL_PATH")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = _settings_for_cli(
        [
            ("MONGO_URI", args.uri),
            ("MONGO_DATABASE", args.database),
            ("MONGO_DATA_DIR", args.data),
            ("MONGO_SPOOL_PATH", args.spool),
        ]
    )
    stats = asyncio.run(replay_main(settings))
    for key in sorted(stats):
        print(f"{key}: {stats[key]}")
    left = Spool(settings.spool_path).pending()
    print(
        f"replay: {stats.get('storage/replayed', 0)} spooled record(s) stored, "
        f"{stats.get('storage/spool_bad', 0)} set aside as unreadable, "
        + ("some still waiting in the spool" if left else "the spool is empty")
        + (" (the database is down)" if stats.get("storage/replay_failed_db_down") else "")
    )
    return 1 if stats.get("storage/replay_failed_db_down") or left else 0


if __name__ == "__main__":
    raise SystemExit(main())
