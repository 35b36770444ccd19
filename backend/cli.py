"""labelqueue: an active-learning loop for Label Studio.

serve runs the ML backend Label Studio connects to (gunicorn, or Flask with --dev); worker runs
background jobs from Redis Queue when LABELQUEUE_REDIS_URL is set; select composes and writes a
batch now; failures add flags production failures; report measures the loop and writes its HTML
report; quickstart runs Label Studio and the backend on this machine with a demo project;
check-config says whether a labelling config is one the backend supports. select, failures and
report work on the same data dir as the server (LABELQUEUE_DATA_DIR). Settings are environment
variables (LABELQUEUE_*, LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY); see the README.

This text is also the command's --help, so it stays plain text.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from backend.ids import MAX_PROJECT_ID, InvalidProjectId, valid_project_id
from backend.settings import Settings, SettingsError, mask_url

logger = logging.getLogger("labelqueue")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level),
                        format="%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s")
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        return args.handler(args)
    except SettingsError as exc:
        parser.exit(2, f"labelqueue: {exc}\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default, shown after its help; options without a value default (``None``)
    say in their help what happens when they are left out, and ``--help`` has no default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or isinstance(action, argparse._HelpAction) or "default:" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def project_id(text: str) -> int:
    """``--project``: the id rule of the HTTP edge and the store, checked before anything runs."""
    if not valid_project_id(text):
        raise argparse.ArgumentTypeError(str(InvalidProjectId(text)))
    return int(text)


def task_id(text: str) -> int:
    """``--task-ids``: Label Studio's ids are positive 32-bit keys, as project ids are."""
    if not valid_project_id(text):
        raise argparse.ArgumentTypeError(f"a task id is an integer from 1 to {MAX_PROJECT_ID}; got {text!r}")
    return int(text)


