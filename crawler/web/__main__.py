"""``python -m crawler.web [--host 127.0.0.1] [--port 8080]``: serve the analyst's window.

Reads the project settings (``WEB_HOST``, ``WEB_PORT``, ``WEB_TOKEN``, ``IMAGES_STORE``,
``RUN_REPORT_DIR``, the Mongo settings; env vars of the same names override). A setting
that cannot work (another address without ``WEB_TOKEN``) is a one-line error, exit 2.
"""

from __future__ import annotations

import argparse
import sys

from crawler.web.app import create_app
from crawler.web.config import WebConfig, WebConfigError, is_loopback


def main(argv: list[str] | None = None) -> int:
    from scrapy.utils.project import get_project_settings

    parser = argparse.ArgumentParser(prog="python -m crawler.web", description=__doc__)
    parser.add_argument("--host", help="address to bind (default WEB_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default WEB_PORT, 8080)")
    args = parser.parse_args(argv)
    try:
        config = WebConfig.from_settings(get_project_settings(), host=args.host, port=args.port)
    except WebConfigError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    where = config.host if is_loopback(config.host) else f"{config.host} (token required)"
    print(f"analyst web app on http://{config.host}:{config.port}/  [{where}]", flush=True)
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
