"""What was merged: a consumer contract read from git, not from a working tree.

``registry pin`` records the sha of the contract that is on the consumer's default
branch, so that what the registry pins is what the fleet's clones will read. A working
tree can hold an uncommitted edit on an unmerged branch; git's object store at the
remote-tracking ref cannot. The blob is read with ``git ls-tree``/``git cat-file``, so a
symbolic link committed in place of the file is refused rather than followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from petrova.documents.contract import CONTRACT_RELPATH
from petrova.errors import (
    ContractNotFound,
    InputTooLarge,
    Location,
    NotAGitClone,
    UnsafePath,
)
from petrova.files.disk import max_input_bytes
from petrova.net.git import Git, Result

_TIMEOUT = 60.0


@dataclass(frozen=True)
class MergedContract:
    """The contract's bytes as committed, and where exactly they were read."""

    raw: bytes
    clone: Path
    ref: str
    commit: str

    @property
    def display(self) -> str:
        return f"{self.clone}@{self.commit[:12]}:{CONTRACT_RELPATH.as_posix()}"


def _git(clone: Path, *args: str) -> Result:
    """One git command in ``clone`` through the one runner; a hung git is ``GIT_TIMEOUT``."""
    return Git(timeout=_TIMEOUT).run(list(args), cwd=clone).check_timeout(str(clone))


def _is_clone_root(clone: Path) -> bool:
    if not clone.is_dir():
        return False
    proc = _git(clone, "rev-parse", "--show-toplevel")
    if proc.returncode != 0:
        return False
    top = Path(proc.stdout.strip())
    return top.resolve() == clone.resolve()


def _resolve(clone: Path, ref: str) -> str | None:
    proc = _git(clone, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    text = proc.stdout.strip()
    return text if proc.returncode == 0 and text else None


def read_merged(
    clone: Path, *, default_branch: str, head_is_default: bool, how: str
) -> MergedContract:
    """The contract at ``origin/<default_branch>`` in ``clone``.

    ``head_is_default``: the clone is one ``petrova sync`` made, checked out at the
    remote default branch, so its ``HEAD`` is the merged state when it has no
    remote-tracking ref. An operator's own clone (``--repo``) must have the ref: its
    ``HEAD`` may be any branch. ``how`` names the option that gave the clone, for errors.
    """
    shown = str(clone)
    if not _is_clone_root(clone):
        raise NotAGitClone(
            f"is not a git clone ({how}); pin what was merged from a clone of the consumer "
            "repo, or pass --contract PATH to pin a file without checking merge state",
            location=Location(shown),
        )
    tracking = f"refs/remotes/origin/{default_branch}"
    ref, commit = f"origin/{default_branch}", _resolve(clone, tracking)
    if commit is None and head_is_default:
        ref, commit = "HEAD", _resolve(clone, "HEAD")
    if commit is None:
        raise NotAGitClone(
            f"has no {tracking}: fetch the consumer's default branch first "
            f"(git -C {shown} fetch origin {default_branch})",
            location=Location(shown),
        )
    path = CONTRACT_RELPATH.as_posix()
    listed = _git(clone, "ls-tree", "-z", commit, "--", path)
    entry = listed.stdout.split("\0")[0]
    where = Location(f"{shown}@{commit[:12]}:{path}")
    if listed.returncode != 0 or not entry:
        raise ContractNotFound(
            f"no contract on {ref} (commit {commit[:12]}): has its pull request merged? "
            f"(then `git -C {shown} fetch origin {default_branch}`)",
            location=where,
        )
    mode, kind, obj = entry.split("\t", 1)[0].split(" ")
    if mode == "120000":
        raise UnsafePath(
            "is committed as a symbolic link; petrova pins only a real contract file",
            location=where,
        )
    if kind != "blob":
        raise ContractNotFound("is not a file in that commit", location=where)
    limit = max_input_bytes()
    size = _git(clone, "cat-file", "-s", obj)
    if size.returncode == 0 and int(size.stdout.strip() or "0") > limit:
        raise InputTooLarge(
            f"the committed contract is over the {limit}-byte limit "
            "(raise it with PETROVA_MAX_INPUT_BYTES)",
            location=where,
        )
    blob = _git(clone, "cat-file", "blob", obj)
    if blob.returncode != 0:
        raise ContractNotFound("git could not read the committed contract", location=where)
    return MergedContract(blob.raw, clone, ref, commit)
