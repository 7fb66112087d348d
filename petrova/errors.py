"""One error hierarchy for the whole core.

Every failure a user can cause is a :class:`PetrovaError` carrying a stable
UPPER_SNAKE ``code``, a message, and where it happened (file, line, column,
field path). The CLI renders these in one place; the core never prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


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
    exit_code: int = 2

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        problems: Sequence[Problem] = (),
        code: str | None = None,
    ) -> None:
        if code is not None:
            self.code = code
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
    exit_code = 1


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


# --- the migration as an operator runs it (bootstrap, pin, fill-applicability) --------


class AnswersRequired(PetrovaError):
    """Phase 5 has nothing to go by (no terminal, no --answers, no checkpoint): exit 2."""

    code = "ANSWERS_REQUIRED"


class NotAGitClone(PetrovaError):
    """``registry pin`` was pointed at something that is not a clone with the merged ref."""

    code = "NOT_A_GIT_CLONE"
