"""The GitHub credential: a GitHub App's installation token, or ``GITHUB_TOKEN``.

A fleet of thousands of repos runs its bot as a GitHub App: a token tied to no person,
with a rate limit that grows with the organisation. The App's settings come from the
environment only:

- ``PETROVA_GITHUB_APP_ID``: the App's id (a number); setting it turns the App on, and
  then the App's token is used wherever ``GITHUB_TOKEN`` would be.
- ``PETROVA_GITHUB_APP_PRIVATE_KEY`` (the PEM text) or
  ``PETROVA_GITHUB_APP_PRIVATE_KEY_FILE`` (a file holding it, e.g. a mounted secret).
- ``PETROVA_GITHUB_APP_INSTALLATION_ID`` (optional): else the installation is found for
  the registry's organisation (``GET /orgs/{org}/installation``), or as the App's only
  installation (``GET /app/installations``).

petrova signs a short JWT (RS256, PyJWT with cryptography; ``iat`` backdated 60 s for
clock skew, expiring 8 minutes after now, so its lifetime stays under GitHub's ten
minutes), exchanges it at ``POST /app/installations/{id}/access_tokens`` for an
installation token, and keeps that token **in memory only** until five minutes before its
``expires_at``; a run longer than the token's hour fetches a new one when it next asks.
The key, the JWT and the token live in :class:`~petrova.net.http.Secret` values: never
printed, never on a command line, never written to a file. Git receives the token the
way it receives ``GITHUB_TOKEN`` (the environment of the git process, read by the inline
credential helper of :mod:`petrova.net.git`).

:func:`github_credential` is the one way to get "the GitHub credential" for a command.
"""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from petrova.errors import (
    GitHubAppAuthFailed,
    GitHubAppConfigInvalid,
    GitHubAppInstallationMissing,
    Location,
)
from petrova.net.http import Answer, NoAnswer, Secret, Transport, is_token_text, request_json

APP_ID_ENV = "PETROVA_GITHUB_APP_ID"
KEY_ENV = "PETROVA_GITHUB_APP_PRIVATE_KEY"
KEY_FILE_ENV = "PETROVA_GITHUB_APP_PRIVATE_KEY_FILE"
INSTALLATION_ENV = "PETROVA_GITHUB_APP_INSTALLATION_ID"
DEFAULT_API = "https://api.github.com"
#: Seconds ``iat`` is set in the past, for a GitHub clock a little behind this machine's.
JWT_BACKDATE = 60
#: Seconds after now the JWT expires: 9 minutes of lifetime in all, under GitHub's 10.
JWT_EXPIRES = 8 * 60
#: An installation token is fetched again this many seconds before its ``expires_at``.
REFRESH_MARGIN = 5 * 60
#: A key file larger than this is not a PEM private key.
_MAX_KEY_BYTES = 64 * 1024
_API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")


@dataclass(frozen=True)
class AppSettings:
    """What the environment says about the App (the key already checked)."""

    app_id: str
    key: Any = field(repr=False)  # cryptography's RSAPrivateKey, never shown
    installation_id: int | None
    api: str


def app_configured(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get(APP_ID_ENV, "").strip())


def app_settings(environ: Mapping[str, str] | None = None) -> AppSettings | None:
    """The App's settings, or ``None`` when ``PETROVA_GITHUB_APP_ID`` is unset.

    Raises :class:`GitHubAppConfigInvalid` (naming the variable, never its value) for an
    app id or installation id that is not a number, a key that is missing or both ways
    given, or a key that is not an RSA private key in PEM.
    """
    env = os.environ if environ is None else environ
    app_id = env.get(APP_ID_ENV, "").strip()
    if not app_id:
        return None
    if not app_id.isdecimal() or not app_id.isascii():
        raise GitHubAppConfigInvalid(
            "is not a GitHub App id (a number, shown on the App's settings page)",
            location=Location(field=APP_ID_ENV),
        )
    installation: int | None = None
    raw_installation = env.get(INSTALLATION_ENV, "").strip()
    if raw_installation:
        if not raw_installation.isdecimal() or not raw_installation.isascii():
            raise GitHubAppConfigInvalid(
                "is not an installation id (a number, the end of the installation's "
                "settings URL); leave it unset to find the installation for the registry's "
                "organisation",
                location=Location(field=INSTALLATION_ENV),
            )
        installation = int(raw_installation)
    api = (env.get("GITHUB_API_URL") or DEFAULT_API).strip().rstrip("/")
    return AppSettings(app_id, _private_key(env), installation, api)


