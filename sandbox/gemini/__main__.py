"""``python -m sandbox.gemini --port P [--config scenario.toml]``.

Serves until SIGINT/SIGTERM, then prints the request log as a summary table.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from sandbox.gemini.config import ConfigError
from sandbox.gemini.requestlog import summary_table
from sandbox.gemini.server import GeminiEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.gemini", description=__doc__)
    parser.add_argument("--port", type=int, default=8088, help="TCP port (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config", help="scenario TOML file (default: any key, one project)")
    args = parser.parse_args(argv)
    try:
        emulator = GeminiEmulator(config=args.config, host=args.host, port=args.port)
    except (ConfigError, OSError, ValueError) as exc:
        print(f"sandbox.gemini: bad configuration: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with emulator:
        print(f"Gemini emulator listening on {emulator.base_url}", flush=True)
        stop.wait()
        records = emulator.requests
    print(summary_table(records), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
