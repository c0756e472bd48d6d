"""``python -m pipelines.mongo serve``: serve the embedded data directory over TCP."""

from __future__ import annotations

import argparse
import logging

from pipelines.mongo.embedded import serve


def main(argv: list[str] | None = None) -> int:
    from scrapy.utils.project import get_project_settings

    settings = get_project_settings()
    parser = argparse.ArgumentParser(prog="python -m pipelines.mongo")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="serve the embedded data directory over TCP")
    p_serve.add_argument("--data", default=settings.get("MONGO_DATA_DIR"))
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=27017)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return serve(args.data, args.host, args.port)


if __name__ == "__main__":
    raise SystemExit(main())
