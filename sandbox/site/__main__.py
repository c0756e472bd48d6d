"""``python -m sandbox.site --port P [--seed S] [--notes N] [--cdn-port Q] [--short-port R]
[--day-offset D] [fault knobs]``."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from sandbox.site.server import SiteServer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox.site", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--cdn-port", type=int, default=None, help="default: port + 1")
    parser.add_argument(
        "--short-port", type=int, default=None, help="share-link host; default: port + 2"
    )
    parser.add_argument("--day-offset", type=int, default=0, help="show the site D days later")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--slow-rate", type=float, default=0.0)
    parser.add_argument("--slow-seconds", type=float, default=0.0)
    parser.add_argument("--truncated-image-rate", type=float, default=0.0)
    parser.add_argument("--captcha-threshold", type=int, default=0, help="0 = off")
    parser.add_argument("--captcha-window", type=float, default=60.0)
    parser.add_argument("--signature-version", type=int, default=1)
    parser.add_argument("--expire-cookies", action="store_true")
    parser.add_argument("--deleted", default="", help="comma-separated extra deleted note ids")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    cdn_port = args.cdn_port
    if cdn_port is None:
        cdn_port = args.port + 1 if args.port else 0  # port 0: any free port for both
    short_port = args.short_port
    if short_port is None:
        short_port = args.port + 2 if args.port else 0
    server = SiteServer(
        seed=args.seed,
        notes=args.notes,
        port=args.port,
        cdn_port=cdn_port,
        short_port=short_port,
        host=args.host,
        day_offset=args.day_offset,
        error_rate=args.error_rate,
        slow_rate=args.slow_rate,
        slow_seconds=args.slow_seconds,
        truncated_image_rate=args.truncated_image_rate,
        captcha_threshold=args.captcha_threshold,
        captcha_window=args.captcha_window,
        signature_version=args.signature_version,
        expire_cookies=args.expire_cookies,
        deleted=[d for d in args.deleted.split(",") if d],
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        print(
            f"sandbox site {server.url} (cdn {server.cdn_url}, short links {server.short_url},"
            f" seed {args.seed}, {args.notes} notes)"
        )
        reference = server.dataset.note(server.dataset.reference_index)
        print(
            f"reference note: {server.url}/explore/{reference.note_id}"
            f"?xsec_token={reference.xsec_token}",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
