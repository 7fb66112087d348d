"""The daily job: the one sequence every shipped schedule runs (SPEC §11, §12).

0. **push pending**: the bot's own state commits that an earlier run could not push
   are pushed first (rebased onto what was merged meanwhile), so the refresh can
   fast-forward and a merged registry PR is never a day late;
1. **refresh** the control-plane checkout (``petrova sync --self``), so that merged
   registry PRs reach the host;
2. **sync** the consumers' clones (``petrova sync``);
3. **probe** every wired cell and record the outcomes (``petrova probe --record``);
4. **snapshot** to ``-o FILE`` and ``--publish`` it;
5. **page**: the fleet page beside it (``fleet.json`` -> ``fleet.html``, or ``--page``);
6. **keep state**: commit the bot's files (the ledgers ``state/*.yaml`` and the run
   record ``state/runs/daily.json``, never ``state/promotions/``, which humans own);
7. **push state**: push that commit (to the branch, or to ``--push-branch``).

Each step is petrova itself in a child process (or, for git, one small function), so one
step's crash cannot take the others with it, and its exit code decides, by
:data:`STEPS`' policy, whether the run goes on: a failed refresh, sync or probe warns and
the snapshot still runs on what was last recorded (cells go stale honestly); a failed
snapshot, page or state commit fails the run, and a written file stays; a failed push
warns (``STATE_NOT_PUSHED``): the commit is kept and pushed by the next run. What a step
says on stderr is passed on only when it is worth a person's attention: unattended and
all well, the job prints nothing. Every run leaves a record (:mod:`petrova.fleet.runs`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from petrova import clock
from petrova.errors import DailyFailed, StateNotCommitted, StateNotPushed
from petrova.fleet.runs import RUNS_RELPATH, RunLog, running, runs_path
from petrova.models import StepOutcome, format_timestamp

Policy = Literal["warn", "fail"]

#: Each step's name and what its failure means for the run.
STEPS: dict[str, Policy] = {
    "push pending": "warn",
    "refresh": "warn",
    "sync": "warn",
    "probe": "warn",
    "snapshot": "fail",
    "page": "fail",
    "keep state": "fail",
    "push state": "warn",
}

#: The identity the job commits ledgers as, unless git's own variables say otherwise.
BOT_NAME = "petrova-bot"
BOT_EMAIL = "petrova-bot@users.noreply.github.com"
PUSH_ATTEMPTS = 3


@dataclass(frozen=True)
class DailyPlan:
    """Everything the job needs, resolved by the command from its options."""

    registry: Path
    catalogue: Path | None
    state_dir: Path
    workspace: Path
    output: Path
    publish: str | None = None
    token_env: str | None = None
    jobs: int | None = None
    self_update: bool = True
    commit_state: bool = False
    push: bool = False
    wait: float = 600.0
    #: Where the fleet page goes; ``None``: beside ``output``, with ``.html``.
    page: Path | None = None
    #: Push the bot's state commits to this branch instead of the checked-out one (for a
    #: protected ``main``); the checked-out branch then never carries them.
    push_branch: str | None = None

    @property
    def page_path(self) -> Path:
        return self.page if self.page is not None else self.output.with_suffix(".html")


@dataclass(frozen=True)
class StepResult:
    name: str
    code: int
    said: str  # what the step wrote on stderr

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass
class DailyReport:
    results: list[StepResult] = field(default_factory=list)

    @property
    def failed(self) -> list[StepResult]:
        return [r for r in self.results if not r.ok and STEPS[r.name] == "fail"]

    @property
    def warned(self) -> list[StepResult]:
        return [r for r in self.results if not r.ok and STEPS[r.name] == "warn"]


Runner = Callable[[Sequence[str], Path], tuple[int, str]]


def run_child(argv: Sequence[str], cwd: Path) -> tuple[int, str]:
    """Run one step; stdout is discarded (steps write files), stderr is kept."""
    proc = subprocess.run(
        list(argv),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    return proc.returncode, proc.stderr.decode("utf-8", "replace")


def step_commands(plan: DailyPlan) -> list[tuple[str, list[str]]]:
    """The petrova command line of each step: options only, never a secret."""
    me = [sys.executable, "-m", "petrova"]
    common = ["--registry", str(plan.registry)]
    if plan.catalogue is not None:
        common += ["--catalogue", str(plan.catalogue)]
    fleet = [*common, "--state-dir", str(plan.state_dir), "--workspace", str(plan.workspace)]
    jobs = ["--jobs", str(plan.jobs)] if plan.jobs is not None else []
    steps: list[tuple[str, list[str]]] = []
    if plan.self_update:
        steps.append(("refresh", [*me, "sync", "--self", *common]))
    steps.append(("sync", [*me, "sync", *common, "--workspace", str(plan.workspace), *jobs]))
    steps.append(("probe", [*me, "probe", "--record", *fleet, *jobs]))
    snapshot = [*me, "snapshot", *fleet, "-o", str(plan.output), "--wait", str(plan.wait)]
    if plan.publish is not None:
        snapshot += ["--publish", plan.publish]
        if plan.token_env is not None:
            snapshot += ["--token-env", plan.token_env]
    steps.append(("snapshot", snapshot))
    return steps


def run_daily(
    plan: DailyPlan,
    *,
    runner: Runner = run_child,
    on_step: Callable[[StepResult], None] | None = None,
) -> DailyReport:
    """Run the sequence; never raises for a step's failure, the report says it.

    The run's record is written at the start (``finished_at`` null), after each step and
    at the end; the lock it holds meanwhile tells a snapshot that the run is in progress.
    """
    report = DailyReport()
    record_path = runs_path(plan.state_dir)
    with running(record_path):  # LOCK_TIMEOUT (exit 75): another daily is still on
        log = RunLog(record_path, format_timestamp(clock.now()))
        _run_steps(plan, report, log, runner=runner, on_step=on_step)
    return report


def _run_steps(
    plan: DailyPlan,
    report: DailyReport,
    log: RunLog,
    *,
    runner: Runner,
    on_step: Callable[[StepResult], None] | None,
) -> None:
    if plan.commit_state and plan.push:
        _note(report, _git_step("push pending", lambda: push_pending(plan)), log, on_step)
    for name, argv in step_commands(plan):
        code, said = runner(argv, plan.registry.parent)
        _note(report, StepResult(name, code, said), log, on_step)
    if plan.output.exists():
        code, said = runner(page_command(plan), plan.registry.parent)
        said = said if code != 0 else ""  # "create fleet.html" is not worth a person's mail
        _note(report, StepResult("page", code, said), log, on_step)
    # The fleet's work is done: the record says so before it is committed with the
    # ledgers; how keeping and pushing went is added after (and committed next run).
    log.finish(format_timestamp(clock.now()))
    if not plan.commit_state:
        return
    committed = _git_step("keep state", lambda: keep_state(plan))
    _note(report, committed, log, on_step)
    if committed.ok and plan.push:
        _note(report, _git_step("push state", lambda: push_state(plan)), log, on_step)


def _git_step(name: str, action: Callable[[], str]) -> StepResult:
    try:
        return StepResult(name, 0, action())
    except (StateNotCommitted, StateNotPushed) as exc:
        return StepResult(name, int(exc.exit_code), exc.render() + "\n")


def _note(
    report: DailyReport,
    result: StepResult,
    log: RunLog | None,
    on_step: Callable[[StepResult], None] | None,
) -> None:
    report.results.append(result)
    if log is not None:
        outcome: StepOutcome = (
            "ok" if result.ok else "warned" if STEPS[result.name] == "warn" else "failed"
        )
        log.step(result.name, outcome, result.code)
    if on_step is not None:
        on_step(result)


def page_command(plan: DailyPlan) -> list[str]:
    """``petrova render`` of the snapshot just written, to the page beside it."""
    argv = [sys.executable, "-m", "petrova", "render", str(plan.output), "-o", str(plan.page_path)]
    if plan.catalogue is not None:
        argv += ["--catalogue", str(plan.catalogue)]
    return argv


def raise_for(report: DailyReport) -> None:
    if report.failed:
        names = ", ".join(r.name for r in report.failed)
        raise DailyFailed(f"the daily run failed at: {names} (what each said is above)")


# --- keeping the ledgers -------------------------------------------------------------------


def _git(checkout: Path, *args: str, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        ["git", "-C", str(checkout), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})},
    )
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _bot_identity() -> dict[str, str]:
    """git's own variables win; the bot fills in only what is unset."""
    env = dict(os.environ)
    return {
        "GIT_AUTHOR_NAME": env.get("GIT_AUTHOR_NAME", BOT_NAME),
        "GIT_AUTHOR_EMAIL": env.get("GIT_AUTHOR_EMAIL", BOT_EMAIL),
        "GIT_COMMITTER_NAME": env.get("GIT_COMMITTER_NAME", BOT_NAME),
        "GIT_COMMITTER_EMAIL": env.get("GIT_COMMITTER_EMAIL", BOT_EMAIL),
    }


