"""The daily job: the one sequence every shipped schedule runs (SPEC §11).

1. **refresh** the control-plane checkout (``petrova sync --self``), so that merged
   registry PRs reach the host;
2. **sync** the consumers' clones (``petrova sync``);
3. **probe** every wired cell and record the outcomes (``petrova probe --record``);
4. **snapshot** to ``-o FILE`` and ``--publish`` it;
5. **keep** the ledgers: commit ``state/`` to the control-plane repo (and push it).

Each step is petrova itself in a child process, so one step's crash cannot take the
others with it, and its exit code decides, by :data:`STEPS`' policy, whether the run
goes on: a failed refresh, sync or probe warns and the snapshot still runs on what was
last recorded (cells go stale honestly); a failed snapshot, publish or state commit
fails the run, and a written file stays. What a step says on stderr is passed on only
when it is worth a person's attention: unattended and all well, the job prints nothing.

Beyond one runner (SPEC §14): ``--shard K/N`` runs steps 1-3 for its share, hands its
contracts over (``--bundle``) and keeps only its repos' ledgers, pushing until a
deadline; ``--final`` merges the shards' hand-overs and runs step 4 without syncing or
probing again (:mod:`petrova.fleet.shards`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from petrova import clock
from petrova.documents.shard import Shard
from petrova.errors import DailyFailed, GitFailed, GitMissing, GitTimeout, StateNotCommitted
from petrova.fleet.shards import (
    PUSH_DEADLINE,
    in_process,
    merge_bundles,
    push_until,
    shard_ledgers,
    write_bundle,
)
from petrova.models import format_timestamp
from petrova.net.git import Git, Result

Policy = Literal["warn", "fail"]

#: Each step's name and what its failure means for the run.
STEPS: dict[str, Policy] = {
    "refresh": "warn",
    "sync": "warn",
    "probe": "warn",
    "snapshot": "fail",
    "keep state": "fail",
    # the sharded daily (SPEC §14, petrova/fleet/shards.py)
    "bundle": "fail",  # a shard's hand-over of its contracts to the final job
    "shards": "warn",  # the final job merging the shards' hand-overs
    "notify": "warn",  # telling the humans (SPEC §13): see notify_command
}

#: The identity the job commits ledgers as, unless git's own variables say otherwise.
BOT_NAME = "petrova-bot"
BOT_EMAIL = "petrova-bot@users.noreply.github.com"
PUSH_ATTEMPTS = 3
#: Seconds each git command of the state commit may take (a push to a slow remote included).
GIT_TIMEOUT = 300.0


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
    #: A shard's share (``--shard K/N``): sync, probe and keep its own ledgers, no snapshot.
    shard: Shard | None = None
    #: A shard: where to write its hand-over for the final job (``--bundle DIR``).
    bundle: Path | None = None
    #: The final job (``--final``): merge the shards' bundles, snapshot, publish.
    final: bool = False
    #: The final job: the folder holding the shards' bundles (``--from-shards DIR``).
    from_shards: Path | None = None
    #: Seconds a shard keeps retrying its push (``--push-deadline``).
    push_deadline: float = PUSH_DEADLINE


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
    share = [] if plan.shard is None else ["--shard", str(plan.shard)]
    if not plan.final:  # the final job builds on the shards' sync and probes
        sync = [*me, "sync", *common, "--workspace", str(plan.workspace), *jobs, *share]
        steps.append(("sync", sync))
        steps.append(("probe", [*me, "probe", "--record", *fleet, *jobs, *share]))
    if plan.shard is not None:
        return steps  # a shard's snapshot would be a part: the final job makes the whole
    snapshot = [*me, "snapshot", *fleet, "-o", str(plan.output), "--wait", str(plan.wait)]
    if plan.publish is not None:
        snapshot += ["--publish", plan.publish]
        if plan.token_env is not None:
            snapshot += ["--token-env", plan.token_env]
    steps.append(("snapshot", snapshot))
    notify = notify_command(plan)
    if notify is not None:
        steps.append(("notify", notify))
    return steps


def notify_command(plan: DailyPlan) -> list[str] | None:
    """The notify step's command line, run once per daily: by the one runner or by the
    final job of a sharded run, never by a shard (``step_commands`` returns before the
    snapshot for a shard). ``None`` while ``petrova notify`` (SPEC §13) is not part of
    petrova: wiring it is this function returning ``[sys.executable, "-m", "petrova",
    "notify", ...]``; it gets the GitHub credential from
    :func:`petrova.net.github_app.github_credential`."""
    del plan
    return None


def run_daily(
    plan: DailyPlan,
    *,
    runner: Runner = run_child,
    on_step: Callable[[StepResult], None] | None = None,
) -> DailyReport:
    """Run the sequence; never raises for a step's failure, the report says it."""
    report = DailyReport()
    started = file_clock_now(plan.registry.parent)  # what is older is not this run's

    def in_process_step(name: str, work: Callable[[], str]) -> None:
        result = StepResult(name, *in_process(name, work))
        report.results.append(result)
        if on_step is not None:
            on_step(result)

    if plan.final and plan.from_shards is not None:
        shards_dir = plan.from_shards
        in_process_step("shards", lambda: _said(merge_bundles(shards_dir, plan.workspace)))
    for name, argv in step_commands(plan):
        code, said = runner(argv, plan.registry.parent)
        result = StepResult(name, code, said)
        report.results.append(result)
        if on_step is not None:
            on_step(result)
    if plan.shard is not None and plan.bundle is not None:
        shard, bundle = plan.shard, plan.bundle
        in_process_step("bundle", lambda: _said(write_bundle(plan.workspace, bundle, shard)))
    if plan.commit_state:
        try:
            said = keep_state(plan, started=started)
            result = StepResult("keep state", 0, said)
        except (StateNotCommitted, GitTimeout, GitFailed, GitMissing) as exc:
            result = StepResult("keep state", int(exc.exit_code), exc.render() + "\n")
        report.results.append(result)
        if on_step is not None:
            on_step(result)
    return report


