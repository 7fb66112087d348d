"""One error hierarchy for the whole core.

Every failure a user can cause is a :class:`PetrovaError` carrying a stable
UPPER_SNAKE ``code``, a message, and where it happened (file, line, column,
field path). The CLI renders these in one place; the core never prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum


class Exit(IntEnum):
    """Every exit code petrova uses (SPEC §8); nothing else sets one."""

    OK = 0
    CHECK_FAILED = 1
    USAGE = 2
    INTERNAL = 70
    TEMPFAIL = 75
    INTERRUPTED = 130


#: What each exit code means, for ``--help`` and the README (a test holds both to this).
EXIT_CODES: dict[Exit, str] = {
    Exit.OK: "success",
    Exit.CHECK_FAILED: "a check failed (--strict warnings, a stale artefact, a closed gate, "
    "a failed ingest, sync or probe)",
    Exit.USAGE: "invalid input or usage: the message names file, line, field and fix",
    Exit.INTERNAL: "a bug in petrova (INTERNAL_ERROR); --debug shows the traceback",
    Exit.TEMPFAIL: "another run held the lock longer than --wait (LOCK_TIMEOUT): try again later",
    Exit.INTERRUPTED: "interrupted (Ctrl-C)",
}


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file, optionally a line/column and a field path."""

    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    field: str | None = None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file is not None:
            spot = self.file
            if self.line is not None:
                spot += f":{self.line}"
                if self.column is not None:
                    spot += f":{self.column}"
            parts.append(spot)
        if self.field:
            parts.append(self.field)
        return ": ".join(parts)

    def with_field(self, field_path: str | None) -> Location:
        return Location(self.file, self.line, self.column, field_path)


@dataclass(frozen=True)
class Problem:
    """One finding: a location and a sentence that says what is wrong and what is valid."""

    message: str
    location: Location = field(default_factory=Location)

    def __str__(self) -> str:
        where = str(self.location)
        return f"{where}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, object]:
        loc = self.location
        return {
            "file": loc.file,
            "line": loc.line,
            "column": loc.column,
            "field": loc.field,
            "message": self.message,
        }


class PetrovaError(Exception):
    """Base of every expected failure. ``exit_code`` follows SPEC §8."""

    code: str = "PETROVA_ERROR"
    exit_code: Exit = Exit.USAGE

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        problems: Sequence[Problem] = (),
    ) -> None:
        self.message = message
        self.problems: tuple[Problem, ...] = tuple(problems) or (
            (Problem(message, location or Location()),)
        )
        super().__init__(self.render())

    @property
    def location(self) -> Location:
        return self.problems[0].location

    def render(self) -> str:
        """The one-paragraph text shown to a person."""
        if len(self.problems) == 1:
            return f"{self.code}: {self.problems[0]}"
        lines = [f"{self.code}: {self.message}"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "problems": [p.as_dict() for p in self.problems],
        }


class UsageError(PetrovaError):
    code = "USAGE_ERROR"


class ErrorsShown(PetrovaError):
    """Errors a command has already shown in its own form (one per file on stderr, or
    inside its ``--json`` document): the boundary in ``cli.py`` shows nothing more and
    exits with the worst one's code. A command never ends with an exit code of its own."""

    code = "ERRORS_SHOWN"

    def __init__(self, shown: Sequence[PetrovaError]) -> None:
        super().__init__(
            f"{len(shown)} error(s), shown above",
            problems=[problem for error in shown for problem in error.problems],
        )
        self.exit_code = max((error.exit_code for error in shown), default=Exit.USAGE)


class YamlInvalid(PetrovaError):
    """A file is not well-formed YAML (or breaks a loader rule such as duplicate keys)."""

    code = "YAML_INVALID"


class InputTooLarge(PetrovaError):
    code = "INPUT_TOO_LARGE"


class CatalogueNotFound(PetrovaError):
    code = "CATALOGUE_NOT_FOUND"


