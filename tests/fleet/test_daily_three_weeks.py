"""Three simulated weeks of the daily job with humans in the loop (SPEC §12), end to end.

Real parts: the control plane is a git checkout (the cron host's) of a bare origin, and a
second clone is a human's laptop; the consumer is a bare repository reached at its
github.com url through insteadOf; GitHub's API is a loopback fake; `petrova daily
--commit-state --push` runs each morning with its refresh, on a clock moved day by day.
On the way: a 503 day, a failing webhook and a promotion refused, a promotion PR opened
before a bot run and merged after it, an override, a promotion on the cron host next to
a merged registry PR, a rejected push healed the next day, a killed run, and the page
refreshed every day.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from petrova.clock import MACHINE_ENV
from petrova.files.disk import sha12
from tests.conftest import Fleet, Petrova, Spawn
from tests.fake_github import FakeGitHub
from tests.fleet.test_daily_fortnight import CONTRACT, REGISTRY, URL, WIRED, at, epoch, stamp
from tests.syncfleet import Remotes, isolated_git_env

FILES = {".petrova/contract.yaml": CONTRACT.format(traceo=WIRED), "docs/vtm.md": "# VTM\n"}
HUMAN = ("-c", "user.name=Ada", "-c", "user.email=ada@example.com")


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=check,
        capture_output=True,
        text=True,
        env={**os.environ, **isolated_git_env()},
    )


def out(cwd: Path, *args: str) -> str:
    return git(cwd, *args).stdout.strip()


class ThreeWeeks:
    def __init__(self, fleet: Fleet, petrova: Petrova, tmp_path: Path, github: FakeGitHub):
        self.fleet, self.petrova, self.github = fleet, petrova, github
        self.remotes = Remotes(tmp_path / "git")
        self.env = {
            **self.remotes.env(),
            "GITHUB_API_URL": github.url,
            "GITHUB_TOKEN": github.token,
            "PETROVA_CACHE_DIR": str(tmp_path / "cache"),
        }
        self.remotes.publish(URL, FILES)
        self_sha = sha12((fleet.root / ".petrova" / "contract.yaml").read_bytes())
        kahn_sha = sha12(FILES[".petrova/contract.yaml"].encode())
        fleet.registry.write_text(REGISTRY.format(self_sha=self_sha, kahn_sha=kahn_sha, url=URL))
        fleet.write(".gitignore", "/workspace/\n/fleet.json\n/fleet.html\n.*.lock\n")  # as shipped
        self.hook = github.add_hook("kahn-hq/kahn")
        # The control-plane repo: its origin, the cron host's checkout, a human's laptop.
        self.origin = tmp_path / "control-plane.git"
        git(tmp_path, "init", "-q", "--bare", "-b", "main", str(self.origin))
        git(fleet.root, "init", "-q", "-b", "main")
        git(fleet.root, "add", "-A")
        git(fleet.root, *HUMAN, "commit", "-q", "-m", "the control plane")
        git(fleet.root, "remote", "add", "origin", str(self.origin))
        git(fleet.root, "push", "-q", "-u", "origin", "main")
        self.laptop = tmp_path / "laptop"
        git(tmp_path, "clone", "-q", str(self.origin), str(self.laptop))

    @property
    def root(self) -> Path:
        return self.fleet.root

    def daily_args(self) -> list[str]:
        return [
            "daily", "-o", str(self.root / "fleet.json"), "--commit-state", "--push",
            "--registry", str(self.fleet.registry), "--workspace", str(self.fleet.workspace),
        ]  # fmt: skip

    def daily(self, day: int, *, quiet: bool = True) -> tuple[dict[str, Any], str]:
        """The 07:00 run on the cron host; returns the snapshot it wrote and its stderr."""
        run = self.petrova(
            *self.daily_args(), env={**self.env, "SOURCE_DATE_EPOCH": epoch(at(day))}
        )
        assert run.exit_code == 0, run.stderr
        if quiet:
            assert run.stderr == "", run.stderr
        doc: dict[str, Any] = json.loads((self.root / "fleet.json").read_bytes())
        assert doc["generated_at"] == stamp(at(day))
        page = (self.root / "fleet.html").read_text()  # the page, refreshed every day
        assert f'datetime="{stamp(at(day))}"' in page
        return doc, run.stderr

    def promote(self, where: Path, moment: datetime, *extra: str, integration: str = "ares") -> Any:
        return self.petrova(
            "state", "promote", "kahn-hq", integration, "--by", "human:ada",
            "--reason", "seen working again", "--now", stamp(moment), *extra,
            "--registry", str(where / "registry.yaml"),
            env={**self.env, MACHINE_ENV: epoch(moment)},  # a human on that day: no --force
        )  # fmt: skip

    def laptop_pr(self, branch: str, edit: dict[str, str], message: str) -> None:
        """A human's PR from the laptop, based on origin/main as it is now."""
        git(self.laptop, "fetch", "-q", "origin")
        git(self.laptop, "checkout", "-q", "-B", branch, "origin/main")
        for rel, text in edit.items():
            (self.laptop / rel).write_text(text)
        git(self.laptop, "add", "-A")
        git(self.laptop, *HUMAN, "commit", "-q", "-m", message)
        git(self.laptop, "push", "-q", "origin", branch)

    def merge(self, branch: str) -> None:
        """Merge a PR on the forge: a merge commit onto main, or a conflict."""
        git(self.laptop, "fetch", "-q", "origin")
        git(self.laptop, "checkout", "-q", "-B", "main", "origin/main")
        merged = git(self.laptop, *HUMAN, "merge", "--no-ff", "-q", f"origin/{branch}", check=False)
        assert merged.returncode == 0, merged.stdout + merged.stderr  # never a conflict
        git(self.laptop, "push", "-q", "origin", "main")

    def registry_pr(self, old: str, new: str) -> None:
        git(self.laptop, "fetch", "-q", "origin")
        text = out(self.laptop, "show", "origin/main:registry.yaml") + "\n"
        assert old in text
        branch = "registry-" + re.sub(r"[^a-z]+", "-", new).strip("-")
        self.laptop_pr(branch, {"registry.yaml": text.replace(old, new)}, "registry PR")
        self.merge(branch)


