"""``labelqueue quickstart``: a working active-learning loop on this machine, in one command.

It starts a throwaway Label Studio (fresh data dir, generated admin) and ``labelqueue serve``
on 127.0.0.1, builds a project from ``label_config/``, imports the demo tasks (or the user's),
connects the backend, has the first model trained on a few seeded annotations, waits until the
first "Active learning queue" is written and prints where to click. Ctrl-C stops both servers.

Inputs are checked before anything starts (``quickstart_inputs``); the two servers start side
by side and stop together (``quickstart_servers``); this module builds the project through the
gateway, waits for the backend's first queue and tells the person what to do next.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading
import time
import webbrowser
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from backend.errors import UnsupportedConfigError
from backend.labelstudio.errors import LabelStudioRefused, LabelStudioUnavailable
from backend.labelstudio.gateway import Connection
from backend.labelstudio.project_setup import LabelStudioAdmin
from backend.labelstudio.queue_writer import QUEUE_TAB_TITLE
from backend.local.label_studio_server import ADMIN_EMAIL, BackendCallError, StartupError, call_json
from backend.local.quickstart_inputs import (
    DEMOS,
    QuickstartError,
    TaskFileError,
    TaskRow,
    check_config,
    config_with_labels,
    describe,
    read_task_file,
    seed_rows,
)
from backend.local.quickstart_servers import Servers, label_studio_executable, new_run_dir
from backend.model.labelconfig import TaskSpec, kind_of
from backend.settings import Settings

#: Title of the ML connection; also the project's ``model_version``, which makes Label Studio
#: ask the backend for a fresh prediction whenever a task is opened.
ML_TITLE = "labelqueue"
QUEUE_TIMEOUT = 180.0
#: Data Manager columns hidden in the queue tab so the text, slice and rank fit on one screen.
#: The queue writer keeps a tab's other settings when it writes later cycles.
HIDDEN_COLUMNS = ("inner_id", "annotations_results", "annotations_ids", "predictions_model_versions",
                  "predictions_results", "file_upload", "storage_filename", "created_at", "updated_at",
                  "updated_by", "avg_lead_time", "draft_exists", "data.labelqueue_cycle")


#: What an annotator does with one sentence of a span project, in the labelling UI's own terms.
SPAN_INSTRUCTIONS = ("Check the marked entities: to add one, click its type above the text (or press its number "
                     "key) and select the words; to remove one, click it and press Backspace. Then Submit.")

#: The share of a batch labelled before the next is written (the backend's default
#: ``LABELQUEUE_REFILL_AT``, which the quickstart keeps).
REFILL_SHARE: float = Settings.__dataclass_fields__["refill_at"].default
#: The quickstart project's slice mix: the backend's default with control doubled to 10 %
#: (from uncertain), so each small batch carries two control items.
QUICKSTART_MIX = {"uncertain": 0.5, "diverse": 0.25, "failure": 0.15, "control": 0.1}


@dataclass(frozen=True)
class QuickstartOptions:
    """What to run on and where; everything has a demo default."""

    config: str
    #: ``config`` parsed once, when the inputs are checked.
    spec: TaskSpec
    rows: list[TaskRow]
    #: Runs go under ``<data root>/<start time>/``; the template database under ``template/``.
    data_root: Path
    title: str = "labelqueue demo"
    seed_per_label: int = 2
    #: Chosen so that "is the loop helping?" has control figures for two cycles after a person
    #: works through two batches (README, Quickstart): 20 tasks with 10 % control put control
    #: items at ranks 5 and 15, both labelled before the batch is replaced at 80 % (16 tasks);
    #: a retrain every 2 labels checks that share often enough that the next batch is written
    #: while 3-4 tasks of the current one are left, so the stream does not run dry.
    batch_size: int = 20
    retrain_after: int = 2
    label_studio_port: int = 8080
    backend_port: int = 9090
    open_browser: bool = True


@dataclass(frozen=True)
class Ready:
    """Where the running loop can be reached, once the first queue is written."""

    label_studio_url: str
    password: str
    backend_url: str
    project_id: int
    project_url: str
    queue: dict[str, Any]
    seconds: float


def options_from_args(args: argparse.Namespace) -> QuickstartOptions:
    """Read and check every input before any server starts, so mistakes cost no waiting.

    ``--task`` picks the demo and the template ``--labels`` fills; a ``--config`` of its own says
    whether the project is classification or span labelling, and must agree with ``--task``.
    """
    demo, task = args.tasks is None, args.task or "classification"
    if args.config and args.labels:
        raise QuickstartError("give either --config or --labels, not both")
    if args.multi_label and task == "ner":
        raise QuickstartError("--multi-label is for classification; in --task ner every span has one entity type")
    if args.config:
        config = _read_text(args.config)
    elif args.labels:
        config = config_with_labels(args.labels, multilabel=args.multi_label, spans=task == "ner")
    elif demo:
        config = _read_text(DEMOS[task].config)
    else:
        config = None
    spec = check_config(config) if config else None
    if spec and args.task and (spec.kind == "spans") != (task == "ner"):
        raise QuickstartError(f"--task {args.task} does not fit {args.config}: it is {describe(spec)}")
    spans = spec.kind == "spans" if spec else task == "ner"
    label_field = args.label_field or (DEMOS[task].label_field if demo else None)
    rows = read_task_file(args.tasks or DEMOS[task].tasks, text_field=spec.value_key if spec else "text",
                          label_field=label_field, spans=spans)
    if config is None:
        config = _config_from_rows(rows, spans=spans, multilabel=args.multi_label)
        spec = check_config(config)
    seed_per_label = DEMOS[task].seed_per_label if args.seed_per_label is None else args.seed_per_label
    if seed_per_label < 0 or args.batch_size < 1 or args.retrain_after < 1:
        raise QuickstartError("--seed-per-label must be at least 0, --batch-size and --retrain-after at least 1")
    title = DEMOS[task].title if demo else f"labelqueue: {args.tasks.stem}"
    return QuickstartOptions(config=config, spec=spec, rows=rows, data_root=Settings.from_env().data_dir / "quickstart",
                             title=title, seed_per_label=seed_per_label,
                             batch_size=args.batch_size, retrain_after=args.retrain_after,
                             label_studio_port=args.port, backend_port=args.backend_port,
                             open_browser=not args.no_browser)


def _config_from_rows(rows: list[TaskRow], *, spans: bool, multilabel: bool) -> str:
    """The shipped template filled with the labels (entity types) that ``--label-field`` holds."""
    known = sorted({span[2] if spans else span for row in rows for span in row.labels})
    if len(known) < (1 if spans else 2):
        what = "entity types to mark: --labels TYPE ..." if spans else "what annotators should choose from: --labels A B C"
        held = "entities in it" if spans else "at least two distinct labels in it"
        raise QuickstartError(f"say {what}, or --config FILE, or --label-field COLUMN with {held}")
    return config_with_labels(known, multilabel=multilabel, spans=spans)


def run(args: argparse.Namespace, console: Console | None = None) -> int:
    """The command: start, report, wait for Ctrl-C, stop. Exit code 0 after a clean Ctrl-C."""
    started = time.monotonic() - _seconds_since_process_start()
    console = console or Console(soft_wrap=True, highlight=False)
    try:
        options = options_from_args(args)
    except (QuickstartError, UnsupportedConfigError, TaskFileError) as exc:
        console.print(f"[red]labelqueue quickstart:[/] {exc}")
        return 2
    if not label_studio_executable().exists():
        console.print("[red]Label Studio is not installed beside labelqueue.[/] Install the extra: "
                      "pip install -e '.[quickstart]'")
        return 2
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:  # Ctrl-C must work even when started with SIGINT ignored (``cmd &``, nohup)
        previous = signal.signal(signal.SIGTERM, _interrupt), signal.signal(signal.SIGINT, signal.default_int_handler)
    servers = Servers(run_dir=new_run_dir(options.data_root))
    try:
        ready = start(options, servers, console, started)
        print_ready(console, ready, options, servers)
        if options.open_browser and _has_display():
            webbrowser.open(ready.project_url)
        wait_until_interrupted(servers, console)
        return 1
    except KeyboardInterrupt:
        console.print("\nStopping Label Studio and the backend ...")
        return 0
    except (QuickstartError, StartupError, BackendCallError, LabelStudioUnavailable, LabelStudioRefused) as exc:
        console.print(f"[red]labelqueue quickstart failed:[/] {exc}")
        console.print(f"Logs: {servers.run_dir}")
        return 1
    finally:
        if in_main_thread:  # a second Ctrl-C must not leave a server half-stopped
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        servers.stop()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous[0])
            signal.signal(signal.SIGINT, previous[1])
        console.print(f"Stopped. This run's data stays in {servers.run_dir}")


def start(options: QuickstartOptions, servers: Servers, console: Console, started: float) -> Ready:
    """Servers up, project built, first queue written; ``servers`` records what is running."""
    with console.status("starting") as status:
        return _start(options, servers, _Steps(console, status, started))


def _start(options: QuickstartOptions, servers: Servers, steps: _Steps) -> Ready:
    spec = options.spec
    steps.console.print(f"Labelling config: {describe(spec)}")
    with steps("starting Label Studio and the labelqueue backend", "Label Studio and the backend are up"):
        servers.start(options.data_root, label_studio_port=options.label_studio_port,
                      backend_port=options.backend_port, token=secrets.token_hex(20), announce=steps,
                      backend_env={"LABELQUEUE_MIN_NEW_ANNOTATIONS": str(options.retrain_after)})

    ls_url = servers.label_studio.url
    ls = LabelStudioAdmin(Connection(ls_url, servers.token))
    seeds = set(seed_rows(options.rows, spec, options.seed_per_label))
    # The backend trains once the seeds hold enough distinct labels (two classes; one entity
    # type); with fewer, the first queue is composed without a model (coverage and random
    # control) and the annotators' labels train it.
    kind = kind_of(spec)
    names = {name for index in seeds for name in kind.label_names(options.rows[index].labels)}
    trainable = len(names) >= kind.min_label_names
    with steps("creating the project and importing tasks",
               f"project created, {len(options.rows)} tasks imported ({len(seeds)} already annotated)"):
        project = ls.create_project(options.title, options.config, "Created by labelqueue quickstart")
        ls.import_tasks(project.project_id, [_task(row, spec, i in seeds) for i, row in enumerate(options.rows)])
    with steps("connecting the backend", "backend connected; annotators see its predictions"):
        ml_id = ls.connect_backend(project.project_id, servers.backend.url, ML_TITLE,
                                   {"batch_size": options.batch_size, "mix": QUICKSTART_MIX})
        ls.show_predictions(project.project_id, ML_TITLE)
    with steps("training the first model and writing the queue" if trainable else "writing the first queue",
               f"first model trained and the '{QUEUE_TAB_TITLE}' written" if trainable else
               f"'{QUEUE_TAB_TITLE}' written (too few labels for a model: picked for coverage and at random)"):
        if trainable:
            ls.train(ml_id)
        else:
            call_json("POST", f"{servers.backend.url}/projects/{project.project_id}/select", timeout=30)
        queue = wait_for_queue(servers, project.project_id, need_model=trainable)
    tab = next(t for t in project.tabs() if t["data"].get("title") == QUEUE_TAB_TITLE)
    hidden = {"explore": [f"tasks:{column}" for column in HIDDEN_COLUMNS], "labeling": []}
    project.update_tab(tab["id"], {**tab["data"], "hiddenColumns": hidden})
    servers.write_connection(project.project_id)
    return Ready(label_studio_url=ls_url, password=servers.label_studio.password, backend_url=servers.backend.url,
                 project_id=project.project_id,
                 project_url=f"{ls_url}/projects/{project.project_id}/data?tab={tab['id']}",
                 queue=queue, seconds=time.monotonic() - steps.started)


def wait_for_queue(servers: Servers, project_id: int, *, need_model: bool,
                   timeout: float = QUEUE_TIMEOUT) -> dict[str, Any]:
    """The project's first queue, as ``GET /projects/<id>/queue`` returns it."""
    deadline = time.monotonic() + timeout
    url = servers.backend.url
    while time.monotonic() < deadline:
        if (dead := servers.dead()) is not None:
            raise QuickstartError(f"{dead.url} exited (code {dead.process.returncode}); see {dead.log}")
        status, queue = call_json("GET", f"{url}/projects/{project_id}/queue", timeout=10, ok=(200, 404))
        if status == 200 and (queue["model_version"] or not need_model):
            return queue
        time.sleep(0.3)
    _, health = call_json("GET", f"{url}/health", timeout=10)
    raise QuickstartError(f"no queue after {timeout:.0f}s (backend health: {health}); see {servers.backend.log}")


