"""Serves the clinic's page with the chat widget: `python -m web --port 8080 --rasa-url URL`."""
import argparse
from pathlib import Path

from aiohttp import web

from web.app import CONTENT, DEFAULT_TIMEOUT_MS, create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m web", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--rasa-url", default="http://127.0.0.1:5005",
                        help="the Rasa server the widget talks to (its origin goes into the CSP)")
    parser.add_argument("--content", type=Path, default=CONTENT, help="the page's text")
    parser.add_argument("--timeout-ms", type=int, default=DEFAULT_TIMEOUT_MS,
                        help="how long the widget waits for an answer before it gives the number")
    args = parser.parse_args()
    app = create_app(args.rasa_url, content_path=args.content, timeout_ms=args.timeout_ms)
    web.run_app(app, host=args.host, port=args.port, access_log=None,
                print=lambda _: print(f"Clinic page on http://{args.host}:{args.port}/", flush=True))


if __name__ == "__main__":
    main()