def _checkout_top(plan: DailyPlan, error: type[StateNotCommitted | StateNotPushed]) -> Path:
    checkout = plan.registry.parent
    code, top = _git(checkout, "rev-parse", "--show-toplevel")
    if code != 0:
        raise error(f"{checkout} is not a git checkout: {top}")
    return Path(top)


def bot_pathspecs(plan: DailyPlan, top: Path) -> list[str]:
    """The bot's files and nothing else: the ledgers and the run record. Never a lock
    file, a temporary file, or ``state/promotions/`` (the humans' files)."""
    try:
        relative = plan.state_dir.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        raise StateNotCommitted(
            f"the state folder {plan.state_dir} is outside the control-plane checkout {top}; "
            "--commit-state keeps only ledgers inside it"
        ) from None
    wanted = {
        f":(glob){relative}/*.yaml": any(plan.state_dir.glob("*.yaml")),
        f":(glob){relative}/{RUNS_RELPATH.as_posix()}": (plan.state_dir / RUNS_RELPATH).exists(),
    }
    # git add refuses a pathspec that matches nothing, on disk or in the index
    found = [
        spec
        for spec, on_disk in wanted.items()
        if on_disk or _git(top, "ls-files", "--cached", "--", spec)[1].strip()
    ]
    return [*found, f":(exclude,glob){relative}/.*"] if found else []