def positive(text: str) -> int:
    """A count that must be at least 1 (batch size, workers, connections)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1; got {text!r}")
    return value


def add_command(commands: argparse._SubParsersAction, name: str, *, help: str) -> argparse.ArgumentParser:  # noqa: A002
    """A subcommand whose one-line help is also its description, with defaults shown."""
    return commands.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labelqueue", description=__doc__.rsplit("\n\n", 1)[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log messages at this level and above")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = add_command(commands, "serve", help="run the ML backend that Label Studio connects to")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--port", type=int, default=9090, help="port to listen on")
    serve.add_argument("--workers", type=positive, default=1, help="gunicorn worker processes")
    serve.add_argument("--connections", type=positive, default=1000,
                       help="simultaneous connections per worker (each a greenlet, not a thread)")
    serve.add_argument("--dev", action="store_true", help="Flask's development server instead of gunicorn")
    serve.set_defaults(handler=run_serve)

    worker = add_command(commands, "worker", help="run retrain, selection and scoring jobs from Redis Queue "
                                 "(LABELQUEUE_REDIS_URL); start any number, on any machine sharing the data dir")
    worker.add_argument("--queues", nargs="+", choices=["score", "jobs", "measure"], default=["score", "jobs", "measure"],
                        help="queues to take jobs from, in priority order (default: score jobs measure)")
    worker.add_argument("--burst", action="store_true", help="quit when the queues are empty")
    worker.add_argument("--name", help="worker name shown in /metrics (default: RQ's random name)")
    worker.set_defaults(handler=run_worker)

    select = add_command(commands, "select", help="compose the next batch and write it into the project's queue")
    select.add_argument("--project", type=project_id, required=True, help="Label Studio project id")
    select.add_argument("--size", type=positive, default=None, help="batch size (default: project or LABELQUEUE_BATCH_SIZE)")
    select.set_defaults(handler=run_select)

    failures = add_command(commands, "failures", help="flag tasks as production failures")
    failure_commands = failures.add_subparsers(required=True, metavar="ACTION")
    add = add_command(failure_commands, "add", help="flag tasks so the failure slice picks them")
    add.add_argument("--project", type=project_id, required=True, help="Label Studio project id")
    add.add_argument("--task-ids", type=task_id, nargs="+", required=True, metavar="ID",
                     help="Label Studio ids of the tasks to flag")
    add.set_defaults(handler=run_failures_add)

    report = add_command(commands, "report", help="measure the loop now and write the HTML report")
    report.add_argument("--project", type=project_id, required=True, help="Label Studio project id")
    report.add_argument("--out", type=Path, default=Path("report.html"), help="where to write the page")
    report.set_defaults(handler=run_report)

    quickstart = add_command(commands, "quickstart", help="run Label Studio and the backend on this machine with a "
                                     "demo project (or your tasks) until the first queue is written; Ctrl-C stops")
    quickstart.add_argument("--task", choices=("classification", "ner"), help="what annotators do: pick labels "
                            "(classification, the default) or mark entity spans (ner); picks the demo and the config "
                            "--labels builds")
    quickstart.add_argument("--tasks", type=Path, help="CSV, JSON or JSONL with a 'text' column (default: the demo's 301 support messages, or "
                            "with --task ner its 240 order and support notes)")
    quickstart.add_argument("--labels", nargs="+", metavar="LABEL", help="the choices annotators pick from, or with --task ner the entity types they mark (default: the "
                            "demo's, or those of --config)")
    quickstart.add_argument("--multi-label", action="store_true", help="annotators may pick several labels")
    quickstart.add_argument("--config", type=Path, help="your labelling config (XML) instead of --labels (default: built from --labels)")
    quickstart.add_argument("--label-field", help="column with known labels (for ner: a list of {\"start\", \"end\", "
                            "\"label\"} entities): a few rows per label are imported annotated so the first model "
                            "can train (default: none; the demo has its own)")
    quickstart.add_argument("--seed-per-label", type=int, help="annotated rows per label "
                            "(entity type) (default: 2; 4 with --task ner, where one sentence holds several types)")
    quickstart.add_argument("--batch-size", type=int, default=20, help="tasks per queue")
    quickstart.add_argument("--retrain-after", type=int, default=2, help="new labels that trigger a retrain")
    quickstart.add_argument("--port", type=int, default=8080, help="Label Studio's port, if free")
    quickstart.add_argument("--backend-port", type=int, default=9090, help="the backend's port, if free")
    quickstart.add_argument("--no-browser", action="store_true", help="do not open the project in a browser")
    quickstart.set_defaults(handler=run_quickstart)

    check = add_command(commands, "check-config", help="say whether labelling configs are ones the backend supports")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE",
                       help="labelling config (XML), as in Project -> Settings -> Labeling Interface -> Code")
    check.set_defaults(handler=run_check_config)
    return parser


def run_serve(args: argparse.Namespace) -> int:
    from backend.model_key import model_key

    settings = Settings.from_env()
    model_key(settings)  # a missing or misplaced key stops start-up here, not in each worker
    logger.info("data dir %s; Label Studio %s; background jobs %s", settings.data_dir,
                mask_url(settings.label_studio_url) if settings.label_studio_url
                else "from /setup (LABEL_STUDIO_URL not set)",
                "on RQ workers (LABELQUEUE_REDIS_URL)" if settings.redis_url else "in this process")
    if args.dev:
        from backend.web.app import create_app

        create_app(settings).run(host=args.host, port=args.port, threaded=True)
        return 0
    from backend.web.server import GunicornServer

    GunicornServer(settings, bind=f"{args.host}:{args.port}", workers=args.workers,
                   connections=args.connections, log_level=args.log_level).run()
    return 0


def run_worker(args: argparse.Namespace) -> int:
    from backend.worker import run_worker as work

    return work(Settings.from_env(), queues=args.queues, burst=args.burst, name=args.name, log_level=args.log_level)


def run_select(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from backend.loop.cycle import run_cycle
    from backend.runtime import Runtime

    console = Console()
    rt = Runtime.build(Settings.from_env())
    rt.store.create_project(args.project)
    with console.status("starting") as status:
        report = run_cycle(rt.cycle, args.project, size=args.size,
                           progress=lambda step: status.update(step))
    if not report.done:
        console.print(f"[yellow]no batch written:[/] {report.reason}")
        return 1
    rt.loop.after_cycle(report)  # the step the select job chains to: measure the new cycle
    figures = report.figures
    table = Table(title=f"project {args.project}: cycle {figures['cycle']} ({figures['model_version'] or 'no model'})")
    for column in ("slice", "tasks"):
        table.add_column(column)
    for name, count in figures["counts"].items():
        table.add_row(name, str(count))
    console.print(table)
    console.print(f"{figures['selectable']} unlabelled of {figures['pool_size']} tasks; "
                  f"seconds per step: {figures['seconds']}")
    console.print("Annotators: open the 'Active learning queue' tab and use 'Label Tasks As Displayed'.")
    return 0


def run_failures_add(args: argparse.Namespace) -> int:
    from backend.jobs.backends import open_store
    from backend.loop.failures import FailureLog

    settings = Settings.from_env()
    from backend.web.ids import MAX_ID

    invalid = [t for t in [args.project, *args.task_ids] if not 0 < t <= MAX_ID]
    if invalid:
        raise SettingsError(f"project and task ids must be from 1 to {MAX_ID}; got {invalid}")
    log = FailureLog(open_store(settings))
    added = log.add(args.project, args.task_ids, source="cli")
    print(f"project {args.project}: {added} task(s) newly flagged, {len(log.read(args.project))} flagged in all")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from backend.runtime import Runtime

    measured = Runtime.build(Settings.from_env()).loop.measure(args.project)
    args.out.write_text(measured.html, encoding="utf-8")
    warnings = measured.measurement.warnings
    print(f"project {args.project}: {measured.measurement.totals['cycles']} cycles measured, "
          f"{len(warnings)} warning(s); report written to {args.out}")
    for warning in warnings:
        print(f"  warning: {warning['message']}")
    return 0


def run_quickstart(args: argparse.Namespace) -> int:
    from backend.local.quickstart import run

    return run(args)


def run_check_config(args: argparse.Namespace) -> int:
    from backend.local.quickstart import check_config_files

    return check_config_files(args.files)


if __name__ == "__main__":
    sys.exit(main())