class CatalogueInvalid(PetrovaError):
    code = "CATALOGUE_INVALID"


class RegistryNotFound(PetrovaError):
    code = "REGISTRY_NOT_FOUND"


class RegistryInvalid(PetrovaError):
    code = "REGISTRY_INVALID"


class RepoNotInRegistry(PetrovaError):
    code = "REPO_NOT_IN_REGISTRY"


class ContractNotFound(PetrovaError):
    code = "CONTRACT_NOT_FOUND"


class ContractInvalid(PetrovaError):
    code = "CONTRACT_INVALID"


class EvidenceInvalid(PetrovaError):
    code = "EVIDENCE_INVALID"


class StateInvalid(PetrovaError):
    code = "STATE_INVALID"


class SnapshotInvalid(PetrovaError):
    """The document we built does not match its own schema: a bug, never written out."""

    code = "SNAPSHOT_INVALID"


class OutputError(PetrovaError):
    code = "OUTPUT_UNWRITABLE"


class CheckFailed(PetrovaError):
    """A check ran and found something (``--strict``, ``--check``): exit 1, not 2."""

    code = "CHECK_FAILED"
    exit_code = Exit.CHECK_FAILED


class SnapshotUnreadable(PetrovaError):
    """A snapshot file given to read back (``petrova render``) is missing or not JSON."""

    code = "SNAPSHOT_UNREADABLE"


# --- probe ledger and rollout (state record/promote, rollout gate) ---------------------


class IntegrationUnknown(PetrovaError):
    code = "INTEGRATION_UNKNOWN"


class OutcomeInvalid(PetrovaError):
    code = "OUTCOME_INVALID"


class TimestampInvalid(PetrovaError):
    code = "TIMESTAMP_INVALID"


class TimestampInFuture(PetrovaError):
    code = "TIMESTAMP_IN_FUTURE"


class OutcomeOutOfOrder(PetrovaError):
    """An outcome older than the newest entry of its cell: history is append-only in time."""

    code = "OUTCOME_OUT_OF_ORDER"


class ProbeInputInvalid(PetrovaError):
    """A ``state record --from`` file with bad lines; nothing was recorded."""

    code = "PROBE_INPUT_INVALID"


class PromotionInvalid(PetrovaError):
    code = "PROMOTION_INVALID"


class NothingToPromote(PetrovaError):
    code = "NOTHING_TO_PROMOTE"


class TierUnknown(PetrovaError):
    code = "TIER_UNKNOWN"


class GateClosed(CheckFailed):
    """``rollout gate``: the tier has not been green for the whole window (exit 1)."""

    code = "GATE_CLOSED"


class UnsafePath(PetrovaError):
    """A path that would make petrova read or write outside the directory it is meant for."""

    code = "UNSAFE_PATH"


# --- files: locks ------------------------------------------------------------------------


class LockTimeout(PetrovaError):
    """Another run held the lock longer than ``--wait``: try again later (EX_TEMPFAIL)."""

    code = "LOCK_TIMEOUT"
    exit_code = Exit.TEMPFAIL


# --- delivery: publishing to the ingest --------------------------------------------------


class IngestFailed(PetrovaError):
    """The endpoint did not accept the document: a check failed (exit 1), the file stays."""

    code = "INGEST_FAILED"
    exit_code = Exit.CHECK_FAILED


class ReadbackFailed(PetrovaError):
    code = "READBACK_FAILED"
    exit_code = Exit.CHECK_FAILED


class IngestTokenMissing(PetrovaError):
    code = "INGEST_TOKEN_MISSING"


class EndpointUrlInvalid(PetrovaError):
    code = "ENDPOINT_URL_INVALID"


# --- delivery: verify-endpoint -----------------------------------------------------------


class FixtureInvalid(PetrovaError):
    code = "FIXTURE_INVALID"


