"""The daily job: the one sequence every shipped schedule runs (SPEC §11).

1. **refresh** the control-plane checkout (``petrova sync --self``), so that merged
   registry PRs reach the host;
2. **sync** the consumers' clones (``petrova sync``);
3. **probe** every wired cell and record the outcomes (``petrova probe --record``);
4. **snapshot** to ``-o FILE`` and ``--publish`` it;
5. **notify**: issues, chat and pin PRs for what needs a human (``petrova notify``);
6. **keep** the ledgers: commit ``state/`` to the control-plane repo (and push it).

Each step is petrova itself in a child process, so one step's crash cannot take the
others with it, and its exit code decides, by :data:`STEPS`' policy, whether the run
goes on: a failed refresh, sync or probe warns and the snapshot still runs on what was
last recorded (cells go stale honestly); a failed snapshot, publish or state commit
fails the run, and a written file stays. What a step says on stderr is passed on only
when it is worth a person's attention: unattended and all well, the job prints nothing.
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
from petrova.errors import DailyFailed, StateNotCommitted
from petrova.models import format_timestamp

Policy = Literal["warn", "fail"]

#: Each step's name and what its failure means for the run.
STEPS: dict[str, Policy] = {
    "refresh": "warn",
    "sync": "warn",
    "probe": "warn",
    "snapshot": "fail",
    "notify": "warn",  # telling is retried next run; it never fails the snapshot or state
    "keep state": "fail",
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
    steps.append(("notify", [*me, "notify", *fleet]))
    return steps


def run_daily(
    plan: DailyPlan,
    *,
    runner: Runner = run_child,
    on_step: Callable[[StepResult], None] | None = None,
) -> DailyReport:
    """Run the sequence; never raises for a step's failure, the report says it."""
    report = DailyReport()
    for name, argv in step_commands(plan):
        code, said = runner(argv, plan.registry.parent)
        result = StepResult(name, code, said)
        report.results.append(result)
        if on_step is not None:
            on_step(result)
    if plan.commit_state:
        try:
            said = keep_state(plan)
            result = StepResult("keep state", 0, said)
        except StateNotCommitted as exc:
            result = StepResult("keep state", int(exc.exit_code), exc.render() + "\n")
        report.results.append(result)
        if on_step is not None:
            on_step(result)
    return report


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


def keep_state(plan: DailyPlan) -> str:
    """Commit the ledgers (only ``state/``) to the control-plane repo; push when asked.

    A push that a human's PR overtook is rebased and tried again, up to
    :data:`PUSH_ATTEMPTS` times; a rebase that conflicts (someone edited the same
    ledger) is undone and reported, and the commit stays local for the next run.
    Returns what is worth saying ('' when nothing changed).
    """
    checkout = plan.registry.parent
    code, top = _git(checkout, "rev-parse", "--show-toplevel")
    if code != 0:
        raise StateNotCommitted(f"{checkout} is not a git checkout: {top}")
    try:
        relative = plan.state_dir.resolve().relative_to(Path(top).resolve())
    except ValueError:
        raise StateNotCommitted(
            f"the state folder {plan.state_dir} is outside the control-plane checkout {top}; "
            "--commit-state keeps only ledgers inside it"
        ) from None
    # The ledgers only: never a lock file, a temporary file, or anything else there.
    ledgers = [f":(glob){relative.as_posix()}/*.yaml", f":(exclude,glob){relative.as_posix()}/.*"]
    # And what notify told (bot-owned too), once there is any: git refuses a pathspec
    # that matches nothing.
    told = f":(glob){relative.as_posix()}/notify/**/*.json"
    if any((plan.state_dir / "notify").glob("**/*.json")) or _git(Path(top), "ls-files", told)[1]:
        ledgers.append(told)
    _, tracked = _git(Path(top), "ls-files", "--", *ledgers)
    if not tracked and not any(plan.state_dir.glob("*.yaml")):
        return ""  # no ledger yet, none removed: nothing to keep
    code, said = _git(Path(top), "add", "-A", "--", *ledgers)
    if code != 0:
        raise StateNotCommitted(f"git add {relative} failed: {said}")
    code, _ = _git(Path(top), "diff", "--cached", "--quiet", "--", *ledgers)
    if code == 0:
        return ""
    message = f"state: probe outcomes of {format_timestamp(clock.now())}"
    code, said = _git(
        Path(top),
        "commit",
        "--quiet",
        "--no-verify",
        "-m",
        message,
        "--",
        *ledgers,
        env=_bot_identity(),
    )
    if code != 0:
        raise StateNotCommitted(f"git commit failed: {said}")
    if plan.push:
        _push_with_retry(Path(top))
    return ""


def _push_with_retry(top: Path) -> None:
    code, branch = _git(top, "symbolic-ref", "--short", "HEAD")
    if code != 0:
        raise StateNotCommitted("the control-plane checkout is not on a branch; cannot push")
    last = ""
    for _ in range(PUSH_ATTEMPTS):
        code, last = _git(top, "push", "--quiet", "origin", f"HEAD:{branch}")
        if code == 0:
            return
        code, said = _git(top, "pull", "--rebase", "--quiet", "origin", branch, env=_bot_identity())
        if code != 0:
            _git(top, "rebase", "--abort")
            raise StateNotCommitted(
                f"the ledgers could not be rebased onto origin/{branch} (a change to the "
                f"same ledger landed meanwhile): {said}; the commit stays local and the next "
                "run tries again"
            )
    raise StateNotCommitted(f"git push failed {PUSH_ATTEMPTS} times: {last}")
