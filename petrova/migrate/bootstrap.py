"""``petrova bootstrap`` (SPEC §5): the numbered phases that end in a consumer contract.

Phases 1-4 only read (the work tree, its ``origin``, the registry, the contract already
in the repo), so a resumed run simply re-runs them: that is the re-validation. Phase 5
is the one that asks people things; its answers are checkpointed in the consumer's git
directory (never the work tree, so the PR carries only the contract) and reused by
``--resume``. Phase 6 composes the contract from the catalogue, the registry, the
answers and the contract already there, and never downgrades what a human wrote.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from petrova.documents.catalogue import Catalogue, EvidenceField
from petrova.documents.contract import (
    CONTRACT_RELPATH,
    LoadedContract,
    cell_as_dict,
    check_rendered,
    load_contract,
    render_contract,
)
from petrova.documents.registry import LoadedRegistry
from petrova.errors import (
    AnswersInvalid,
    AnswersRequired,
    ApplicabilityConflict,
    CheckpointInvalid,
    ContractInvalid,
    EvidenceInvalid,
    Location,
    NotAGitRepo,
    OriginMissing,
    PetrovaError,
    RepoNotInRegistry,
    ReviewDateMissing,
    UnsafePath,
    YamlInvalid,
)
from petrova.files.disk import WriteVerb, decode_text, read_as, read_input, sha12, write_atomic
from petrova.files.yaml_strict import YamlDocument, parse_yaml
from petrova.migrate.answers import (
    Answer,
    Question,
    answers_document,
    check_evidence,
    evidence_hint,
    parse_answers,
    questions,
)
from petrova.models import (
    ApplicabilityDetail,
    Contract,
    ContractCell,
    RepoEntry,
    applicability_value,
)
from petrova.net.git import Git, Result
from petrova.sync.origin import ORIGIN_CONFIG_ARGS, normalise_remote


@dataclass(frozen=True)
class Phase:
    number: int
    name: str
    summary: str


PHASES: tuple[Phase, ...] = (
    Phase(1, "repo", "find the git work tree and its git directory"),
    Phase(2, "remote", "read the 'origin' remote url"),
    Phase(3, "registry", "match the registry entry by origin url (or --slug)"),
    Phase(4, "applicability", "read each integration's applicability and any existing contract"),
    Phase(5, "questions", "answer the catalogue's questions (prompts, --answers, or defaults)"),
    Phase(6, "contract", "validate and write .petrova/contract.yaml; print its sha"),
)
LAST_PHASE = PHASES[-1].number
CHECKPOINT_RELPATH = Path("petrova") / "bootstrap.json"
CHECKPOINT_VERSION = 1


# --- phase 1: the repo ----------------------------------------------------------------


@dataclass(frozen=True)
class RepoInfo:
    root: Path
    git_dir: Path

    @property
    def contract_path(self) -> Path:
        return self.root / CONTRACT_RELPATH

    @property
    def checkpoint_path(self) -> Path:
        return self.git_dir / CHECKPOINT_RELPATH


def _git(args: list[str], cwd: Path) -> Result:
    """One git command in ``cwd`` through the one runner; a hung git is ``GIT_TIMEOUT``."""
    return Git(timeout=60.0).run(args, cwd=cwd).check_timeout(str(cwd))


def find_repo(path: Path) -> RepoInfo:
    """The work tree containing ``path`` and its (absolute) git directory."""
    if not path.is_dir():
        raise NotAGitRepo(
            "no such directory; --repo takes a consumer repo's working tree",
            location=Location(str(path)),
        )
    proc = _git(["rev-parse", "--show-toplevel", "--absolute-git-dir"], path)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) != 2:
        detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "not a work tree"
        raise NotAGitRepo(
            f"not a git working tree ({detail}); --repo takes a clone of the consumer repo",
            location=Location(str(path)),
        )
    return RepoInfo(Path(lines[0]), Path(lines[1]))


def contract_target(repo: RepoInfo) -> Path:
    """Where the contract goes, refusing anything that would write outside the work tree."""
    directory = repo.root / CONTRACT_RELPATH.parent
    target = repo.root / CONTRACT_RELPATH
    if directory.is_symlink():
        raise UnsafePath(
            "is a symbolic link; petrova writes only real files inside the repo "
            "(replace the link with a directory)",
            location=Location(str(directory)),
        )
    if directory.exists() and not directory.is_dir():
        raise UnsafePath("is not a directory", location=Location(str(directory)))
    if target.is_symlink():
        raise UnsafePath(
            "is a symbolic link; petrova writes only real files inside the repo",
            location=Location(str(target)),
        )
    root = repo.root.resolve()
    if not target.resolve().is_relative_to(root):
        raise UnsafePath(f"resolves outside the repo {root}", location=Location(str(target)))
    return target


# --- phase 2: the remote --------------------------------------------------------------


def read_origin(repo: RepoInfo) -> str | None:
    """The origin as configured, before any insteadOf: the one rule sync uses too."""
    proc = _git(list(ORIGIN_CONFIG_ARGS), repo.root)
    url = proc.stdout.strip()
    return url if proc.returncode == 0 and url else None


# --- phase 3: the registry entry ------------------------------------------------------


def match_entry(
    loaded: LoadedRegistry, *, origin: str | None, slug: str | None
) -> tuple[RepoEntry, tuple[str, ...]]:
    """The entry named by ``slug``, else the one whose url is ``origin``; plus notes."""
    if slug is not None:
        entry = loaded.require(slug)
        if origin is not None and normalise_remote(origin) != normalise_remote(entry.url):
            return entry, (
                f"origin {origin} is not {entry.slug}'s registry url {entry.url} (going by --slug)",
            )
        return entry, ()
    if origin is None:
        raise OriginMissing(
            "the repo has no 'origin' remote to match against the registry; "
            "pass --slug SLUG (or add the remote)"
        )
    wanted = normalise_remote(origin)
    for entry in loaded.registry.repos:
        if normalise_remote(entry.url) == wanted:
            return entry, ()
    raise RepoNotInRegistry(
        f"no repo in {loaded.path} has the url of origin {origin}; "
        "pass --slug SLUG, or add the repo to the registry first"
    )


# --- phase 4: applicability and the contract already there ----------------------------


def read_existing(path: Path, catalogue: Catalogue, slug: str) -> LoadedContract | None:
    """The contract already in the repo, or None; a malformed one stops everything."""
    if not path.exists():
        return None
    loaded = load_contract(path, catalogue)
    if loaded.contract.slug != slug:
        raise ContractInvalid(
            f"the contract already in the repo is for {loaded.contract.slug!r}, not {slug!r}; "
            "fix its slug (or pass the right --slug)",
            location=loaded.document.locate(("slug",)),
        )
    return loaded


# --- phase 5: questions ---------------------------------------------------------------


class Asker(Protocol):
    """How phase 5 asks a person; the command supplies one backed by prompts."""

    def status(self, question: Question, default: str) -> str: ...

    def evidence(self, question: Question, item: EvidenceField, default: Any | None) -> Any: ...

    def reason(self, question: Question, default: str | None) -> str: ...

    def review_by(self, question: Question, default: str | None) -> str: ...

    def note(self, message: str) -> None: ...


def _policy_detail(entry: RepoEntry, integration_id: str) -> ApplicabilityDetail | None:
    item = entry.integrations_applicability.get(integration_id)
    return item if isinstance(item, ApplicabilityDetail) else None


def _policy_value(entry: RepoEntry, integration_id: str) -> str | None:
    item = entry.integrations_applicability.get(integration_id)
    return applicability_value(item) if item is not None else None


def ask_answers(
    catalogue: Catalogue,
    entry: RepoEntry,
    existing: LoadedContract | None,
    asker: Asker,
) -> dict[str, Answer]:
    """Ask about every integration that is still open: new, or ``pending`` in the contract.

    What a human already decided (``wired``, ``not_applicable`` in the contract) and what
    the registry rules out (``not_applicable`` there) is not asked again.
    """
    answers: dict[str, Answer] = {}
    old = existing.contract.integrations if existing is not None else {}
    for question in questions(catalogue):
        iid = question.id
        current = old.get(iid)
        if current is not None and current.status != "pending":
            asker.note(f"{iid}: {current.status} in the contract already; kept")
            continue
        if _policy_value(entry, iid) == "not_applicable":
            asker.note(f"{iid}: not applicable by the registry")
            continue
        status = asker.status(question, "pending")
        if status == "wired":
            evidence: dict[str, Any] = {}
            for item in question.evidence_fields:
                value = asker.evidence(question, item, None)
                if value is not None:
                    evidence[item.name] = value
            doc_path = f"<answers for {iid}>"
            problems = check_evidence(
                catalogue, iid, evidence, YamlDocument(doc_path, evidence, None), ()
            )
            if problems:
                raise EvidenceInvalid(f"{iid}: the evidence is not valid", problems=problems)
            answers[iid] = Answer("wired", evidence=evidence)
        elif status == "not_applicable":
            detail = _policy_detail(entry, iid)
            reason = asker.reason(question, detail.reason if detail else None)
            review_by = asker.review_by(question, detail.review_by if detail else None)
            answers[iid] = Answer(
                "not_applicable", not_applicable_reason=reason, review_by=review_by
            )
        else:
            answers[iid] = Answer(status)
    return answers


def load_answers_file(path: Path, catalogue: Catalogue) -> dict[str, Answer]:
    shown = str(path)
    raw = read_as(
        path,
        AnswersInvalid,
        what="the answers",
        missing="answers file not found",
        directory="is a directory, not an answers file",
    )
    try:
        text = decode_text(raw, shown)
        doc = parse_yaml(text, shown, string_keys=catalogue.contract_keys.strings)
    except YamlInvalid as exc:
        raise AnswersInvalid(exc.message, problems=exc.problems) from None
    return parse_answers(doc, catalogue)


def _unanswered(
    catalogue: Catalogue, entry: RepoEntry, existing: LoadedContract | None
) -> list[str]:
    """Integrations phase 6 could only fill with defaults: absent from the contract there."""
    old = existing.contract.integrations if existing is not None else {}
    return [iid for iid in catalogue.ids if iid not in old]


def _no_answers_message(request: Request, repo: RepoInfo, unanswered: list[str]) -> str:
    why = (
        f"there is no checkpoint to resume from ({repo.checkpoint_path} does not exist)"
        if request.resume
        else "phase 5 has nobody to ask"
    )
    return (
        f"{why}, no --answers file was given and stdin is not a terminal, so nothing says "
        f"what to declare for {', '.join(unanswered)}; petrova will not write a contract of "
        "defaults nobody chose. Run it on a terminal to be asked, pass --answers FILE "
        "(format: docs/MIGRATION.md), or pass --defaults to choose the defaults knowingly"
    )


# --- the checkpoint -------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    completed_phase: int
    slug: str | None = None
    origin: str | None = None
    answers: Mapping[str, Answer] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        body = {
            "petrova_bootstrap": CHECKPOINT_VERSION,
            "completed_phase": self.completed_phase,
            "slug": self.slug,
            "origin": self.origin,
            **answers_document(dict(self.answers)),
        }
        return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def load_checkpoint(path: Path, catalogue: Catalogue) -> Checkpoint | None:
    """The saved progress, re-validated against today's catalogue; None when there is none."""
    shown = str(path)
    if not path.exists():
        return None

    def bad(message: str, at: tuple[str | int, ...] = ()) -> CheckpointInvalid:
        return CheckpointInvalid(
            f"{message}; delete the file, or run without --resume to start over",
            location=doc.locate(at) if doc is not None else Location(shown),
        )

    doc = None
    try:
        doc = parse_yaml(decode_text(read_input(path, display=shown), shown), shown)
    except (OSError, YamlInvalid) as exc:
        raise bad(f"cannot read the checkpoint: {exc}") from None
    data = doc.data
    if not isinstance(data, dict) or data.get("petrova_bootstrap") != CHECKPOINT_VERSION:
        raise bad(f"not a version {CHECKPOINT_VERSION} bootstrap checkpoint")
    phase = data.get("completed_phase")
    if not isinstance(phase, int) or isinstance(phase, bool) or not 0 <= phase <= LAST_PHASE:
        raise bad(f"completed_phase must be 0..{LAST_PHASE}", ("completed_phase",))
    slug, origin = data.get("slug"), data.get("origin")
    if not isinstance(slug, str | None) or not isinstance(origin, str | None):
        raise bad("slug and origin must be strings or null")
    answers_part = {"integrations": data.get("integrations") or {}}
    try:
        answers = parse_answers(YamlDocument(shown, answers_part, doc.node), catalogue)
    except PetrovaError as exc:
        raise CheckpointInvalid(
            "the saved answers no longer fit the catalogue; re-run phase 5 "
            "(petrova bootstrap --resume --phase 5) or pass --answers",
            problems=exc.problems,
        ) from None
    return Checkpoint(phase, slug, origin, answers)


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> WriteVerb:
    path.parent.mkdir(exist_ok=True)
    return write_atomic(path, checkpoint.to_bytes())