def print_ready(console: Console, ready: Ready, options: QuickstartOptions, servers: Servers) -> None:
    """The one place the generated password is shown, with what to click next."""
    counts = ", ".join(f"{name} {n}" for name, n in ready.queue["counts"].items() if n)
    version = ready.queue["model_version"]
    model = f"model {version}" if version else "no model yet (nothing is labelled)"
    spans = options.spec.kind == "spans"
    guess = ("with the model's guess preselected" if version and not spans else
             "with the entities the model found already marked" if version else
             "(the model's guesses appear once the first labels have trained it)")
    what_to_do = (SPAN_INSTRUCTIONS if spans else "Pick the right label and Submit.")
    console.print()
    console.print(f"[bold green]Active learning queue written {ready.seconds:.1f} s after the command started.[/]")
    console.print(f"  Label Studio: {ready.label_studio_url}")
    console.print(f"  Email:        {ADMIN_EMAIL}")
    console.print(f"  Password:     {ready.password}   (generated for this run; shown only here)")
    console.print(f"  Project:      {ready.project_url}")
    console.print(f"  Backend:      {ready.backend_url}   (GET /metrics, /projects/{ready.project_id}/queue)")
    console.print(f"  Data:         {servers.run_dir}   (connection.json there holds the API token for scripts)")
    console.print(f"  Queue:        {len(ready.queue['items'])} tasks ({counts}), {model}")
    console.print()
    console.print("Next:")
    console.print("  1. Open the project URL and log in with the email and password above.")
    console.print(f"  2. The '{QUEUE_TAB_TITLE}' tab lists the tasks picked for labelling, in queue order; the "
                  "labelqueue_slice column says why each one is there.")
    console.print("  3. Click the arrow beside 'Label All Tasks' and choose 'Label Tasks As Displayed': tasks "
                  f"come in queue order {guess}. {what_to_do}")
    console.print(f"  4. Keep labelling: every {options.retrain_after} labels the model retrains; once "
                  f"{REFILL_SHARE:.0%} of the batch is labelled the next one is written and the same stream goes on "
                  "with it (no reload needed).")
    console.print(f"  5. After two batches (about {2 * round(REFILL_SHARE * options.batch_size) + 2} labels) "
                  f"the report answers 'is the loop helping?': {ready.backend_url}/projects/{ready.project_id}/report")
    console.print("Press Ctrl-C to stop both servers.")