class RoundTripLossy(PetrovaError):
    """The endpoint answered 2xx but lost or changed integrations values: exit 1."""

    code = "ROUND_TRIP_LOSSY"
    exit_code = Exit.CHECK_FAILED


# --- migrate: bootstrap ------------------------------------------------------------------


class NotAGitRepo(PetrovaError):
    code = "NOT_A_GIT_REPO"


class OriginMissing(PetrovaError):
    code = "ORIGIN_MISSING"


class CheckpointInvalid(PetrovaError):
    code = "CHECKPOINT_INVALID"


class ApplicabilityConflict(PetrovaError):
    code = "APPLICABILITY_CONFLICT"


class ReviewDateMissing(PetrovaError):
    code = "REVIEW_BY_MISSING"


# --- migrate: bootstrap answers ----------------------------------------------------------


class AnswersInvalid(PetrovaError):
    """An answers file (or a checkpoint's answers) names something the catalogue does not."""

    code = "ANSWERS_INVALID"


# --- migrate: registry pin ---------------------------------------------------------------


class PinEditFailed(PetrovaError):
    """The splice did not produce the registry we meant: a bug; nothing was written."""

    code = "PIN_EDIT_FAILED"


# --- registry pin ----------------------------------------------------------------------------


class PinStale(CheckFailed):
    """``registry pin --check``: the pinned sha is not the merged contract's (exit 1)."""

    code = "PIN_STALE"


class RegistryChanged(PetrovaError):
    """The registry changed on disk while a command was editing it; nothing was written."""

    code = "REGISTRY_CHANGED"


# --- the daily job -----------------------------------------------------------------------------


class DailyFailed(CheckFailed):
    """A step whose failure fails the run (snapshot, publish, keeping the ledgers)."""

    code = "DAILY_FAILED"


class StateNotCommitted(CheckFailed):
    """``--commit-state`` could not commit or push the ledgers; they stay on disk."""

    code = "STATE_NOT_COMMITTED"


# --- sync (petrova sync: the fleet's clones in the workspace) ----------------------------


class SyncFailed(CheckFailed):
    """Some repos could not be synced (each was a warning); the rest were (exit 1)."""

    code = "SYNC_FAILED"


class SyncManifestInvalid(PetrovaError):
    """``<workspace>/.petrova-sync.json`` is not a manifest petrova wrote."""

    code = "SYNC_MANIFEST_INVALID"


class SyncSelfRefused(CheckFailed):
    """``sync --self``: the control-plane checkout has local changes, diverged, or the
    pull failed; nothing was merged (exit 1)."""

    code = "SYNC_SELF_REFUSED"


class ProbePathUnsafe(PetrovaError):
    """An evidence path a probe reads is absolute, leaves the repo or is not a plain path.

    ``safe`` holds the other paths, which are still checked out.
    """

    code = "SYNC_PROBE_PATH_UNSAFE"

    def __init__(self, message: str, *, safe: Sequence[str] = (), **kwargs: object) -> None:
        self.safe = list(safe)
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


# --- probes (petrova probe) --------------------------------------------------------------


class ProbesIncomplete(CheckFailed):
    """``probe``: some cells could not be looked at (unreachable, or left for the next run
    by the rate limit); what was seen is still reported (exit 1)."""

    code = "PROBES_INCOMPLETE"


# --- hostile input, round two (issue 17) ------------------------------------------------


class NotRegularFile(OSError):
    """A FIFO, device or socket where a file is read: refused before it can block.

    An ``OSError`` on purpose: every reader already turns an unreadable file into its own
    code (a per-repo warning, ``STATE_INVALID``, ``CONTRACT_NOT_FOUND``) with ``strerror``.
    """

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(
            22,
            f"is a {kind}, not a regular file; petrova reads only regular files",
            path,
        )


class FileSystemError(PetrovaError):
    """The file system refused an operation (read-only, full, a file where a folder goes):
    the environment's doing, not a bug; the message names the path and what to do."""

    code = "FILE_SYSTEM_ERROR"