def _said(_report: object) -> str:
    """In-process steps are quiet when all is well, as the child steps are."""
    return ""


def raise_for(report: DailyReport) -> None:
    if report.failed:
        names = ", ".join(r.name for r in report.failed)
        raise DailyFailed(f"the daily run failed at: {names} (what each said is above)")


# --- keeping the ledgers ------------------------------------------------------------------
#
# Each git step is a small function here, all through the one git runner (a timeout, a
# cleaned environment, no prompts): a hung git is GIT_TIMEOUT, never a crash.

#: The start of every commit the daily makes: how its own work is told from a human's.
COMMIT_PREFIX = "state: probe outcomes of "


def _git(top: Path, *args: str, env: Mapping[str, str] | None = None) -> Result:
    return Git(timeout=GIT_TIMEOUT).run(list(args), cwd=top, env=env).check_timeout(str(top))


def _bot_identity() -> dict[str, str]:
    """git's own variables win; the bot fills in only what is unset."""
    env = dict(os.environ)
    return {
        "GIT_AUTHOR_NAME": env.get("GIT_AUTHOR_NAME", BOT_NAME),
        "GIT_AUTHOR_EMAIL": env.get("GIT_AUTHOR_EMAIL", BOT_EMAIL),
        "GIT_COMMITTER_NAME": env.get("GIT_COMMITTER_NAME", BOT_NAME),
        "GIT_COMMITTER_EMAIL": env.get("GIT_COMMITTER_EMAIL", BOT_EMAIL),
    }


def checkout_root(checkout: Path) -> Path:
    result = _git(checkout, "rev-parse", "--show-toplevel")
    if not result.ok:
        raise StateNotCommitted(f"{checkout} is not a git checkout: {result.reason()}")
    return Path(result.stdout.strip())


def current_branch(top: Path) -> str:
    """The branch checked out; refused on a detached HEAD, before anything is committed
    (a commit there would be lost from the work tree at the next ``git checkout``)."""
    result = _git(top, "symbolic-ref", "--quiet", "--short", "HEAD")
    if not result.ok or not result.stdout.strip():
        raise StateNotCommitted(
            f"the control-plane checkout {top} is on a detached HEAD, not a branch; nothing "
            "was committed (the ledgers stay on disk): check out the branch the daily keeps "
            "its state on (e.g. git checkout main)"
        )
    return result.stdout.strip()


