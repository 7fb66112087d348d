"""Every data model petrova reads or writes, in one place.

Models are frozen and forbid unknown fields. Constrained strings are named aliases
whose validators say what was wrong *and* what would be valid, because these
messages reach operators verbatim. JSON Schemas in ``contracts/`` are generated
from these models (see ``schemas.py``), never kept by hand.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import chain
from types import UnionType
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
)
from pydantic.json_schema import SkipJsonSchema

from petrova.errors import TierUnknown

_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SHA_RE = re.compile(r"^[0-9a-f]{12}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HTTPS_RE = re.compile(r"^https://[^\s/:@]+(?::\d+)?(?:/\S*)?$")
_TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def _slug(value: str) -> str:
    if not _SLUG_RE.fullmatch(value) or len(value) > 100:
        raise ValueError(
            f"{value!r} is not a kebab-case slug "
            "(lowercase letters and digits separated by single hyphens, e.g. kahn-hq)"
        )
    return value


def _sha(value: str) -> str:
    if not _SHA_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not 12 lowercase hex digits "
            "(what `sha256sum .petrova/contract.yaml | cut -c1-12` prints)"
        )
    return value


def _date(value: str) -> str:
    try:
        if not _DATE_RE.fullmatch(value):
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date in the form YYYY-MM-DD") from None
    return value


def _https(value: str) -> str:
    if not _HTTPS_RE.fullmatch(value) or not value.isprintable():
        raise ValueError(f"{value!r} is not an https:// URL (e.g. https://github.com/org/repo)")
    return value


@functools.lru_cache(maxsize=1 << 16)
def parse_timestamp(value: str) -> datetime:
    """Parse RFC 3339 strictly (a date, a time, and an offset or Z) into an aware datetime.

    Cached: probes run on schedules, so a fleet's ledgers repeat the same few thousand
    instants, and a snapshot asks for each of them once per cell.
    """
    if not _TS_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp (e.g. 2026-11-26T07:00:00Z)")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise ValueError(f"{value!r} is not a real date and time") from None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError(f"{value!r} lies outside the years 0001-9999 in UTC") from None


def format_timestamp(moment: datetime) -> str:
    """The one timestamp form petrova writes: UTC, whole seconds, ``Z``."""
    # isoformat, not strftime: %Y drops the leading zeros of years before 1000 on glibc,
    # which would write a timestamp that petrova itself refuses to read back.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


# The one form petrova writes, with real months, days and times (29 February and any
# other offset go the long way, through datetime): about 10x cheaper to recognise than
# to parse, and a ledger holds 80 timestamps.
_CANONICAL_TS = re.compile(
    r"\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)"
    r"|02-(?:0[1-9]|1\d|2[0-8]))T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\dZ"
)


def _timestamp(value: str) -> str:
    if _CANONICAL_TS.fullmatch(value):
        return value
    return format_timestamp(parse_timestamp(value))


def _string_schema(
    pattern: re.Pattern[str], description: str, fmt: str | None = None
) -> WithJsonSchema:
    schema = {"type": "string", "pattern": pattern.pattern, "description": description}
    return WithJsonSchema(schema | ({"format": fmt} if fmt else {}))


Slug = Annotated[
    str,
    AfterValidator(_slug),
    _string_schema(_SLUG_RE, "kebab-case: lowercase letters and digits, single hyphens"),
]
ContractSha = Annotated[
    str,
    AfterValidator(_sha),
    _string_schema(_SHA_RE, "first 12 hex digits of sha256 over the contract's bytes"),
]
IsoDate = Annotated[str, AfterValidator(_date), _string_schema(_DATE_RE, "YYYY-MM-DD", "date")]
HttpsUrl = Annotated[str, AfterValidator(_https), _string_schema(_HTTPS_RE, "an https:// URL")]
#: Stored normalised to UTC ``YYYY-MM-DDTHH:MM:SSZ`` whatever offset was given.
Timestamp = Annotated[
    str,
    AfterValidator(_timestamp),
    _string_schema(_TS_RE, "RFC 3339, e.g. 2026-11-26T07:00:00Z", "date-time"),
]
NonEmpty = Annotated[str, Field(min_length=1)]


def _not_a_boolean(value: object) -> object:
    # pydantic reads true as 1 for Literal[1]: a YAML ``schema_version: yes``-style slip
    # would pass unnoticed.
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is a boolean; write the number 1")
    return value


#: The one schema version; a boolean is not a number here.
SchemaVersion = Annotated[Literal[1], BeforeValidator(_not_a_boolean)]

Role = Literal["control-plane", "production", "experimental", "scaffold", "canary", "archived"]
Profile = Literal["strict", "standard", "permissive"]
ApplicabilityValue = Literal["required", "optional", "not_applicable"]
DeclaredStatus = Literal["pending", "wired", "not_applicable"]
ObservedStatus = Literal["pending", "ok", "degraded", "failing", "stale", "not_applicable"]
#: What a ledger stores: ``stale`` is never stored, it is computed when the ledger is read.
StoredStatus = Literal["pending", "ok", "degraded", "failing", "not_applicable"]
Outcome = Literal["ok", "degraded", "failing", "unreachable", "not_applicable"]
CellStatus = Literal["ok", "degraded", "failing", "stale", "pending", "not_applicable"]

ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]
CELL_STATUSES: tuple[str, ...] = CellStatus.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class KeyTypes:
    """Which mapping keys hold strings and which hold numbers or booleans.

    Derived from the models (and the catalogue's evidence shapes); the strict loader
    uses ``strings`` and the fast path uses both to know when it may be trusted.
    """

    strings: frozenset[str] = frozenset()
    scalars: frozenset[str] = frozenset()


def key_types(*models: type[BaseModel]) -> KeyTypes:
    """Which field names hold strings and which hold numbers/booleans, for the YAML loader.

    A name typed differently in two models is left out of ``strings`` (the safe side).
    """
    strings: set[str] = set()
    scalars: set[str] = set()
    for model in models:
        for name, info in model.model_fields.items():
            kinds = _scalar_kinds(info.annotation)
            if kinds == {"str"}:
                strings.add(name)
            elif kinds and kinds <= {"int", "float", "bool"}:
                scalars.add(name)
    return KeyTypes(frozenset(strings - scalars), frozenset(scalars))


def _scalar_kinds(annotation: Any) -> set[str]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _scalar_kinds(get_args(annotation)[0])
    if origin in (Union, UnionType):
        kinds: set[str] = set()
        for member in get_args(annotation):
            if member is type(None):
                continue
            member_kinds = _scalar_kinds(member)
            if not member_kinds:
                return set()
            kinds |= member_kinds
        return kinds
    if origin is Literal:
        return {type(v).__name__ for v in get_args(annotation)}
    if annotation in (str, int, float, bool):
        return {annotation.__name__}
    return set()


class Model(BaseModel):
    # defer_build: a model's validator is built the first time it is used, so a command
    # pays only for the models it touches.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, defer_build=True)


# --- registry.yaml (SPEC §3) -------------------------------------------------------


class ApplicabilityDetail(Model):
    """Applicability with its paperwork: why it is so and when to look again."""

    value: ApplicabilityValue
    review_by: IsoDate | None = None
    reason: NonEmpty | None = None


def _applicability_kind(value: Any) -> str:
    # Called for each of a registry's 40,000 cells: the usual plain word first.
    if type(value) is str:
        return "Value"
    return "Detail" if isinstance(value, dict | ApplicabilityDetail) else "Value"


#: ``required`` or ``{value: not_applicable, reason: ..., review_by: ...}``. The
#: discriminator makes pydantic try only the branch that fits, so one bad value
#: gives one error, not one per union member.
Applicability = Annotated[
    Annotated[ApplicabilityValue, Tag("Value")] | Annotated[ApplicabilityDetail, Tag("Detail")],
    Discriminator(_applicability_kind),
]


def applicability_value(item: Applicability) -> ApplicabilityValue:
    return item.value if isinstance(item, ApplicabilityDetail) else item


class RepoEntry(Model):
    slug: Slug
    url: HttpsUrl
    default_branch: NonEmpty = "main"
    role: Role
    profile: Profile = "standard"
    tier: Annotated[int, Field(ge=1, le=99, strict=True)]
    fleets_allowed: list[Slug] = Field(default_factory=list)
    added: IsoDate | None = None
    contract_sha: ContractSha | None = None
    integrations_applicability: dict[str, Applicability] = Field(default_factory=dict)
    contract_committers: list[NonEmpty] = Field(default_factory=lambda: ["humans"])
    notes: str | None = None

    @property
    def migrated(self) -> bool:
        return self.contract_sha is not None


class Registry(Model):
    schema_version: SchemaVersion
    repos: list[RepoEntry]

    def find(self, slug: str) -> RepoEntry | None:
        for repo in self.repos:
            if repo.slug == slug:
                return repo
        return None


# --- .petrova/contract.yaml (SPEC §4) ------------------------------------------------


class ContractCell(Model):
    status: DeclaredStatus
    evidence: dict[str, Any] | None = None
    not_applicable_reason: str | None = None
    review_by: IsoDate | None = None


class Contract(Model):
    schema_version: SchemaVersion
    slug: Slug
    contract_committers: list[NonEmpty] = Field(default_factory=lambda: ["humans"])
    integrations: dict[str, ContractCell]


# --- state/<slug>.yaml (SPEC §6) -------------------------------------------------------


class ProbeEntry(Model):
    """One probe outcome as reported."""

    at: Timestamp
    outcome: Outcome
    detail: Annotated[str, Field(max_length=200)] | None = None
    evidence_sha: Annotated[str, Field(pattern=r"^[0-9a-f]{7,64}$")] | None = None


class PromotionEntry(Model):
    """A human lifting a demoted status: the only way up (SPEC §1)."""

    at: Timestamp
    promoted_to: Literal["ok"] = "ok"
    by: Annotated[str, Field(pattern=r"^human:[A-Za-z0-9._@-]+$")]
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    #: Added in schema 1 (additive): the human lifted the dot without an observed recovery
    #: (``petrova state promote --override``); green time starts at the next ``ok`` outcome.
    override: Literal[True] | None = None


def _history_kind(value: Any) -> str:
    if isinstance(value, PromotionEntry) or (
        isinstance(value, dict) and ("by" in value or "promoted_to" in value)
    ):
        return "Promotion"
    return "Probe"


#: A probe outcome, or a promotion (it has ``by``). The discriminator makes one bad
#: entry give one error, at its own fields.
HistoryEntry = Annotated[
    Annotated[ProbeEntry, Tag("Probe")] | Annotated[PromotionEntry, Tag("Promotion")],
    Discriminator(_history_kind),
]
#: The newest entries kept per integration (SPEC §6).
HISTORY_LIMIT = 20


class LedgerCell(Model):
    """One integration's observed state; every field but ``history`` follows from it.

    The derived fields are stored so that they survive the history being capped, and
    a ledger is checked on load by replaying its history (``petrova.ledger``).
    """

    current_status: StoredStatus = "pending"
    #: When ``current_status`` took its value (first conclusive outcome, demotion, promotion).
    status_since: Timestamp | None = None
    #: The newest conclusive outcome's time; staleness is measured from here.
    last_verified_at: Timestamp | None = None
    #: Start of the unbroken run of ``ok`` outcomes (or the promotion) while the status is
    #: ``ok``; what the rollout gate measures. Any other outcome, ``unreachable`` included,
    #: clears it.
    ok_since: Timestamp | None = None
    #: A probe saw a recovery that only a human may act on (``petrova state promote``).
    needs_human: Annotated[bool, Field(strict=True)] = False
    #: Consecutive non-ok outcomes counting toward the next demotion step.
    streak: Annotated[int, Field(ge=0, strict=True)] = 0
    history: list[HistoryEntry] = Field(default_factory=list, max_length=HISTORY_LIMIT)


#: ``sha256:`` and 64 lowercase hex digits: the checksum :class:`Ledger` ends with.
SEAL_PATTERN = r"^sha256:[0-9a-f]{64}$"


class Ledger(Model):
    schema_version: SchemaVersion
    slug: Slug
    integrations: dict[str, LedgerCell] = Field(default_factory=dict)
    #: Last, so that it is written last: what petrova's rules vouch for comes before it.
    seal: str | None = Field(
        default=None,
        pattern=SEAL_PATTERN,
        description=(
            "Written by petrova: sha256 over a tag naming the version of the rules "
            "(petrova-ledger-rules-N and a NUL byte) followed by the canonical JSON "
            "(sorted keys, no whitespace, UTF-8) of every other field. "
            "A checksum of what the rules wrote, not a signature: a reader whose "
            "recomputed seal matches skips replaying the history; any edit that changes "
            "a value leaves it stale, and a stale or absent seal means the full check."
        ),
    )


# --- state/promotions/<slug>.yaml: what humans write (SPEC §12) -------------------------


class HumanPromotion(Model):
    """One human promotion (or override) of one cell, as ``petrova state promote`` appends it.

    Humans own this file and the daily job never writes it, so a promotion reviewed as a
    PR merges without conflict however many bot runs happened meanwhile.
    """

    integration: NonEmpty
    at: Timestamp
    by: Annotated[str, Field(pattern=r"^human:[A-Za-z0-9._@-]+$")]
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    override: Literal[True] | None = None


class PromotionsFile(Model):
    schema_version: SchemaVersion
    slug: Slug
    promotions: list[HumanPromotion] = Field(default_factory=list)


# --- state/runs/daily.json: what the daily job did (SPEC §12) ----------------------------

StepOutcome = Literal["ok", "warned", "failed"]


class DailyRunStep(Model):
    """One step of a daily run and how it ended (``code``: its exit code)."""

    name: str
    outcome: StepOutcome
    code: int


class DailyRun(Model):
    """One daily run: written when it starts (``finished_at`` null) and when it ends, so a
    run killed on the way is still null the next day."""

    #: Times as petrova writes them (UTC, ``Z``); plain strings, as the snapshot's others.
    started_at: str
    finished_at: str | None
    steps: list[DailyRunStep] = Field(default_factory=list)


class DailyRuns(Model):
    schema_version: SchemaVersion
    #: Newest last; a few are kept, so that a killed run is still seen by the next one.
    runs: list[DailyRun] = Field(default_factory=list)


# --- the fleet snapshot (SPEC §7) -----------------------------------------------------


def _is_none(value: Any) -> bool:
    return value is None


#: An optional key that is left out of the JSON, not written as ``null``.
OMITTED_IF_NONE = Field(default=None, exclude_if=_is_none)


class SnapshotOverride(Model):
    """Who overrode a cell to ok without an observed recovery, when and why."""

    at: str
    by: str
    reason: str


#: The newest ledger entries a snapshot cell carries (``history``): enough for the page's
#: strip and a week of daily probes, small enough that a 10,000-repo snapshot stays light.
CELL_HISTORY_LIMIT = 10


class CellHistoryEntry(Model):
    """One mark of a cell's trend: a probe outcome, or a human's promotion."""

    at: str
    outcome: Outcome | Literal["promoted"]
    #: What the probe said, or the promotion's reason; absent when there was nothing.
    detail: str | SkipJsonSchema[None] = OMITTED_IF_NONE


class SnapshotCell(Model):
    """One dot on the dashboard: the derived ``status`` plus the inputs it came from."""

    status: CellStatus
    applicability: ApplicabilityValue | None
    declared: DeclaredStatus | None
    observed: ObservedStatus | None
    last_verified_at: str | None
    review_by: str | None
    needs_human: Literal[True] | SkipJsonSchema[None] = OMITTED_IF_NONE
    #: Added in 1.0 (additive): the dot is ok on a human's override
    #: (``petrova state promote --override``) and no probe has seen ``ok`` since.
    override: SnapshotOverride | SkipJsonSchema[None] = OMITTED_IF_NONE
    #: Added in 1.0 (additive): the ledger's newest entries, oldest first, at most
    #: :data:`CELL_HISTORY_LIMIT`; absent when the ledger has none for the cell.
    history: (
        Annotated[list[CellHistoryEntry], Field(max_length=CELL_HISTORY_LIMIT)]
        | SkipJsonSchema[None]
    ) = OMITTED_IF_NONE


class SnapshotRow(Model):
    slug: str
    url: str
    role: Role
    profile: Profile
    tier: int
    default_branch: str
    contract_sha: str | None
    #: Added in 1.0 (additive): the commit of the consumer's default branch the contract was
    #: read at, as ``petrova sync`` fetched it; absent when not known.
    contract_commit: Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")] | SkipJsonSchema[None] = (
        OMITTED_IF_NONE
    )
    #: Present exactly on migrated rows; absent (not null) otherwise, for strict consumers.
    integrations: dict[str, SnapshotCell] | SkipJsonSchema[None] = OMITTED_IF_NONE


class SnapshotWarning(Model):
    slug: str | None
    code: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]
    message: str


class SnapshotTotals(Model):
    repos: Annotated[int, Field(ge=0)]
    migrated: Annotated[int, Field(ge=0)]


class GateHold(Model):
    """One thing that holds a tier's rollout gate: a repo, maybe one of its cells."""

    slug: str
    integration: str | None
    reason: str
    message: str


class TierGate(Model):
    """A tier's rollout gate as ``petrova rollout gate`` sees it (SPEC §11)."""

    tier: int
    days: Annotated[int, Field(ge=1)]
    green: bool
    green_since: str | None
    green_at: str | None
    holds: list[GateHold]


class Snapshot(Model):
    schema_version: Literal["1.0"] = "1.0"
    generated_at: str
    generator: str
    integration_ids: list[str]
    totals: SnapshotTotals
    warnings: list[SnapshotWarning]
    rows: list[SnapshotRow]
    #: Added in 1.0 (additive): each tier's gate; absent from snapshots made before.
    gates: list[TierGate] | SkipJsonSchema[None] = OMITTED_IF_NONE
    #: Added in 1.0 (additive): the newest daily run that is not in progress (``finished_at``
    #: null: it never finished); absent when no daily run was recorded.
    last_run: DailyRun | SkipJsonSchema[None] = OMITTED_IF_NONE


# --- petrova history ----------------------------------------------------------------------

TransitionKind = Literal[
    "appeared",
    "status",
    "needs_human",
    "promotion",
    "override",
    "contract",
    "removed",
    "unreadable",
]


class Transition(Model):
    """One change in a cell's life, as ``petrova history`` reports it."""

    #: When it happened: the ledger's own time where it says one, else the commit's.
    at: str
    #: The control-plane commit whose ledger first shows it.
    commit: str
    integration: str | None
    kind: TransitionKind
    before: str | None = None
    after: str | None = None
    #: Who promoted (``human:NAME``) and why; the probe's detail for other kinds.
    by: str | None = None
    detail: str | None = None


# --- the fleet as derived: typed values from the inputs to the page ------------------
#
# What the snapshot pipeline derives and every reporter takes. Each is frozen and mirrors
# the snapshot's JSON by name (``integrations``, ``totals``): the document is encoded from
# these once, at the end (``render.formats.snapshot_document``), and an archived file is
# read back into them (:meth:`FleetSnapshot.from_model`). Tuples and slotted classes,
# not pydantic models: a 10,000-repo fleet has 40,000 cells, and the :class:`Snapshot`
# models above already define the shape (the schema is generated from them and every
# document is checked against it).


class Notice(NamedTuple):
    """One snapshot warning: whose (``None``: the fleet's), a stable code, what to do."""

    slug: str | None
    code: str
    message: str


class Mark(NamedTuple):
    """One mark of a cell's trend (``history``): a probe outcome, or ``promoted``."""

    at: str
    outcome: str
    #: What the probe said, or the promotion's reason; ``None`` when there was nothing.
    detail: str | None = None


class Override(NamedTuple):
    """Who overrode a cell to ok without an observed recovery, when and why."""

    at: str
    by: str
    reason: str


class Dot(NamedTuple):
    """One cell, derived once (SPEC §7): the status shown and the inputs it came from."""

    status: CellStatus
    applicability: ApplicabilityValue | None
    declared: DeclaredStatus | None
    observed: ObservedStatus | None
    last_verified_at: str | None
    review_by: str | None
    #: Written to the JSON only when true (SPEC §7's wording).
    needs_human: bool = False
    #: ``ok`` on a human's override, no probe has seen ``ok`` since; ``None``: not so.
    override: Override | None = None
    #: The ledger's newest entries, oldest first; ``None`` (no key) when it has none.
    history: tuple[Mark, ...] | None = None


class Totals(NamedTuple):
    repos: int
    migrated: int


class FleetRow(NamedTuple):
    """One registry entry as the snapshot shows it.

    A NamedTuple, as frozen as a frozen dataclass and a third of its cost to build (a
    frozen dataclass sets each field through ``object.__setattr__``): one per repo."""

    slug: str
    url: str
    role: Role
    profile: Profile
    tier: int
    default_branch: str
    contract_sha: str | None
    #: The commit ``petrova sync`` read the contract at; ``None`` when not known.
    contract_commit: str | None = None
    #: One dot per integration id, in the snapshot's order; ``None`` on unmigrated rows.
    integrations: Mapping[str, Dot] | None = None


HoldReason = Literal[
    "not_migrated",
    "contract_unknown",
    "contract_drift",
    "ledger_unreadable",
    "sync_failed",
    "pending",
    "not_ok",
    "stale",
    "run_broken",
    "too_young",
]


class Hold(NamedTuple):
    """Why one repo (or one of its cells) keeps its tier from being green, and since when.

    Read back from an archived snapshot, only ``slug``, ``integration``, ``reason`` and
    ``message`` are known (the file carries no more); the rest is ``None``.
    """

    slug: str
    integration: str | None
    reason: str
    status: CellStatus | None
    since: str | None
    green_at: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Gate:
    """One tier's rollout gate as the snapshot carries it (``gates``, SPEC §11)."""

    tier: int
    days: int
    green: bool
    green_since: str | None
    green_at: str | None
    holds: tuple[Hold, ...]


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """The fleet snapshot (SPEC §7): what ``petrova snapshot`` derives and writes."""

    generated_at: str
    generator: str
    integration_ids: tuple[str, ...]
    totals: Totals
    warnings: tuple[Notice, ...]
    rows: tuple[FleetRow, ...]
    #: ``None`` for an archived snapshot made before gates were added.
    gates: tuple[Gate, ...] | None = None
    #: The newest daily run that is not in progress (a frozen model: one per snapshot);
    #: ``None`` when none was recorded.
    last_run: DailyRun | None = None
    schema_version: str = "1.0"

    @classmethod
    def from_model(cls, snapshot: Snapshot) -> FleetSnapshot:
        """An archived snapshot, checked by its models, as the same typed values."""
        rows = tuple(
            FleetRow(
                r.slug,
                r.url,
                r.role,
                r.profile,
                r.tier,
                r.default_branch,
                r.contract_sha,
                r.contract_commit,
                None
                if r.integrations is None
                else {
                    i: Dot(
                        c.status,
                        c.applicability,
                        c.declared,
                        c.observed,
                        c.last_verified_at,
                        c.review_by,
                        bool(c.needs_human),
                        None
                        if c.override is None
                        else Override(c.override.at, c.override.by, c.override.reason),
                        None
                        if c.history is None
                        else tuple(Mark(h.at, h.outcome, h.detail) for h in c.history),
                    )
                    for i, c in r.integrations.items()
                },
            )
            for r in snapshot.rows
        )
        gates = (
            None
            if snapshot.gates is None
            else tuple(
                Gate(
                    g.tier,
                    g.days,
                    g.green,
                    g.green_since,
                    g.green_at,
                    tuple(
                        Hold(h.slug, h.integration, h.reason, None, None, None, h.message)
                        for h in g.holds
                    ),
                )
                for g in snapshot.gates
            )
        )
        return cls(
            snapshot.generated_at,
            snapshot.generator,
            tuple(snapshot.integration_ids),
            Totals(snapshot.totals.repos, snapshot.totals.migrated),
            tuple(Notice(w.slug, w.code, w.message) for w in snapshot.warnings),
            rows,
            gates,
            snapshot.last_run,
            snapshot.schema_version,
        )


# --- the rollout gate, repo by repo (``petrova rollout``) -----------------------------


class CellView(NamedTuple):
    """One dot as the gate reads it, with when its counted green run began."""

    integration: str
    status: CellStatus
    applicable: bool
    needs_human: bool
    ok_since: str | None
    #: The dot is ok on a human's override alone (shown as ``*``, like the snapshot's table).
    override: bool = False


class RepoView(NamedTuple):
    """One repo as the gate reads it (a NamedTuple, like :class:`FleetRow`: one per repo)."""

    slug: str
    migrated: bool
    cells: tuple[CellView, ...]
    holds: tuple[Hold, ...]
    #: When every applicable cell had become ok for good; ``None`` when held back or
    #: when nothing applies (then nothing can hold it back).
    green_since: str | None

    @property
    def green(self) -> bool:
        return not self.holds


@dataclass(frozen=True, slots=True)
class TierView:
    tier: int
    repos: tuple[RepoView, ...]

    @property
    def green(self) -> bool:
        return all(r.green for r in self.repos)

    @property
    def holds(self) -> tuple[Hold, ...]:
        return tuple(chain.from_iterable(r.holds for r in self.repos))

    @property
    def green_since(self) -> str | None:
        if not self.green:
            return None
        times = [r.green_since for r in self.repos if r.green_since is not None]
        return max(times, key=parse_timestamp) if times else None

    @property
    def green_at(self) -> str | None:
        """The earliest the tier can be green: when every hold is only a young ``ok``."""
        return _earliest_green(self.holds)

    def gate(self, days: int) -> Gate:
        """This tier's gate as the snapshot carries it (its holds gathered once, not once
        per property: a tier of a large fleet holds thousands)."""
        holds = self.holds
        if holds:
            return Gate(self.tier, days, False, None, _earliest_green(holds), holds)
        return Gate(self.tier, days, True, self.green_since, None, holds)


def _earliest_green(holds: tuple[Hold, ...]) -> str | None:
    if not holds or any(h.green_at is None for h in holds):
        return None
    return max((h.green_at for h in holds if h.green_at), key=parse_timestamp)


@dataclass(frozen=True, slots=True)
class RolloutReport:
    """Every tier's gate at ``now`` over a ``days`` window, and the snapshot's warnings."""

    now: datetime
    days: int
    integration_ids: tuple[str, ...]
    tiers: tuple[TierView, ...]
    warnings: tuple[Notice, ...]

    def tier(self, number: int) -> TierView:
        for view in self.tiers:
            if view.tier == number:
                return view
        known = ", ".join(str(t.tier) for t in self.tiers) or "none"
        raise TierUnknown(f"no repo in the registry has tier {number}; tiers: {known}")


REGISTRY_KEYS = key_types(Registry, RepoEntry, ApplicabilityDetail)
CONTRACT_KEYS = key_types(Contract, ContractCell)
LEDGER_KEYS = key_types(Ledger, LedgerCell, ProbeEntry, PromotionEntry)
PROMOTIONS_KEYS = key_types(PromotionsFile, HumanPromotion)


def is_slug(value: str) -> bool:
    """``value`` is a slug as a whole (no trailing newline): safe to make a file name of."""
    return bool(_SLUG_RE.fullmatch(value)) and len(value) <= 100
