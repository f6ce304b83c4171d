"""`make try FILE=questions.txt`: runs every question through the assistant and writes a report.

FILE is a text file (one question per line) or a CSV with a `question` column. Each question is
asked as a new visitor (web/reply_check.py, the same code as the staff page's reply tester);
the CSV and HTML reports go to reports/ and the summary is printed.

Without --rasa-url (or RASA_URL), the action server and the Rasa server are started on free
ports for the run (stack.launch.Stack, secrets from stack/secrets.py) and stopped afterwards.
"""
import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from web import reply_check as rc  # noqa: E402


def run(questions: List[str], rasa_url: str, token: str, out_dir: Path,
        quiet: bool = False, api_url: Optional[str] = None) -> tuple:
    """Asks every question; returns (rows, csv_path, html_path)."""

    tty = sys.stderr.isatty()

    def progress(done: int, total: int, row: dict) -> None:
        if quiet:
            return
        if tty:
            print(f"\r  {done}/{total} questions", end="", file=sys.stderr, flush=True)
        elif done == total or done % 10 == 0:
            print(f"  {done}/{total} questions", file=sys.stderr, flush=True)

    async def ask_all() -> list:
        async with aiohttp.ClientSession() as session:
            return await rc.run_batch(rc.RasaClient(session, rasa_url, token, api_url), questions,
                                      progress=progress)

    rows = asyncio.run(ask_all())
    if not quiet and tty:
        print(file=sys.stderr)
    csv_path, html_path = rc.write_reports(rows, out_dir)
    return rows, csv_path, html_path


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="make try FILE=...", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, help="questions: .txt (one a line) or .csv (question column)")
    parser.add_argument("--rasa-url", default=os.environ.get("RASA_URL") or None,
                        help="a running Rasa server (its token from RASA_AUTH_TOKEN or the secrets "
                             "file); default: start one for this run")
    parser.add_argument("--rasa-api-url", default=os.environ.get("RASA_API_URL") or None,
                        help="where that server's HTTP API answers, if not at --rasa-url "
                             "(production: a Rasa process behind nginx)")
    parser.add_argument("--out-dir", type=Path, default=rc.REPORTS_DIR, help="default: reports/")
    args = parser.parse_args(argv)

    if not args.file.is_file():
        print(f"No such file: {args.file}\nUsage: make try FILE=questions.txt", file=sys.stderr)
        return 2
    try:
        questions = rc.read_questions(args.file.read_text(encoding="utf-8-sig"), args.file.name)
    except (ValueError, UnicodeDecodeError) as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return 2
    if not questions:
        print(f"{args.file} has no questions.", file=sys.stderr)
        return 2

    from stack import secrets
    stack = None
    if args.rasa_url:
        token = os.environ.get("RASA_AUTH_TOKEN") or secrets.load()[0]["RASA_AUTH_TOKEN"]
        rasa_url, api_url = args.rasa_url, args.rasa_api_url
    else:
        from stack.launch import Stack, free_port
        values, _ = secrets.load()
        token = values["RASA_AUTH_TOKEN"]
        stack = Stack(rasa_port=free_port(), action_port=free_port(), web_port=free_port(),
                      secrets=values, data_dir=Path(tempfile.mkdtemp(prefix="clinic-try-")))
        print("Starting the assistant for this run (about 30 s)...", file=sys.stderr, flush=True)
        stack.log_dir.mkdir(parents=True, exist_ok=True)
        stack.data_dir.mkdir(parents=True, exist_ok=True)
        rasa_url, api_url = stack.rasa_url, stack.rasa_api_url
    try:
        if stack is not None:
            stack.start_actions()
            stack.start_rasa()
        print(f"Asking {len(questions)} questions...", file=sys.stderr, flush=True)
        rows, csv_path, html_path = run(questions, rasa_url, token, args.out_dir, api_url=api_url)
    finally:
        if stack is not None:
            stack.stop()

    summary = rc.summarize(rows)
    print(f"Report (spreadsheet): {csv_path}")
    print(f"Report (web page):    {html_path}")
    print(rc.summary_line(summary) + ".")
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