def file_clock_now(folder: Path) -> float:
    """Now, by the clock that stamps files in ``folder`` (a fresh unnamed file's mtime):
    what a lock's age is compared with. Not petrova's clock, which a test or
    ``SOURCE_DATE_EPOCH`` may set anywhere."""
    for where in (folder, None):
        try:
            with tempfile.TemporaryFile(dir=where) as probe:
                return os.fstat(probe.fileno()).st_mtime
        except OSError:
            continue
    return time.time()


def _git_path(top: Path, name: str) -> Path:
    result = _git(top, "rev-parse", "--git-path", name)
    return top / result.stdout.strip() if result.ok else top / ".git" / name


def _git_running_in(top: Path) -> bool:
    """Is a git process working in ``top``? (Linux: by each process's working folder;
    elsewhere nobody can tell, so a lock is presumed in use.)"""
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    me = top.resolve()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
            if not Path(os.fsdecode(argv0)).name.startswith("git"):
                continue
            cwd = (entry / "cwd").readlink().resolve()
        except OSError:
            continue
        if cwd == me or me in cwd.parents:
            return True
    return False


def clear_stale_index_lock(top: Path, started: float) -> str:
    """Remove ``index.lock`` left by a killed run of ours; returns what to say ('' if none).

    Only a lock older than this run, with no git process working in the checkout, is
    removed: petrova's daily holds its own lock for the run, so such a lock is a crashed
    run's, and git itself never cleans it up.
    """
    lock = _git_path(top, "index.lock")
    try:
        age = lock.lstat().st_mtime
    except FileNotFoundError:
        return ""
    if age >= started or _git_running_in(top):
        raise StateNotCommitted(
            f"{lock} exists and may belong to a git command still running; the ledgers "
            "stay on disk and the next run tries again (remove the file if no git is running)"
        )
    lock.unlink(missing_ok=True)
    return f"removed a stale {lock.name} left by an interrupted run\n"


