"""Consumer repos for ``petrova sync`` tests: real bare repositories on disk that the
registry's ``https://github.com/...`` urls reach through git's ``url.<base>.insteadOf``,
set in the environment (``GIT_CONFIG_COUNT``), so the registry under test is the real one.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

GITHUB = "https://github.com/"

CONTRACT = """\
schema_version: 1
slug: {slug}
contract_committers: [humans]
integrations:
  ares: {{status: pending}}
  traceo:
    status: wired
    evidence: {{baseline_id: bl-7, vtm_path: "{vtm}"}}
  crumb: {{status: pending}}
  lore_cairnet: {{status: pending}}
"""


def contract_text(slug: str, vtm: str = "docs/spec/vtm.md") -> str:
    return CONTRACT.format(slug=slug, vtm=vtm)


def isolated_git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """No global or system git configuration: only what the test sets."""
    return {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", **(extra or {})}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **isolated_git_env()},
    ).stdout


class Remotes:
    """Bare repos at ``<root>/<owner>/<name>``, each fed from a work tree beside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bare_root = root / "remotes"
        self.work_root = root / "upstream"

    def env(self) -> dict[str, str]:
        """What makes git (and so petrova) reach these repos at the github.com urls."""
        return isolated_git_env(
            {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": f"url.file://{self.bare_root}/.insteadOf",
                "GIT_CONFIG_VALUE_0": GITHUB,
            }
        )

    def bare(self, url: str) -> Path:
        return self.bare_root / url.removeprefix(GITHUB)

    def publish(self, url: str, files: Mapping[str, str | None], *, branch: str = "main") -> str:
        """Commit ``files`` (None deletes) on ``branch`` and push it; the new commit."""
        name = url.removeprefix(GITHUB)
        work = self.work_root / name
        bare = self.bare_root / name
        if not bare.exists():
            bare.mkdir(parents=True)
            git(bare, "init", "-q", "--bare", "-b", branch)
            git(bare, "config", "uploadpack.allowFilter", "true")
            git(bare, "config", "uploadpack.allowAnySHA1InWant", "true")
            work.mkdir(parents=True)
            git(work, "init", "-q", "-b", branch)
        for rel, text in files.items():
            target = work / rel
            if text is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git(work, "add", "-A")
        git(work, "commit", "-q", "--allow-empty", "-m", "change")
        git(work, "push", "-q", "--force", str(bare), f"HEAD:refs/heads/{branch}")
        return git(work, "rev-parse", "HEAD").strip()