@pytest.fixture
def weeks(fleet: Fleet, petrova: Petrova, tmp_path: Path) -> Iterator[ThreeWeeks]:
    github = FakeGitHub()
    try:
        yield ThreeWeeks(fleet, petrova, tmp_path, github)
    finally:
        github.close()


def _cell(doc: dict[str, Any], integration: str) -> dict[str, Any]:
    row = next(r for r in doc["rows"] if r["slug"] == "kahn-hq")
    cell: dict[str, Any] = row["integrations"][integration]
    return cell


def _row(doc: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = next(r for r in doc["rows"] if r["slug"] == "kahn-hq")
    return row


def _gate(doc: dict[str, Any]) -> dict[str, Any]:
    gate: dict[str, Any] = next(g for g in doc["gates"] if g["tier"] == 2)
    return gate


def _held(doc: dict[str, Any], integration: str) -> str:
    return next(h["message"] for h in _gate(doc)["holds"] if h["integration"] == integration)


@pytest.mark.slow  # twenty-one daily runs of real processes
def test_three_weeks_with_humans_in_the_loop(weeks: ThreeWeeks, spawn: Spawn) -> None:
    w = weeks
    cp_log = lambda: out(w.origin, "log", "--format=%an|%s", "main").splitlines()  # noqa: E731

    # Days 0-1: all ok; each run commits and pushes the ledgers and its record as the bot.
    doc, _ = w.daily(0)
    assert (_cell(doc, "ares")["status"], _cell(doc, "traceo")["status"]) == ("ok", "ok")
    doc, _ = w.daily(1)
    assert doc["last_run"]["started_at"] == stamp(at(0))  # day 1 shows the run before it
    assert doc["last_run"]["finished_at"] is not None
    assert cp_log()[0].startswith("petrova-bot|state: probe outcomes of 2026-11-03T07:00:00Z")
    assert _gate(doc)["green_at"] == stamp(at(7))

    # Day 2: GitHub answers 503. unreachable: the dot stays ok and the window is not broken.
    w.github.outage = 503
    doc, _ = w.daily(2, quiet=False)
    w.github.outage = None
    assert _cell(doc, "ares")["status"] == "ok"
    assert _gate(doc)["green_at"] == stamp(at(7))

    # Days 3-5: the webhook's deliveries fail from day 4: degraded on day 5.
    w.daily(3)
    w.github.set_delivery(w.hook, 500)
    w.daily(4, quiet=False)
    doc, _ = w.daily(5, quiet=False)
    assert _cell(doc, "ares")["status"] == "degraded"
    assert "restarted at 2026-11-06T07:00:00Z by a non-ok outcome" not in _held(doc, "ares")
    # A promotion on a failing cell is refused, and nothing is written.
    refused = w.promote(w.root, at(5, 1))
    assert refused.exit_code == 2 and "PROMOTE_NOT_RECOVERED" in refused.stderr
    assert not (w.root / "state" / "promotions").exists()

    # Day 6: the deliveries answer again: degraded, waiting for a human.
    w.github.set_delivery(w.hook, 200)
    doc, _ = w.daily(6)
    assert (_cell(doc, "ares")["status"], _cell(doc, "ares").get("needs_human")) == (
        "degraded",
        True,
    )

    # 07:30: a human opens a promotion PR from the laptop (a checkout of this morning)...
    git(w.laptop, "fetch", "-q", "origin")
    git(w.laptop, "checkout", "-q", "-B", "promote-ares", "origin/main")
    promoted = w.promote(w.laptop, at(6, 0.5))
    assert promoted.exit_code == 0, promoted.stderr
    git(w.laptop, "add", "state/promotions/kahn-hq.yaml")
    git(w.laptop, *HUMAN, "commit", "-q", "-m", "state: promote kahn-hq ares")
    git(w.laptop, "push", "-q", "origin", "promote-ares")
    # ... the bot runs before it is merged (and rewrites the ledger) ...
    doc, _ = w.daily(7)
    assert _cell(doc, "ares")["status"] == "degraded"
    # ... and it merges without conflict at 10:00, taking effect at the next run.
    w.merge("promote-ares")
    doc, _ = w.daily(8)
    ares = _cell(doc, "ares")
    assert (ares["status"], "needs_human" in ares) == ("ok", False)
    assert _held(doc, "ares").startswith(
        "kahn-hq ares: ok since 2026-11-08T07:30:00Z, 1d 23h of 7d (window restarted at "
        "2026-11-08T07:30:00Z by a promotion)"
    )
    ledger = json.loads((w.root / "state" / "kahn-hq.yaml").read_bytes())
    copied = {"at": stamp(at(6, 0.5)), "promoted_to": "ok", "by": "human:ada"}
    assert {**copied, "reason": "seen working again"} in ledger["integrations"]["ares"]["history"]

    # Days 9-10: the VTM goes missing; Traceo fails. On day 10 a human overrides it.
    w.remotes.publish(URL, {"docs/vtm.md": None})
    w.daily(9, quiet=False)
    doc, _ = w.daily(10, quiet=False)
    assert _cell(doc, "traceo")["status"] == "degraded"
    assert w.promote(w.laptop, at(10, 1), integration="traceo").exit_code == 2
    git(w.laptop, "fetch", "-q", "origin")
    git(w.laptop, "checkout", "-q", "-B", "main", "origin/main")
    overridden = w.promote(w.laptop, at(10, 1), "--override", integration="traceo")
    assert overridden.exit_code == 0, overridden.stderr
    git(w.laptop, "add", "state/promotions/kahn-hq.yaml")
    git(w.laptop, *HUMAN, "commit", "-q", "-m", "state: override kahn-hq traceo")
    git(w.laptop, "push", "-q", "origin", "main")
    w.remotes.publish(URL, {"docs/vtm.md": "# VTM\n"})  # the fix lands, unseen until day 11
    # Day 11: shown as an override? No: probes saw ok this morning, so it counts from now.
    doc, _ = w.daily(11)
    assert _cell(doc, "traceo")["status"] == "ok" and "override" not in _cell(doc, "traceo")
    assert "by an override" in _held(doc, "traceo")
    assert _held(doc, "traceo").startswith("kahn-hq traceo: ok since 2026-11-13T07:00:00Z")

    # Days 12-14: ARES fails twice, then recovers; the human promotes on the cron host.
    w.github.set_delivery(w.hook, 500)
    w.daily(12, quiet=False)
    w.daily(13, quiet=False)
    w.github.set_delivery(w.hook, 200)
    doc, _ = w.daily(14)
    assert _cell(doc, "ares")["needs_human"] is True
    on_host = w.promote(w.root, at(14, 0.5))
    assert on_host.exit_code == 0, on_host.stderr
    # Meanwhile a registry PR merges (kahn-hq becomes strict). The human has not committed.
    w.registry_pr("    profile: standard\n", "    profile: strict\n")
    doc, _ = w.daily(15)
    assert _row(doc)["profile"] == "strict"  # the freshly merged registry, the same day
    assert "needs_human" not in _cell(doc, "ares") and _cell(doc, "ares")["status"] == "ok"
    bot_files = out(w.origin, "show", "--name-only", "--format=", "main").split()
    # the ledger, the run record and what notify told: the bot's own files, never the human's
    assert "state/kahn-hq.yaml" in bot_files and "state/runs/daily.json" in bot_files
    assert not [f for f in bot_files if f.startswith("state/promotions/")], bot_files
    assert all(
        f in ("state/kahn-hq.yaml", "state/runs/daily.json") or f.startswith("state/notify/")
        for f in bot_files
    ), bot_files
    assert "M state/promotions/kahn-hq.yaml" in out(w.root, "status", "--porcelain")
    git(w.root, *HUMAN, "commit", "-q", "-m", "state: promote kahn-hq ares", "--",
        "state/promotions/kahn-hq.yaml")  # fmt: skip
    git(w.root, "push", "-q", "origin", "main")
    assert cp_log()[0] == "Ada|state: promote kahn-hq ares"

    # Day 16: the push is rejected (a hook on the forge); the commit is kept, a warning.
    hook = w.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected: pushes are closed today' >&2\nexit 1\n")
    hook.chmod(0o755)
    doc, said = w.daily(16, quiet=False)
    assert "STATE_NOT_PUSHED" in said and "the next run pushes it" in said
    assert out(w.root, "rev-list", "--count", "origin/main..main") == "1"
    hook.unlink()
    # A registry PR merges before the next run: it must not be a day late.
    w.registry_pr("    profile: strict\n", "    profile: permissive\n")
    doc, _ = w.daily(17)
    assert _row(doc)["profile"] == "permissive"
    log = cp_log()
    assert log[0].startswith("petrova-bot|state: probe outcomes of 2026-11-19T07:00:00Z")
    assert any(e.startswith("petrova-bot|state: probe outcomes of 2026-11-18") for e in log)
    assert out(w.root, "rev-list", "--count", "origin/main..main") == "0"

    # Day 18: the run is killed while it probes (GitHub answers slowly today).
    w.github.latency = 30
    record = w.root / "state" / "runs" / "daily.json"
    env = {**os.environ, **w.env, "SOURCE_DATE_EPOCH": epoch(at(18))}
    proc = spawn(
        [sys.executable, "-m", "petrova", *w.daily_args()],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = json.loads(record.read_bytes())["runs"] if record.exists() else []
            steps = [s["name"] for s in runs[-1]["steps"]] if runs else []
            if runs and runs[-1]["started_at"] == stamp(at(18)) and steps[-1:] == ["sync"]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the day-18 run never reached its probe")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    w.github.latency = 0
    # An operator looking before the next run sees it in the table...
    table = w.petrova(
        "snapshot", "--format", "table", "--registry", str(w.fleet.registry),
        "--workspace", str(w.fleet.workspace),
        env={**w.env, "SOURCE_DATE_EPOCH": epoch(at(18, 2))},
    )  # fmt: skip
    assert (
        "last daily run: started 2026-11-20T07:00:00Z, never finished "
        "(push pending ok, refresh ok, sync ok)" in table.stdout
    )
    # ... and day 19 runs on that checkout without a human, and shows the killed run.
    doc, _ = w.daily(19)
    assert doc["last_run"]["started_at"] == stamp(at(18))
    assert doc["last_run"]["finished_at"] is None
    assert [s["name"] for s in doc["last_run"]["steps"]] == ["push pending", "refresh", "sync"]
    page = (w.root / "fleet.html").read_text()
    assert "started 2026-11-20T07:00:00Z, never finished" in page

    # Day 20: the gate counts ARES from the promotion on the cron host (day 14, 07:30):
    # the missed day 18 (48 hours without an outcome) did not restart it.
    doc, _ = w.daily(20)
    assert _gate(doc)["green_at"] == stamp(at(21, 0.5))
    assert _held(doc, "ares").startswith("kahn-hq ares: ok since 2026-11-16T07:30:00Z")
    assert doc["last_run"]["finished_at"] is not None