def _read_small(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[:200].strip()
    except OSError:
        return ""


def abort_own_rebase(top: Path, started: float) -> str:
    """Abort a rebase a killed run of ours left (it rebased only the daily's own state
    commits, and is older than this run); another rebase is a person's and is refused."""
    for name in ("rebase-merge", "rebase-apply"):
        folder = _git_path(top, name)
        if not folder.is_dir():
            continue
        onto = (folder / "onto").read_text().strip() if (folder / "onto").is_file() else ""
        head = (
            (folder / "orig-head").read_text().strip() if (folder / "orig-head").is_file() else ""
        )
        subjects = _git(top, "log", "--format=%s", f"{onto}..{head}").stdout.splitlines()
        own = bool(onto and head) and all(s.startswith(COMMIT_PREFIX) for s in subjects)
        if not own or folder.stat().st_mtime >= started or _git_running_in(top):
            raise StateNotCommitted(
                f"a rebase is in progress in {top} that is not an interrupted run's of the "
                "daily; nothing was committed: finish it or run git rebase --abort"
            )
        _git(top, "rebase", "--abort")
        return "aborted a rebase left by an interrupted run\n"
    return ""


def stage_ledgers(top: Path, ledgers: Sequence[str]) -> bool:
    """Stage the ledgers (and only them); True when they differ from HEAD. Staged
    ledgers a killed run left without a commit are simply part of this commit."""
    added = _git(top, "add", "-A", "--", *ledgers)
    if not added.ok:
        raise StateNotCommitted(f"git add of the ledgers failed: {added.reason()}")
    return not _git(top, "diff", "--cached", "--quiet", "HEAD", "--", *ledgers).ok


def commit_ledgers(top: Path, ledgers: Sequence[str], *, shard: Shard | None = None) -> None:
    message = f"{COMMIT_PREFIX}{format_timestamp(clock.now())}"
    if shard is not None:
        message += f" (shard {shard})"
    args = ["commit", "--quiet", "--no-verify", "-m", message, "--", *ledgers]
    result = _git(top, *args, env=_bot_identity())
    if not result.ok:
        raise StateNotCommitted(f"git commit failed: {result.reason()}")


def keep_state(plan: DailyPlan, *, started: float | None = None) -> str:
    """Commit the ledgers (only ``state/``) to the control-plane repo; push when asked.

    First it recovers from its own crash: a stale ``index.lock`` or an interrupted rebase
    of its own (older than this run, ``started``, with no git running in the checkout);
    ledgers a killed run staged are committed now. It refuses a detached HEAD before
    committing anything. A push that a human's PR overtook is rebased and tried again, up
    to :data:`PUSH_ATTEMPTS` times; a rebase that fails is undone and reported with its
    real reason, and the commit stays local for the next run. Returns what is worth saying.
    """
    checkout = plan.registry.parent
    started = file_clock_now(checkout) if started is None else started
    top = checkout_root(checkout)
    try:
        relative = plan.state_dir.resolve().relative_to(top.resolve())
    except ValueError:
        raise StateNotCommitted(
            f"the state folder {plan.state_dir} is outside the control-plane checkout {top}; "
            "--commit-state keeps only ledgers inside it"
        ) from None
    # The ledgers only: never a lock file, a temporary file, or anything else there.
    ledgers = [f":(glob){relative.as_posix()}/*.yaml", f":(exclude,glob){relative.as_posix()}/.*"]
    tracked = _git(top, "ls-files", "--", *ledgers).stdout
    if not tracked and not any(plan.state_dir.glob("*.yaml")):
        return ""  # no ledger yet, none removed: nothing to keep
    if plan.shard is not None:  # this shard's repos' ledgers and no others
        ledgers = shard_ledgers(plan.state_dir, tracked.split(), relative.as_posix(), plan.shard)
        if not ledgers:
            return ""
    said = clear_stale_index_lock(top, started)
    said += abort_own_rebase(top, started)
    branch = current_branch(top)
    if stage_ledgers(top, ledgers):
        commit_ledgers(top, ledgers, shard=plan.shard)
    elif not (plan.push and unpushed(top, branch)):
        return said
    if plan.push and plan.shard is not None:
        push_until(top, branch, identity=_bot_identity(), deadline=plan.push_deadline)
    elif plan.push:
        push_with_retry(top, branch, ledgers)
    return said


def unpushed(top: Path, branch: str) -> bool:
    """Does ``branch`` hold commits ``origin`` has not seen (a previous run's commit that
    stayed local)? Unknown (no remote-tracking ref yet) counts as yes."""
    ahead = _git(top, "rev-list", "--count", f"refs/remotes/origin/{branch}..HEAD")
    return not ahead.ok or ahead.stdout.strip() != "0"


def _unstaged_other_changes(top: Path) -> list[str]:
    """Tracked files changed in the work tree or the index: a rebase refuses to start."""
    names = _git(top, "diff", "--name-only", "HEAD").stdout.splitlines()
    return sorted(n for n in names if n)


def push_with_retry(top: Path, branch: str, ledgers: Sequence[str]) -> None:
    last = ""
    for _ in range(PUSH_ATTEMPTS):
        pushed = _git(top, "push", "--quiet", "origin", f"HEAD:{branch}")
        if pushed.ok:
            return
        last = pushed.reason()
        dirty = _unstaged_other_changes(top)
        if dirty:
            shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
            raise StateNotCommitted(
                f"the ledgers could not be rebased onto origin/{branch}: the checkout has "
                f"uncommitted changes to tracked files ({shown}), and a rebase needs a clean "
                "work tree; commit or stash them. The commit stays local and the next run "
                "tries again"
            )
        pulled = _git(top, "pull", "--rebase", "--quiet", "origin", branch, env=_bot_identity())
        if not pulled.ok:
            conflicted = _git(top, "diff", "--name-only", "--diff-filter=U").stdout.split()
            _git(top, "rebase", "--abort")
            if conflicted:
                raise StateNotCommitted(
                    f"the ledgers could not be rebased onto origin/{branch}: a change to the "
                    f"same ledger landed meanwhile ({', '.join(sorted(conflicted))}); the "
                    "commit stays local and the next run tries again"
                )
            raise StateNotCommitted(
                f"the ledgers could not be rebased onto origin/{branch}: git pull --rebase "
                f"failed: {pulled.reason()}; the commit stays local and the next run tries again"
            )
    raise StateNotCommitted(f"git push failed {PUSH_ATTEMPTS} times: {last}")