class OutputIsInput(PetrovaError):
    """``-o`` names a file the same command reads: writing it would destroy the input."""

    code = "OUTPUT_IS_INPUT"


class DuplicateJsonKey(ValueError):
    """A JSON object with the same key twice: refused, as YAML inputs are."""


# --- the migration as an operator runs it (bootstrap, pin, fill-applicability) --------


class AnswersRequired(PetrovaError):
    """Phase 5 has nothing to go by (no terminal, no --answers, no checkpoint): exit 2."""

    code = "ANSWERS_REQUIRED"


class NotAGitClone(PetrovaError):
    """``registry pin`` was pointed at something that is not a clone with the merged ref."""

    code = "NOT_A_GIT_CLONE"


# --- migrate: the pre-commit hook --------------------------------------------------------------


class ContractSlugMismatch(ContractInvalid):
    """The contract's slug is not the repo's it is committed in (the ``petrova-contract`` hook)."""

    code = "CONTRACT_SLUG_MISMATCH"


class PromoteNotRecovered(PetrovaError):
    """A promotion asked for while the probes' newest conclusive outcome is not ``ok``."""

    code = "PROMOTE_NOT_RECOVERED"


class StateNotPushed(StateNotCommitted):
    """The ledgers were committed but the push failed: a warning, the commit is kept.

    A kind of :class:`StateNotCommitted` (the state did not reach the repo), so that a
    caller catching that one catches this one too."""

    code = "STATE_NOT_PUSHED"


# --- git (petrova/net/git.py: the one git runner) ------------------------------------------


class GitTimeout(CheckFailed):
    """A git command ran past its timeout and was killed with its helpers (exit 1)."""

    code = "GIT_TIMEOUT"


class GitFailed(CheckFailed):
    """A git command petrova cannot go on without failed; the message says git's reason."""

    code = "GIT_FAILED"


class GitMissing(PetrovaError):
    """The ``git`` program is not installed or not on PATH."""

    code = "GIT_NOT_FOUND"


# --- the GitHub App (petrova/net/github_app.py: installation tokens) ----------------------


class GitHubAppConfigInvalid(PetrovaError):
    """The App's settings cannot work: an app id that is not a number, a private key that
    is missing, unreadable or not an RSA key in PEM, or an installation id that is not one."""

    code = "GITHUB_APP_CONFIG_INVALID"


class GitHubAppAuthFailed(CheckFailed):
    """GitHub refused the App's JWT (a wrong key for the app id, a clock far off) or gave
    no usable installation token; the run goes on as a failed sync or probe would."""

    code = "GITHUB_APP_AUTH_FAILED"


class GitHubAppInstallationMissing(CheckFailed):
    """No installation of the App to use: revoked, uninstalled, or none for the fleet's
    organisation (discovery found none, or more than one)."""

    code = "GITHUB_APP_INSTALLATION_MISSING"


# --- petrova history ---------------------------------------------------------------------------


class LedgerHistoryMissing(PetrovaError):
    """No commit of the control-plane repo has the ledger: nothing to tell."""

    code = "LEDGER_HISTORY_MISSING"


# --- notify (petrova notify: issues, chat, the pin PR) ------------------------------------


class NotifyIncomplete(CheckFailed):
    """Something to tell could not be told this run (GitHub, chat, git push); it is
    tried again next run."""

    code = "NOTIFY_INCOMPLETE"


class NotifyStateInvalid(PetrovaError):
    """``state/notify/`` holds a file petrova did not write."""

    code = "NOTIFY_STATE_INVALID"


class IssuesRepoUnknown(UsageError):
    """No issues repo could be named (``--issues-repo``, ``PETROVA_ISSUES_REPO``, or the
    control plane's github.com url)."""

    code = "ISSUES_REPO_UNKNOWN"