# --- phase 6: the contract ------------------------------------------------------------


@dataclass(frozen=True)
class Composition:
    contract: Contract
    data: bytes
    notes: tuple[str, ...]
    #: Integrations this run adds to a contract that existed (the catalogue gained them).
    added: tuple[str, ...]

    @property
    def sha(self) -> str:
        return sha12(self.data)


def _default_answer(entry: RepoEntry, integration_id: str) -> Answer:
    if _policy_value(entry, integration_id) == "not_applicable":
        return Answer("not_applicable")
    return Answer("pending")


def _cell(
    catalogue: Catalogue, entry: RepoEntry, integration_id: str, answer: Answer
) -> ContractCell:
    policy = _policy_value(entry, integration_id)
    if answer.status == "wired" and policy == "not_applicable":
        raise ApplicabilityConflict(
            f"{integration_id}: answered wired, but the registry says not_applicable for "
            f"{entry.slug}; change the answer, or the registry by pull request first"
        )
    if answer.status == "wired" and answer.evidence is None:
        raise EvidenceInvalid(evidence_hint(catalogue.get(integration_id)))
    if answer.status != "not_applicable":
        return ContractCell(status=answer.status, evidence=answer.evidence)
    detail = _policy_detail(entry, integration_id)
    reason = answer.not_applicable_reason or (detail.reason if detail else None)
    review_by = answer.review_by or (detail.review_by if detail else None)
    if review_by is None:
        raise ReviewDateMissing(
            f"{integration_id} is not applicable but has no review date anywhere (not in the "
            f"answers, not in {entry.slug}'s registry entry); give it "
            "`review_by: YYYY-MM-DD` in the answers file"
        )
    if reason is None:
        raise AnswersInvalid(
            f"{integration_id} is not applicable but says nowhere why; give it "
            "`not_applicable_reason: ...` in the answers file"
        )
    return ContractCell(status="not_applicable", not_applicable_reason=reason, review_by=review_by)


