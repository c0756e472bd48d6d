"""``python -m sandbox.gemini --port P [--config scenario.toml]``.

Serves until SIGINT/SIGTERM, then prints the request log as a summary table.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from sandbox.gemini.config import ConfigError, load_config
from sandbox.gemini.requestlog import summary_table
from sandbox.gemini.server import GeminiEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.gemini", description=__doc__)
    parser.add_argument("--port", type=int, default=8088, help="TCP port (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config", help="scenario TOML file (default: any key, one project)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"sandbox.gemini: bad configuration: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        emulator = GeminiEmulator(config=config, host=args.host, port=args.port).start()
    except (ValueError, OSError) as exc:
        print(f"sandbox.gemini: cannot start on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    try:
        print(f"Gemini emulator listening on {emulator.base_url}", flush=True)
        stop.wait()
    finally:
        emulator.stop()
    records = emulator.requests
    print(summary_table(records), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
