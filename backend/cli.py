"""``labelqueue`` command line: ``serve`` runs the backend under gunicorn (or Flask with --dev)."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from backend.settings import Settings, SettingsError

logger = logging.getLogger("labelqueue")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level),
                        format="%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s")
    try:
        return args.handler(args)
    except SettingsError as exc:
        parser.exit(2, f"labelqueue: {exc}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labelqueue", description=__doc__)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the ML backend that Label Studio connects to")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9090)
    serve.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    serve.add_argument("--threads", type=int, default=4, help="request threads per worker")
    serve.add_argument("--dev", action="store_true", help="Flask's development server instead of gunicorn")
    serve.set_defaults(handler=run_serve)
    return parser


def run_serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    logger.info("data dir %s; Label Studio %s", settings.data_dir,
                settings.label_studio_url or "from /setup (LABEL_STUDIO_URL not set)")
    if args.dev:
        from backend.app import create_app

        create_app(settings).run(host=args.host, port=args.port, threaded=True)
        return 0
    from backend.server import GunicornServer

    GunicornServer(settings, bind=f"{args.host}:{args.port}", workers=args.workers,
                   threads=args.threads, log_level=args.log_level).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