def compose(
    catalogue: Catalogue,
    entry: RepoEntry,
    answers: Mapping[str, Answer],
    existing: LoadedContract | None,
) -> Composition:
    """The contract phase 6 writes.

    A cell already ``wired`` or ``not_applicable`` in the contract is a human decision and
    is kept as written; a ``pending`` one takes a new answer when there is one. Ids the
    catalogue gained are added (from the answers, else the defaults of SPEC §5). When the
    result says what the file already says, the file's own bytes are kept (comments too).
    """
    old = dict(existing.contract.integrations) if existing is not None else {}
    notes: list[str] = []
    added: list[str] = []
    cells: dict[str, ContractCell] = {}
    for iid in catalogue.ids:
        current = old.get(iid)
        answer = answers.get(iid)
        if current is not None and current.status != "pending":
            if answer is not None and answer.as_dict() != cell_as_dict(current, catalogue, iid):
                notes.append(
                    f"{iid}: kept as the contract says ({current.status}); bootstrap never "
                    "rewrites a decision already in the file: change it by pull request"
                )
            if current.status == "wired" and _policy_value(entry, iid) == "not_applicable":
                notes.append(
                    f"{iid}: the contract says wired but the registry says not_applicable; "
                    "`petrova registry pin` will refuse until one of them changes"
                )
            cells[iid] = current
            continue
        if answer is None and current is not None:
            cells[iid] = current
            continue
        if current is None and existing is not None:
            added.append(iid)
        cells[iid] = _cell(catalogue, entry, iid, answer or _default_answer(entry, iid))
    committers = (
        existing.contract.contract_committers
        if existing is not None
        else list(entry.contract_committers)
    )
    contract = Contract(
        schema_version=1, slug=entry.slug, contract_committers=committers, integrations=cells
    )
    if existing is not None and existing.contract == contract and not existing.renamed:
        return Composition(existing.contract, existing.raw, tuple(notes), ())
    data = render_contract(contract, catalogue)
    contract = check_rendered(data, catalogue, str(CONTRACT_RELPATH))
    return Composition(contract, data, tuple(notes), tuple(added))