def keep_state(plan: DailyPlan) -> str:
    """Commit the bot's files (see :func:`bot_pathspecs`) as the bot; nothing else.

    With ``push_branch`` the commit goes onto that branch (built with a separate index,
    so the checked-out branch and its index are never touched); else onto the
    checked-out branch. Returns what is worth saying ('' when nothing changed).
    """
    top = _checkout_top(plan, StateNotCommitted)
    paths = bot_pathspecs(plan, top)
    if plan.push_branch is not None:
        return _commit_to_branch(top, paths, plan.push_branch)
    if not paths:
        return ""  # no ledger yet, none removed: nothing to keep
    code, said = _git(top, "add", "-A", "--", *paths)
    if code != 0:
        raise StateNotCommitted(f"git add of the ledgers failed: {said}")
    code, _ = _git(top, "diff", "--cached", "--quiet", "--", *paths)
    if code == 0:
        return ""
    code, said = _git(
        top,
        "commit",
        "--quiet",
        "--no-verify",
        "-m",
        _message(),
        "--",
        *paths,
        env=_bot_identity(),
    )
    if code != 0:
        raise StateNotCommitted(f"git commit failed: {said}")
    return ""


def _message() -> str:
    return f"state: probe outcomes of {format_timestamp(clock.now())}"