def wait_until_interrupted(servers: Servers, console: Console) -> None:
    """Block until Ctrl-C (or SIGTERM); returns only if a server dies on its own."""
    while (dead := servers.dead()) is None:
        time.sleep(0.5)
    console.print(f"[red]{dead.url} exited on its own (code {dead.process.returncode}); see {dead.log}[/]")


def _task(row: TaskRow, spec: TaskSpec, annotated: bool) -> dict[str, Any]:
    """A task in Label Studio's import format; seeded ones carry their annotation inline, so
    the import sends no webhooks (the backend is connected afterwards and trained once)."""
    task: dict[str, Any] = {"data": row.data}
    if annotated:
        task["annotations"] = [{"result": kind_of(spec).result_of(row.data[spec.value_key], row.labels, spec)}]
    return task


class _Steps:
    """Shows what is happening on a spinner; prints one timed line per finished step."""

    def __init__(self, console: Console, status: Any, started: float):
        self.console, self.status, self.started = console, status, started
        self.lock, self.doing = threading.Lock(), ""

    def __call__(self, doing: str, done: str) -> _Step:
        return _Step(self, doing, done)


class _Step:
    def __init__(self, steps: _Steps, doing: str, done: str):
        self.steps, self.doing, self.done = steps, doing, done

    def __enter__(self) -> None:
        self.begun, self.outer = time.monotonic(), self.steps.doing
        self.steps.doing = self.doing
        self.steps.status.update(self.doing)

    def __exit__(self, kind, *_) -> None:
        self.steps.doing = self.outer
        self.steps.status.update(self.outer)
        if kind is None:
            now = time.monotonic()
            with self.steps.lock:
                self.steps.console.print(f"[green]✓[/] {self.done} [dim]({now - self.begun:.1f} s; "
                                         f"{now - self.steps.started:.1f} s since the command started)[/]")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise QuickstartError(f"cannot read {path}: {exc.strerror}") from None


def _seconds_since_process_start() -> float:
    """Wall time since this process started (Linux), so the reported time includes Python's
    start-up and imports, as a person with a stopwatch would count it; 0 where unknown."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def _has_display() -> bool:
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def check_config_files(paths: list[Path], console: Console | None = None) -> int:
    """``labelqueue check-config``: 0 if every file is a config the backend supports."""
    console = console or Console(soft_wrap=True, highlight=False)
    failed = 0
    for path in paths:
        try:
            console.print(f"{path}: supported: {describe(check_config(_read_text(path)))}")
        except (UnsupportedConfigError, QuickstartError) as exc:
            failed += 1
            console.print(f"{path}: [red]not supported:[/] {exc}")
    return 1 if failed else 0