# --- the run --------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    repo: Path
    slug: str | None = None
    resume: bool = False
    phase: int | None = None
    answers_path: Path | None = None
    dry_run: bool = False
    #: Take the defaults for what nobody answered: an explicit choice, never implied.
    defaults: bool = False


@dataclass(frozen=True)
class Outcome:
    slug: str
    contract_path: Path
    composition: Composition
    old: bytes | None
    #: create / update / identical; for a dry run, what a real run would do.
    verb: WriteVerb


Notify = Callable[[str], None]


def run(
    loaded: LoadedRegistry, request: Request, *, asker: Asker | None, notify: Notify
) -> Outcome:
    """Run the phases from the start phase through phase 6 and write the contract."""
    catalogue = loaded.catalogue

    def say(phase: int, message: str) -> None:
        notify(f"phase {phase}/{LAST_PHASE} {PHASES[phase - 1].name}: {message}")

    repo = find_repo(request.repo)
    target = contract_target(repo)
    checkpoint = load_checkpoint(repo.checkpoint_path, catalogue) if request.resume else None
    start = 1
    if request.resume:
        if request.phase is not None:
            start = request.phase
        elif checkpoint is not None:
            start = min(checkpoint.completed_phase + 1, LAST_PHASE)
    say(1, f"{repo.root} (git dir {repo.git_dir})")

    # Only phase 5 (the one that asks people) and phase 6 are worth saving: phases 1-4
    # read and are re-run anyway. A run that fails on bad input leaves no trace.
    progress = checkpoint if checkpoint is not None else Checkpoint(0)

    def save(phase: int, **changes: Any) -> None:
        nonlocal progress
        progress = replace(progress, completed_phase=phase, **changes)
        if not request.dry_run:
            save_checkpoint(repo.checkpoint_path, progress)

    origin = read_origin(repo)
    say(2, origin or "no 'origin' remote")
    if checkpoint is not None and checkpoint.origin not in (None, origin):
        notify(f"note: origin was {checkpoint.origin} when the checkpoint was saved")

    slug = request.slug or (checkpoint.slug if checkpoint is not None else None)
    entry, notes = match_entry(loaded, origin=origin, slug=slug)
    for note in notes:
        notify(f"warning: {note}")
    if checkpoint is not None and checkpoint.slug not in (None, entry.slug):
        raise CheckpointInvalid(
            f"the checkpoint was saved for {checkpoint.slug!r}, not {entry.slug!r}; "
            "run without --resume to start over",
            location=Location(str(repo.checkpoint_path)),
        )
    say(3, f"{entry.slug} ({entry.role}, tier {entry.tier}) in {loaded.path}")

    existing = read_existing(target, catalogue, entry.slug)
    summary = ", ".join(f"{i}={_policy_value(entry, i) or 'unset'}" for i in catalogue.ids)
    state = "a contract is already there" if existing is not None else "no contract yet"
    say(4, f"{summary}; {state}")

    file_answers = (
        load_answers_file(request.answers_path, catalogue)
        if request.answers_path is not None
        else None
    )
    if start <= 5 or checkpoint is None:
        # Phase 5 runs (or a resume finds no checkpoint to take its answers from): the
        # answers come from --answers, else a person at a terminal; never from defaults
        # nobody chose.
        if file_answers is not None:
            answers = file_answers
            say(5, f"{len(answers)} answer(s) from --answers {request.answers_path}")
        elif request.defaults:
            answers = {}
            say(5, "the defaults, as --defaults asks (pending; not_applicable by the registry)")
        elif asker is not None:
            resumed = " (no checkpoint to resume from)" if start > 5 else ""
            say(5, f"asking{resumed} (Enter keeps the default)")
            answers = ask_answers(catalogue, entry, existing, asker)
        else:
            unanswered = _unanswered(catalogue, entry, existing)
            if unanswered:
                raise AnswersRequired(_no_answers_message(request, repo, unanswered))
            answers = {}
            say(5, "nothing to ask: the contract already answers every integration")
    else:
        answers = dict(checkpoint.answers)
        if file_answers is not None:
            answers.update(file_answers)
            say(
                5,
                f"resumed: {len(answers)} answer(s) from the checkpoint "
                f"{repo.checkpoint_path} and --answers {request.answers_path}",
            )
        else:
            say(5, f"resumed: {len(answers)} answer(s) from the checkpoint {repo.checkpoint_path}")
    # Check the answers against the registry before keeping them (conflicts, missing
    # review dates), so a checkpoint never holds answers phase 6 would refuse.
    composition = compose(catalogue, entry, answers, existing)
    save(5, slug=entry.slug, origin=origin, answers=answers)

    for note in composition.notes:
        notify(f"warning: {note}")
    for iid in composition.added:
        status = composition.contract.integrations[iid].status
        notify(f"note: {iid} is new in the catalogue; added as {status}")
    old = existing.raw if existing is not None else None
    if request.dry_run:
        verb: WriteVerb = (
            "create" if old is None else "identical" if old == composition.data else "update"
        )
    else:
        target.parent.mkdir(exist_ok=True)
        verb = write_atomic(target, composition.data)
        save(6, slug=entry.slug, origin=origin, answers=answers)
    say(6, f"{CONTRACT_RELPATH} has contract_sha {composition.sha}")
    return Outcome(entry.slug, target, composition, old, verb)