def _commit_to_branch(top: Path, paths: list[str], branch: str) -> str:
    """One commit of the bot's files on ``branch``, whose tree is exactly those files."""
    ref = f"refs/heads/{branch}"
    code, parent = _git(top, "rev-parse", "--verify", "-q", ref)
    if code != 0:
        _git(top, "fetch", "--quiet", "origin", f"+{ref}:{ref}")
        code, parent = _git(top, "rev-parse", "--verify", "-q", ref)
    has_parent = code == 0 and bool(parent)
    _, gitdir = _git(top, "rev-parse", "--absolute-git-dir")
    index = {"GIT_INDEX_FILE": str(Path(gitdir) / "petrova-state-index")}
    _git(top, "read-tree", "--empty", env=index)
    code, said = _git(top, "add", "-A", "--", *paths, env=index)
    if code != 0:
        raise StateNotCommitted(f"git add of the ledgers failed: {said}")
    code, tree = _git(top, "write-tree", env=index)
    if code != 0:
        raise StateNotCommitted(f"git write-tree failed: {tree}")
    if has_parent:
        _, old_tree = _git(top, "rev-parse", f"{parent}^{{tree}}")
        if old_tree == tree:
            return ""
    argv = ["commit-tree", tree, "-m", _message(), *(["-p", parent] if has_parent else [])]
    code, commit = _git(top, *argv, env=_bot_identity())
    if code != 0:
        raise StateNotCommitted(f"git commit-tree failed: {commit}")
    code, said = _git(top, "update-ref", ref, commit)
    if code != 0:
        raise StateNotCommitted(f"git update-ref {ref} failed: {said}")
    return ""


def _target(plan: DailyPlan, top: Path) -> str:
    """The branch the bot pushes: ``--push-branch``, else the checked-out one."""
    if plan.push_branch is not None:
        return plan.push_branch
    code, branch = _git(top, "symbolic-ref", "--short", "HEAD")
    if code != 0:
        raise StateNotPushed("the control-plane checkout is not on a branch; cannot push")
    return branch


def push_pending(plan: DailyPlan) -> str:
    """Push the bot's commits an earlier run kept, before the refresh (SPEC §12)."""
    top = _checkout_top(plan, StateNotPushed)
    branch = _target(plan, top)
    local = f"refs/heads/{branch}" if plan.push_branch is not None else "HEAD"
    code, said = _git(top, "fetch", "--quiet", "origin")
    if code != 0:
        raise StateNotPushed(f"git fetch origin failed: {said}; the next run tries again")
    code, ahead = _git(top, "rev-list", "--count", f"refs/remotes/origin/{branch}..{local}")
    if code != 0 and plan.push_branch is not None:
        code, ahead = _git(top, "rev-list", "--count", local)  # the branch is new
    if code != 0 or ahead.strip() in ("", "0"):
        return ""
    _push_with_retry(top, branch, state_branch=plan.push_branch is not None)
    return ""


def push_state(plan: DailyPlan) -> str:
    """Push the commit :func:`keep_state` made; a failure keeps it for the next run."""
    top = _checkout_top(plan, StateNotPushed)
    _push_with_retry(top, _target(plan, top), state_branch=plan.push_branch is not None)
    return ""


def _push_with_retry(top: Path, branch: str, *, state_branch: bool) -> None:
    """Push; when a human's PR overtook the push, rebase onto it and try again, up to
    :data:`PUSH_ATTEMPTS` times. A state branch is only ever the bot's: it is pushed
    as it is. A rebase that conflicts is undone; the commit stays local either way."""
    last = ""
    source = f"refs/heads/{branch}" if state_branch else "HEAD"
    for _ in range(PUSH_ATTEMPTS):
        code, last = _git(top, "push", "--quiet", "origin", f"{source}:refs/heads/{branch}")
        if code == 0:
            return
        if state_branch:
            continue
        code, said = _git(
            top,
            "pull",
            "--rebase",
            "--autostash",
            "--quiet",
            "origin",
            branch,
            env=_bot_identity(),
        )
        if code != 0:
            _git(top, "rebase", "--abort")
            raise StateNotPushed(
                f"the ledgers could not be rebased onto origin/{branch} (a change to the "
                f"same ledger landed meanwhile): {said}; the commit stays local and the next "
                "run tries again"
            )
    raise StateNotPushed(
        f"git push to origin {branch} failed {PUSH_ATTEMPTS} times: {last}; the commit is "
        "kept and the next run pushes it (a protected branch? see --push-branch in "
        "docs/OPERATIONS.md)"
    )