def _private_key(env: Mapping[str, str]) -> Any:
    text = env.get(KEY_ENV, "")
    path = env.get(KEY_FILE_ENV, "").strip()
    if text.strip() and path:
        raise GitHubAppConfigInvalid(
            f"set one of {KEY_ENV} and {KEY_FILE_ENV}, not both",
            location=Location(field=KEY_ENV),
        )
    where = Location(field=KEY_ENV)
    if path:
        where = Location(path, field=KEY_FILE_ENV)
        try:
            with Path(path).open("rb") as handle:
                data = handle.read(_MAX_KEY_BYTES + 1)
        except OSError as exc:
            raise GitHubAppConfigInvalid(
                f"cannot read the App's private key: {exc.strerror or type(exc).__name__}",
                location=where,
            ) from None
        if len(data) > _MAX_KEY_BYTES:
            raise GitHubAppConfigInvalid("is too large to be a private key", location=where)
    elif text.strip():
        # A CI secret pasted on one line keeps its newlines as the two characters "\n".
        data = (text if "\n" in text.strip() else text.replace("\\n", "\n")).encode()
    else:
        raise GitHubAppConfigInvalid(
            f"{APP_ID_ENV} is set but the App's private key is not: set {KEY_ENV} (the PEM "
            f"text) or {KEY_FILE_ENV} (a file holding it)",
            location=where,
        )
    return load_private_key(data.strip() + b"\n", where)


def load_private_key(data: bytes, where: Location) -> Any:
    """An RSA private key from PEM bytes; anything else is :class:`GitHubAppConfigInvalid`
    (the message never quotes the bytes)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        kind = "is encrypted with a passphrase" if "password" in str(exc).lower() else ""
        raise GitHubAppConfigInvalid(
            "is not a GitHub App private key: expected the unencrypted PEM text GitHub "
            "downloads (-----BEGIN RSA PRIVATE KEY----- ...)" + (f"; it {kind}" if kind else ""),
            location=where,
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise GitHubAppConfigInvalid(
            "is a private key but not an RSA one; GitHub App keys are RSA (RS256)",
            location=where,
        )
    return key


def make_jwt(app_id: str, key: Any, now: float) -> Secret:
    """The App's JWT: RS256, ``iat`` backdated, lifetime under ten minutes."""
    import jwt

    issued = int(now) - JWT_BACKDATE
    claims = {"iat": issued, "exp": int(now) + JWT_EXPIRES, "iss": app_id}
    return Secret(jwt.encode(claims, key, algorithm="RS256"))


def registry_organisation(repos: Iterable[tuple[str, str]]) -> str | None:
    """The organisation whose installation to use, from the registry's ``(url, role)``
    pairs: the control plane's owner, else the one owner every repo shares; ``None`` when
    the fleet spans several (then the App's only installation is used, or
    ``PETROVA_GITHUB_APP_INSTALLATION_ID`` must say)."""

    def owner(url: str) -> str | None:
        try:
            first = urllib.parse.urlsplit(url).path.strip("/").split("/")[0]
        except ValueError:
            return None
        return first if _OWNER.fullmatch(first) else None

    pairs = list(repos)
    for url, role in pairs:
        if role == "control-plane" and owner(url):
            return owner(url)
    owners = {owner(url) for url, _ in pairs}
    return owners.pop() if len(owners) == 1 else None


def app_token_source(
    environ: Mapping[str, str] | None, *, organisation: str | None
) -> Callable[[], Secret] | None:
    """For git: the App's token source when the App is configured, else ``None`` (git then
    reads ``GITHUB_TOKEN`` as before). The first token is fetched here, so a bad key, a
    clock far off or a revoked installation stops the command with its code."""
    credential = github_credential(environ, organisation=organisation)
    if credential is None or credential.source != "app":
        return None
    credential.secret()
    return credential.secret


def _message(answer: Answer) -> str:
    """GitHub's own one-line ``message`` (it names what was wrong with the JWT)."""
    try:
        text = str(answer.json().get("message", ""))
    except (ValueError, AttributeError):
        text = ""
    text = " ".join(text.split())[:200]
    return text or answer.reason or f"status {answer.status}"


