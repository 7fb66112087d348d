"""The daily job: the one sequence every shipped schedule runs (SPEC §11, §12).

0. **push pending**: the bot's own state commits that an earlier run could not push
   are pushed first (rebased onto what was merged meanwhile), so the refresh can
   fast-forward and a merged registry PR is never a day late;
1. **refresh** the control-plane checkout (``petrova sync --self``), so that merged
   registry PRs reach the host;
2. **sync** the consumers' clones (``petrova sync``);
3. **probe** every wired cell and record the outcomes (``petrova probe --record``);
4. **snapshot** to ``-o FILE`` and ``--publish`` it;
5. **notify**: issues, chat and pin PRs for what needs a human (``petrova notify``);
6. **page**: the fleet page beside it (``fleet.json`` -> ``fleet.html``, or ``--page``);
7. **keep state**: commit the bot's files (the ledgers ``state/*.yaml``, the run record
   ``state/runs/daily.json`` and what notify told, ``state/notify/``; never
   ``state/promotions/``, which humans own);
8. **push state**: push that commit (to the branch, or to ``--push-branch``).

Each step is petrova itself in a child process (or, for git, one small function), so one
step's crash cannot take the others with it, and its exit code decides, by
:data:`STEPS`' policy, whether the run goes on: a failed refresh, sync or probe warns and
the snapshot still runs on what was last recorded (cells go stale honestly); a failed
snapshot, page or state commit fails the run, and a written file stays; a failed push
warns (``STATE_NOT_PUSHED``): the commit is kept and pushed by the next run. What a step
says on stderr is passed on only when it is worth a person's attention: unattended and
all well, the job prints nothing. Every run leaves a record (:mod:`petrova.fleet.runs`).

Beyond one runner (SPEC §14): ``--shard K/N`` runs steps 0-3 for its share, hands its
contracts over (``--bundle``) and keeps only its repos' ledgers, pushing until a
deadline; ``--final`` merges the shards' hand-overs and runs steps 4-7 without syncing or
probing again (:mod:`petrova.fleet.shards`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from petrova import clock
from petrova.documents.shard import Shard
from petrova.errors import (
    DailyFailed,
    GitFailed,
    GitMissing,
    GitTimeout,
    StateNotCommitted,
    StateNotPushed,
)
from petrova.fleet.runs import RUNS_RELPATH, RunLog, running, runs_path
from petrova.fleet.shards import (
    PUSH_DEADLINE,
    in_process,
    merge_bundles,
    push_until,
    shard_ledgers,
    write_bundle,
)
from petrova.models import StepOutcome, format_timestamp
from petrova.net.git import Git, Result

Policy = Literal["warn", "fail"]

#: Each step's name and what its failure means for the run.
STEPS: dict[str, Policy] = {
    "push pending": "warn",
    "refresh": "warn",
    "sync": "warn",
    "probe": "warn",
    "snapshot": "fail",
    "notify": "warn",  # telling is retried next run; it never fails the snapshot or state
    "page": "fail",
    "keep state": "fail",
    "push state": "warn",
    # the sharded daily (SPEC §14, petrova/fleet/shards.py)
    "bundle": "fail",  # a shard's hand-over of its contracts to the final job
    "shards": "warn",  # the final job merging the shards' hand-overs
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
    #: Where the fleet page goes; ``None``: beside ``output``, with ``.html``.
    page: Path | None = None
    #: Push the bot's state commits to this branch instead of the checked-out one (for a
    #: protected ``main``); the checked-out branch then never carries them.
    push_branch: str | None = None
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
    steps.append(("notify", [*me, "notify", *fleet]))
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
    started = file_clock_now(plan.registry.parent)  # what is older is not this run's
    record_path = runs_path(plan.state_dir)
    with running(record_path):  # LOCK_TIMEOUT (exit 75): another daily is still on
        log = RunLog(record_path, format_timestamp(clock.now()))
        _run_steps(plan, report, log, runner=runner, on_step=on_step, started=started)
    return report


def _run_steps(
    plan: DailyPlan,
    report: DailyReport,
    log: RunLog,
    *,
    runner: Runner,
    on_step: Callable[[StepResult], None] | None,
    started: float,
) -> None:
    if plan.commit_state and plan.push:
        _note(report, _git_step("push pending", lambda: push_pending(plan)), log, on_step)
    if plan.final and plan.from_shards is not None:
        shards_dir = plan.from_shards
        merged = in_process("shards", lambda: _said(merge_bundles(shards_dir, plan.workspace)))
        _note(report, StepResult("shards", *merged), log, on_step)
    for name, argv in step_commands(plan):
        code, said = runner(argv, plan.registry.parent)
        _note(report, StepResult(name, code, said), log, on_step)
    if plan.shard is not None and plan.bundle is not None:
        shard, bundle = plan.shard, plan.bundle
        handed = in_process("bundle", lambda: _said(write_bundle(plan.workspace, bundle, shard)))
        _note(report, StepResult("bundle", *handed), log, on_step)
    if plan.output.exists():
        code, said = runner(page_command(plan), plan.registry.parent)
        said = said if code != 0 else ""  # "create fleet.html" is not worth a person's mail
        _note(report, StepResult("page", code, said), log, on_step)
    # The fleet's work is done: the record says so before it is committed with the
    # ledgers; how keeping and pushing went is added after (and committed next run).
    log.finish(format_timestamp(clock.now()))
    if not plan.commit_state:
        return
    commit_only = replace(plan, push=False)  # the push is a step of its own, which warns
    committed = _git_step("keep state", lambda: keep_state(commit_only, started=started))
    _note(report, committed, log, on_step)
    if committed.ok and plan.push:
        _note(report, _git_step("push state", lambda: push_state(plan)), log, on_step)


def _git_step(name: str, action: Callable[[], str]) -> StepResult:
    try:
        return StepResult(name, 0, action())
    except (StateNotCommitted, StateNotPushed, GitTimeout, GitFailed, GitMissing) as exc:
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


def _git_in(top: Path, *args: str, stdin: str) -> Result:
    """:func:`_git` with ``stdin`` (``mktree`` reads its entries there)."""
    return Git(timeout=GIT_TIMEOUT).run(list(args), cwd=top, stdin=stdin).check_timeout(str(top))


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


def bot_pathspecs(plan: DailyPlan, top: Path) -> list[str]:
    """The bot's files and nothing else: the ledgers, the run record and notify's. Never a lock
    file, a temporary file, or ``state/promotions/`` (the humans' files); ``[]`` when
    there is none yet (git refuses a pathspec that matches nothing)."""
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
        f":(glob){relative}/notify/**/*.json": any((plan.state_dir / "notify").glob("**/*.json")),
    }
    found = [
        spec
        for spec, on_disk in wanted.items()
        if on_disk or _git(top, "ls-files", "--cached", "--", spec).stdout.strip()
    ]
    return [*found, f":(exclude,glob){relative}/.*"] if found else []


def keep_state(plan: DailyPlan, *, started: float | None = None) -> str:
    """Commit the bot's files (:func:`bot_pathspecs`) as the bot; push when ``plan.push``
    (the daily itself pushes in a step of its own, :func:`push_state`).

    First it recovers from its own crash: a stale ``index.lock`` or an interrupted rebase
    of its own (older than this run, ``started``, with no git running in the checkout);
    ledgers a killed run staged are committed now. It refuses a detached HEAD before
    committing anything. With ``push_branch`` the commit goes onto that branch instead,
    built with a separate index, so the checked-out branch and its index are never
    touched. Returns what is worth saying.
    """
    checkout = plan.registry.parent
    started = file_clock_now(checkout) if started is None else started
    top = checkout_root(checkout)
    paths = bot_pathspecs(plan, top)
    if not paths:
        return ""  # no ledger yet, none removed: nothing to keep
    if plan.shard is not None:  # this shard's repos' ledgers, and no run record
        paths = _shard_pathspecs(plan, top)
        if not paths:
            return ""
    if plan.push_branch is not None:
        said = _commit_to_branch(top, plan, plan.push_branch)
        if plan.push:
            push_state(plan)
        return said
    said = clear_stale_index_lock(top, started)
    said += abort_own_rebase(top, started)
    branch = current_branch(top)
    if stage_ledgers(top, paths):
        commit_ledgers(top, paths, shard=plan.shard)
    elif not (plan.push and unpushed(top, branch)):
        return said
    if plan.push:
        _push(plan, top, branch)
    return said


def _shard_pathspecs(plan: DailyPlan, top: Path) -> list[str]:
    """A shard's ledgers as literal pathspecs (:func:`shard_ledgers`)."""
    assert plan.shard is not None
    relative = plan.state_dir.resolve().relative_to(top.resolve()).as_posix()
    tracked = _git(top, "ls-files", "--cached", "--", f":(glob){relative}/*.yaml").stdout
    return shard_ledgers(plan.state_dir, tracked.split(), relative, plan.shard)


def _push(plan: DailyPlan, top: Path, branch: str) -> None:
    """A shard pushes until its deadline (N shards push at once); one runner retries
    :data:`PUSH_ATTEMPTS` times (only a human's PR can overtake it)."""
    if plan.shard is not None:
        push_until(top, branch, identity=_bot_identity(), deadline=plan.push_deadline)
    else:
        push_with_retry(top, branch)


def unpushed(top: Path, branch: str) -> bool:
    """Does ``branch`` hold commits ``origin`` has not seen (a previous run's commit that
    stayed local)? Unknown (no remote-tracking ref yet) counts as yes."""
    ahead = _git(top, "rev-list", "--count", f"refs/remotes/origin/{branch}..HEAD")
    return not ahead.ok or ahead.stdout.strip() != "0"


def _commit_to_branch(top: Path, plan: DailyPlan, branch: str) -> str:
    """One commit of the bot's files on ``branch``, whose tree is exactly those files.

    Built from blobs and trees (``hash-object``, ``mktree``), never through an index,
    so the checked-out branch, its index and its work tree are not touched.
    """
    ref = f"refs/heads/{branch}"
    parent = _git(top, "rev-parse", "--verify", "-q", ref)
    if not parent.ok:
        _git(top, "fetch", "--quiet", "origin", f"+{ref}:{ref}")
        parent = _git(top, "rev-parse", "--verify", "-q", ref)
    tip = parent.stdout.strip() if parent.ok else ""
    relative = plan.state_dir.resolve().relative_to(top.resolve()).as_posix()
    files = {f"{relative}/{p.name}": p for p in sorted(plan.state_dir.glob("[!.]*.yaml"))}
    record = plan.state_dir / RUNS_RELPATH
    if record.is_file():
        files[f"{relative}/{RUNS_RELPATH.as_posix()}"] = record
    told = plan.state_dir / "notify"
    for path in sorted(told.glob("**/*.json")):  # what notify told: bot-owned too
        files[f"{relative}/{path.relative_to(plan.state_dir).as_posix()}"] = path
    tree = _tree_of(top, files)
    if tip and _git(top, "rev-parse", f"{tip}^{{tree}}").stdout.strip() == tree:
        return ""
    message = f"{COMMIT_PREFIX}{format_timestamp(clock.now())}"
    argv = ["commit-tree", tree, "-m", message, *(["-p", tip] if tip else [])]
    commit = _git(top, *argv, env=_bot_identity())
    if not commit.ok:
        raise StateNotCommitted(f"git commit-tree failed: {commit.reason()}")
    moved = _git(top, "update-ref", ref, commit.stdout.strip())
    if not moved.ok:
        raise StateNotCommitted(f"git update-ref {ref} failed: {moved.reason()}")
    return ""


def _tree_of(top: Path, files: Mapping[str, Path]) -> str:
    """The git tree holding exactly ``files`` (repo path -> file on disk)."""
    entries: dict[str, str] = {}  # name -> "mode type sha"
    folders: dict[str, dict[str, Path]] = {}
    for path, source in files.items():
        head, _, rest = path.partition("/")
        if rest:
            folders.setdefault(head, {})[rest] = source
            continue
        blob = _git(top, "hash-object", "-w", "--", str(source))
        if not blob.ok:
            raise StateNotCommitted(f"git hash-object {source} failed: {blob.reason()}")
        entries[head] = f"100644 blob {blob.stdout.strip()}"
    for name, inner in folders.items():
        entries[name] = f"040000 tree {_tree_of(top, inner)}"
    listing = "".join(f"{entries[name]}\t{name}\n" for name in sorted(entries))
    made = _git_in(top, "mktree", stdin=listing)
    if not made.ok:
        raise StateNotCommitted(f"git mktree failed: {made.reason()}")
    return made.stdout.strip()


def _target(plan: DailyPlan, top: Path) -> str:
    """The branch the bot pushes: ``--push-branch``, else the checked-out one."""
    if plan.push_branch is not None:
        return plan.push_branch
    return current_branch(top)


def push_pending(plan: DailyPlan) -> str:
    """Push the bot's commits an earlier run kept, before the refresh (SPEC §12), so the
    refresh can fast-forward and a registry PR merged meanwhile is used today."""
    top = checkout_root(plan.registry.parent)
    branch = _target(plan, top)
    state_branch = plan.push_branch is not None
    local = f"refs/heads/{branch}" if state_branch else "HEAD"
    fetched = _git(top, "fetch", "--quiet", "origin")
    if not fetched.ok:
        raise StateNotPushed(
            f"git fetch origin failed: {fetched.reason()}; the next run tries again"
        )
    if state_branch and not _git(top, "rev-parse", "--verify", "-q", local).ok:
        return ""  # no state commit yet
    ahead = _git(top, "rev-list", "--count", f"refs/remotes/origin/{branch}..{local}")
    if ahead.ok and ahead.stdout.strip() == "0":
        return ""
    if state_branch:
        _push_state_branch(top, branch)
    else:
        _push(plan, top, branch)
    return ""


def push_state(plan: DailyPlan) -> str:
    """Push the commit :func:`keep_state` made; a failure keeps it for the next run."""
    top = checkout_root(plan.registry.parent)
    if plan.push_branch is not None:
        _push_state_branch(top, plan.push_branch)
    else:
        _push(plan, top, current_branch(top))
    return ""


def _push_state_branch(top: Path, branch: str) -> None:
    """A state branch is only ever the bot's: pushed as it is, never rebased."""
    pushed = _git(top, "push", "--quiet", "origin", f"refs/heads/{branch}:refs/heads/{branch}")
    if not pushed.ok:
        raise StateNotPushed(
            f"git push of {branch} failed: {pushed.reason()}; the commit is kept and the next "
            "run pushes it"
        )


def _changed_upstream(top: Path, branch: str) -> set[str]:
    """The files ``origin/<branch>`` changed since this branch left it."""
    diff = _git(top, "diff", "--name-only", f"HEAD...refs/remotes/origin/{branch}")
    return {n for n in diff.stdout.splitlines() if n}


def _unstaged_other_changes(top: Path) -> list[str]:
    """Tracked files changed in the work tree or the index."""
    names = _git(top, "diff", "--name-only", "HEAD").stdout.splitlines()
    return sorted(n for n in names if n)


def push_with_retry(top: Path, branch: str) -> None:
    """Push; when a human's PR overtook it, rebase onto it and try again, up to
    :data:`PUSH_ATTEMPTS` times. Local changes (a human's uncommitted promotion, the
    run record) are carried across the rebase (``--autostash``), unless one is to a file
    the rebase would change: then nothing is touched and that is the reason given. A
    rebase that fails is undone and reported with its real reason; the commit stays
    local for the next run (``STATE_NOT_PUSHED``)."""
    last = ""
    for _ in range(PUSH_ATTEMPTS):
        pushed = _git(top, "push", "--quiet", "origin", f"HEAD:{branch}")
        if pushed.ok:
            return
        last = pushed.reason()
        _git(top, "fetch", "--quiet", "origin", branch)
        dirty = sorted(set(_unstaged_other_changes(top)) & _changed_upstream(top, branch))
        if dirty:
            shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
            raise StateNotPushed(
                f"the ledgers could not be rebased onto origin/{branch}: the checkout has "
                f"uncommitted changes to tracked files ({shown}) that origin/{branch} changed "
                "too; commit or discard them. The commit stays local and the next run "
                "tries again"
            )
        pulled = _git(
            top,
            "pull",
            "--rebase",
            "--autostash",
            "--quiet",
            "origin",
            branch,
            env=_bot_identity(),
        )
        if not pulled.ok:
            conflicted = _git(top, "diff", "--name-only", "--diff-filter=U").stdout.split()
            _git(top, "rebase", "--abort")
            if conflicted:
                raise StateNotPushed(
                    f"the ledgers could not be rebased onto origin/{branch}: a change to the "
                    f"same ledger landed meanwhile ({', '.join(sorted(conflicted))}); the "
                    "commit stays local and the next run tries again"
                )
            raise StateNotPushed(
                f"the ledgers could not be rebased onto origin/{branch}: git pull --rebase "
                f"failed: {pulled.reason()}; the commit stays local and the next run tries again"
            )
    raise StateNotPushed(
        f"git push to origin {branch} failed {PUSH_ATTEMPTS} times: {last}; the commit is "
        "kept and the next run pushes it (a protected branch? see --push-branch in "
        "docs/OPERATIONS.md)"
    )