# --- warning codes -----------------------------------------------------------------------
# A warning is a problem with one item (a repo, a cell, a registry entry) that is reported
# and the run goes on: in a snapshot's ``warnings``, a registry check's findings, the sync
# manifest, on stderr as ``warning: CODE: ...``. Its code is as stable as an error's, and
# is written only as one of these names (tests/test_errors.py checks both, and that
# docs/ lists every one). Where the same problem stops a command that is about that one
# item, the warning shares the error class's code.

#: A ``review_by`` date of a not-applicable cell is past: someone should look again.
REVIEW_OVERDUE = "REVIEW_OVERDUE"
#: An integration id the catalogue renamed, used under its old name.
LEGACY_INTEGRATION_ID = "LEGACY_INTEGRATION_ID"
#: A migrated repo's registry entry gives no applicability for a catalogue integration.
APPLICABILITY_MISSING = "APPLICABILITY_MISSING"
#: The registry and the contract disagree about whether an integration applies.
APPLICABILITY_CONFLICT = ApplicabilityConflict.code
#: A migrated repo's contract cannot be read or does not load.
CONTRACT_UNREADABLE = "CONTRACT_UNREADABLE"
#: A migrated repo's contract is not the one its ``contract_sha`` pins.
CONTRACT_SHA_DRIFT = "CONTRACT_SHA_DRIFT"
#: The catalogue gained an integration the contract does not declare yet.
CONTRACT_INCOMPLETE = "CONTRACT_INCOMPLETE"
#: A migrated repo with an applicable integration has no ledger yet.
STATE_MISSING = "STATE_MISSING"
#: A ledger cannot be read or does not load.
STATE_UNREADABLE = "STATE_UNREADABLE"
#: A ledger entry is later than the snapshot's time (a replay wrote the future).
TIMESTAMP_IN_FUTURE = TimestampInFuture.code
#: The sync manifest cannot be read: every repo's sync is unknown.
SYNC_MANIFEST_INVALID = SyncManifestInvalid.code
#: git failed for one repo: unreachable, not found, timed out.
SYNC_FAILED = SyncFailed.code
#: The host wanted credentials it did not get, or refused them.
SYNC_AUTH_FAILED = "SYNC_AUTH_FAILED"
#: The registry's ``default_branch`` is not on the remote.
SYNC_BRANCH_MISSING = "SYNC_BRANCH_MISSING"
#: The clone in the workspace is of another url; left alone.
SYNC_ORIGIN_MISMATCH = "SYNC_ORIGIN_MISMATCH"
#: Something that is not a clone stands at ``<workspace>/<slug>``; left alone.
SYNC_NOT_A_CLONE = "SYNC_NOT_A_CLONE"
#: The registry pins a contract but the branch has none.
SYNC_NO_CONTRACT = "SYNC_NO_CONTRACT"
#: A probe path in the contract was refused.
SYNC_PROBE_PATH_UNSAFE = ProbePathUnsafe.code
#: Another sync held this repo's lock for longer than ``--timeout``.
SYNC_BUSY = "SYNC_BUSY"
#: The sync manifest names a repo the registry no longer has.
SYNC_NOT_IN_REGISTRY = "SYNC_NOT_IN_REGISTRY"

#: The checkout holds more than ``PETROVA_MAX_CLONE_FILES`` files or
#: ``PETROVA_MAX_CLONE_BYTES`` bytes: the clone is removed (or never renamed into place).
SYNC_CLONE_TOO_LARGE = "SYNC_CLONE_TOO_LARGE"
#: git cannot read the clone as its own repository: left as it is, to be deleted.
SYNC_CLONE_CORRUPT = "SYNC_CLONE_CORRUPT"
#: The repo's sync lock cannot be made (a link or a folder planted at its name).
SYNC_LOCK_UNUSABLE = "SYNC_LOCK_UNUSABLE"

#: Every warning code, for the docs and the tests.
WARNING_CODES: frozenset[str] = frozenset(
    value
    for name, value in list(globals().items())
    if name.isupper() and isinstance(value, str) and value == name
)