def _clock_hint(message: str) -> str:
    if "'exp'" in message or "'iat'" in message or "expiration time" in message.lower():
        return (
            "; this machine's clock is probably off by minutes (GitHub checks the JWT's "
            "times against its own): synchronise it (NTP) and run again"
        )
    return ""


class GitHubApp:
    """One App installation's token, fetched when first asked and kept until shortly
    before it expires; safe to share between threads."""

    def __init__(
        self,
        settings: AppSettings,
        *,
        organisation: str | None = None,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.organisation = organisation
        self.transport = transport or Transport(timeout=30.0)
        self._clock = clock
        self._lock = threading.Lock()
        self._installation = settings.installation_id
        self._token: Secret | None = None
        self._expires = 0.0
        #: How many installation tokens this process fetched (the benchmark counts them).
        self.fetched = 0

    def token(self) -> Secret:
        """The installation token: the kept one until :data:`REFRESH_MARGIN` before its
        expiry, else a new one. Raises the ``GITHUB_APP_*`` errors."""
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._expires - REFRESH_MARGIN:
                self._token, self._expires = self._fetch(now)
                self.fetched += 1
            return self._token

    # --- talking to GitHub as the App -------------------------------------------------

    def _call(self, method: str, path: str, bearer: Secret) -> Answer:
        url = self.settings.api + path
        try:
            return request_json(
                method,
                url,
                transport=self.transport,
                headers=_API_HEADERS,
                token=bearer,
                payload={} if method == "POST" else None,
                allow_inward=True,  # the operator's own API host
            )
        except NoAnswer as exc:
            raise GitHubAppAuthFailed(
                f"no answer from {self.settings.api} for the App's installation token "
                f"({exc.kind}: {bearer.scrub(exc.reason)})",
                location=Location(field=APP_ID_ENV),
            ) from None

    def _refused(self, answer: Answer, doing: str, bearer: Secret) -> GitHubAppAuthFailed:
        said = bearer.scrub(_message(answer))
        return GitHubAppAuthFailed(
            f"GitHub refused the App (id {self.settings.app_id}) {doing}: {answer.status} "
            f"{said!r}{_clock_hint(said)}; check that the private key is the App's own and "
            "has not been revoked",
            location=Location(field=APP_ID_ENV),
        )

    def installation_id(self, bearer: Secret) -> int:
        if self._installation is not None:
            return self._installation
        org = self.organisation
        if org is not None:
            answer = self._call("GET", f"/orgs/{org}/installation", bearer)
            if answer.status == 404:
                raise GitHubAppInstallationMissing(
                    f"the App (id {self.settings.app_id}) is not installed on {org}: install "
                    f"it there, or set {INSTALLATION_ENV}",
                    location=Location(field=INSTALLATION_ENV),
                )
            if not answer.ok:
                raise self._refused(answer, f"looking up its installation on {org}", bearer)
            found = _installation_of(answer)
        else:
            answer = self._call("GET", "/app/installations?per_page=100", bearer)
            if not answer.ok:
                raise self._refused(answer, "listing its installations", bearer)
            found = _only_installation(answer, self.settings.app_id)
        self._installation = found
        return found

    def _fetch(self, now: float) -> tuple[Secret, float]:
        bearer = make_jwt(self.settings.app_id, self.settings.key, now)
        installation = self.installation_id(bearer)
        answer = self._call("POST", f"/app/installations/{installation}/access_tokens", bearer)
        if answer.status == 404:
            raise GitHubAppInstallationMissing(
                f"installation {installation} of the App (id {self.settings.app_id}) does not "
                "exist: the App was uninstalled or the installation revoked; install it again "
                f"or correct {INSTALLATION_ENV}",
                location=Location(field=INSTALLATION_ENV),
            )
        if not answer.ok:
            raise self._refused(answer, f"an installation token for {installation}", bearer)
        try:
            data = answer.json()
            token = str(data["token"])
            expires = datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise GitHubAppAuthFailed(
                f"GitHub answered {answer.status} without a usable installation token",
                location=Location(field=APP_ID_ENV),
            ) from None
        if not is_token_text(token):
            raise GitHubAppAuthFailed(
                "GitHub's installation token is not a token", location=Location(field=APP_ID_ENV)
            )
        return Secret(token), expires.timestamp()


def _installation_of(answer: Answer) -> int:
    try:
        value = answer.json()["id"]
    except (ValueError, KeyError, TypeError):
        value = None
    if not isinstance(value, int) or isinstance(value, bool):
        raise GitHubAppAuthFailed("GitHub's installation answer has no id")
    return value


def _only_installation(answer: Answer, app_id: str) -> int:
    try:
        items = answer.json()
        found = [(i["id"], str(i.get("account", {}).get("login", "?"))) for i in items]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise GitHubAppAuthFailed("GitHub's list of installations is unreadable") from None
    if len(found) == 1 and isinstance(found[0][0], int):
        return found[0][0]
    where = Location(field=INSTALLATION_ENV)
    if not found:
        raise GitHubAppInstallationMissing(
            f"the App (id {app_id}) has no installation: install it on the organisation",
            location=where,
        )
    names = ", ".join(f"{login} ({i})" for i, login in found[:10])
    raise GitHubAppInstallationMissing(
        f"the App (id {app_id}) is installed on several accounts ({names}) and the registry "
        f"names no one organisation: set {INSTALLATION_ENV}",
        location=where,
    )


# --- the one way a command gets the GitHub credential ------------------------------------

_APPS: dict[tuple[str, int | None, str, str | None], GitHubApp] = {}
_APPS_LOCK = threading.Lock()


@dataclass(frozen=True)
class GitHubCredential:
    """How a command authenticates to GitHub: ``source`` says which way; :meth:`secret`
    gives the current token (for the App, fetched or refreshed as needed)."""

    source: Literal["app", "token"]
    _get: Callable[[], Secret] = field(repr=False)

    def secret(self) -> Secret:
        return self._get()


def github_credential(
    environ: Mapping[str, str] | None = None,
    *,
    organisation: str | None = None,
    token_env: str = "GITHUB_TOKEN",
) -> GitHubCredential | None:
    """The GitHub credential for this run: the App's installation token when
    ``PETROVA_GITHUB_APP_ID`` is set (``GITHUB_TOKEN`` is then not used), else the token
    in ``token_env`` (or ``GH_TOKEN``), else ``None``.

    The App's settings are checked here (:class:`GitHubAppConfigInvalid`); the token is
    fetched on the first :meth:`GitHubCredential.secret` call, which raises
    :class:`GitHubAppAuthFailed` or :class:`GitHubAppInstallationMissing`. One App object
    per process and settings, so the probes and the notifier share one token.
    """
    env = os.environ if environ is None else environ
    settings = app_settings(env)
    if settings is not None:
        key = (settings.app_id, settings.installation_id, settings.api, organisation)
        with _APPS_LOCK:
            app = _APPS.get(key)
            if app is None or app.settings.key is not settings.key:
                app = _APPS[key] = GitHubApp(settings, organisation=organisation)
        return GitHubCredential("app", app.token)
    for name in (token_env, "GH_TOKEN"):
        value = env.get(name, "").strip()
        if is_token_text(value):
            return GitHubCredential("token", _fixed(value))
    return None


def _fixed(value: str) -> Callable[[], Secret]:
    secret = Secret(value)
    return lambda: secret


def forget_apps() -> None:
    """Drop the kept App tokens (tests; a long-lived process that rotates the key)."""
    with _APPS_LOCK:
        _APPS.clear()


class CredentialEnviron(Mapping[str, str]):
    """``environ`` with the token variables (``names``) answered by the credential, read
    afresh at each lookup (so a refreshed App token is what the next reader sees).

    A credential that cannot give a token makes those variables absent; the first error
    is kept in :attr:`failure` for the caller to report once.
    """

    def __init__(
        self, environ: Mapping[str, str], credential: GitHubCredential, names: Iterable[str]
    ) -> None:
        self._base = environ
        self._credential = credential
        self._names = frozenset(names)
        self.failure: Exception | None = None

    def _current(self) -> str | None:
        if self.failure is not None:
            return None  # asked once and refused: not again for every cell
        try:
            return self._credential.secret().reveal()
        except (GitHubAppAuthFailed, GitHubAppInstallationMissing) as exc:
            self.failure = self.failure or exc
            return None

    def __getitem__(self, name: str) -> str:
        if name in self._names:
            value = self._current()
            if value is None:
                raise KeyError(name)
            return value
        return self._base[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._base
        yield from (n for n in sorted(self._names) if n not in self._base)

    def __len__(self) -> int:
        return len(set(self._base) | self._names)
