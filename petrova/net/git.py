"""Running the real ``git``: a clean environment, no prompts, a timeout, a token kept secret.

Every git command petrova runs (sync, the daily's state commit and push, pin's merged
check, bootstrap) goes through :class:`Git`. It keeps what the
operator's own git configuration provides (credential helpers, ``url.<base>.insteadOf``,
SSH settings, ``GIT_CONFIG_COUNT`` entries) and removes what would point git at another
repository (``GIT_DIR`` and friends, inherited from a hook or a shell). A command runs in
its own session, so it has no terminal to prompt on and a timeout kills it with all its
helpers (a hung git is :class:`~petrova.errors.GitTimeout`, ``GIT_TIMEOUT``, for callers
that cannot go on without it). An optional token reaches git through an inline credential
helper given in the environment, whose text names the variable and never holds the token:
nothing puts the token on a command line, in a file or in output. The helper is scoped to
the trusted GitHub hosts only (:mod:`petrova.net.trust`), and given only to a command for
a repository whose own URL is on one of them: a registry entry naming another host never
receives the token, whatever ``insteadOf`` rewriting the operator's git applies.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from petrova.errors import (
    GitFailed,
    GitHubAppAuthFailed,
    GitHubAppInstallationMissing,
    GitMissing,
    GitTimeout,
    Location,
    UsageError,
)
from petrova.net.http import Secret
from petrova.net.trust import is_trusted_github_host, trusted_github_hosts

#: Variables that would make git work on a repository other than the one petrova names.
_REPO_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_GRAFT_FILE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_INTERNAL_SUPER_PREFIX",
    "GIT_QUARANTINE_PATH",
    "GIT_TRACE_REDACT",
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DEFAULT_TIMEOUT = 300.0
TRUSTED_HOSTS_HINT = (
    "only github.com, GITHUB_API_URL's host and PETROVA_TRUSTED_GIT_HOSTS receive it"
)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False
    args: tuple[str, ...] = ()
    raw: bytes = b""  # stdout as bytes (a blob read with cat-file)
    timeout: float = DEFAULT_TIMEOUT

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def reason(self) -> str:
        """The last meaningful line git said, for a one-line warning."""
        if self.timed_out:
            return "timed out"
        lines = [
            line.strip()
            for line in self.stderr.splitlines()
            if line.strip() and not line.lower().startswith(("warning:", "hint:"))
        ]
        for line in lines:  # git's first fatal line says what happened; the rest advises
            if line.startswith(("fatal: ", "error: ")):
                return line.partition(": ")[2]
        return lines[-1] if lines else f"git exited with status {self.returncode}"

    def command(self) -> str:
        """``git <subcommand>`` for messages (never its arguments: they may be long)."""
        words = [a for a in self.args if not a.startswith("-")]
        return "git " + (words[0] if words else "")

    def check_timeout(self, where: str | None = None) -> Result:
        """``self``, or :class:`GitTimeout` when the command was killed at its timeout."""
        if self.timed_out:
            raise GitTimeout(
                f"{self.command()} did not finish within {self.timeout:g}s and was stopped "
                "(a hung remote, a lock held by another git, or a very large repository)",
                location=Location(where),
            )
        return self

    def check(self, where: str | None = None) -> Result:
        """``self`` when git succeeded; else :class:`GitTimeout` or :class:`GitFailed`."""
        self.check_timeout(where)
        if self.returncode != 0:
            raise GitFailed(f"{self.command()} failed: {self.reason()}", location=Location(where))
        return self


def check_token_env(name: str) -> str:
    """The variable's name, refused unless it is a plain shell variable name (it is
    written into the credential helper's shell text, so nothing else may pass)."""
    if not _ENV_NAME.fullmatch(name):
        raise UsageError(f"--token-env {name!r} is not an environment variable name")
    return name


def helper_text(token_env: str) -> str:
    """The inline credential helper: it names the variable, the shell reads the value."""
    return (
        '!f() { test "$1" = get || exit 0; echo username=x-access-token; '
        f'echo "password=${{{token_env}}}"; }}; f'
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL git and every helper it started (its process group, as it leads one)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


class Git:
    """How petrova runs git for one sync: environment, timeout, and the optional token."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        token_env: str | None = None,
        ceiling: Path | None = None,
        environ: Mapping[str, str] | None = None,
        credential: Callable[[], Secret] | None = None,
    ) -> None:
        source = dict(os.environ if environ is None else environ)
        self.timeout = timeout
        #: The GitHub App's token source (:mod:`petrova.net.github_app`): asked for the
        #: current token at each command that may receive it, which then finds it in
        #: ``token_env`` exactly as it would find ``GITHUB_TOKEN``.
        self._credential = credential if token_env else None
        if self._credential is not None and token_env:
            source.pop(token_env, None)  # the App's token replaces the variable's
        token = source.get(token_env, "") if token_env else ""
        # held to scrub output (every token the App gave this run); git reads it from the env
        self._secrets = [Secret(token)] if token else []
        self.token_env = token_env if token or self._credential is not None else None
        #: The first reason the App's token could not be had (the command then ran without).
        self.credential_failure: str | None = None
        self.trusted = trusted_github_hosts(source)
        self._source = source
        env = {k: v for k, v in source.items() if k not in _REPO_VARIABLES}
        env.update(
            {
                "GIT_TERMINAL_PROMPT": "0",
                # set and empty: git then asks no askpass program either
                "GIT_ASKPASS": "",
                "SSH_ASKPASS_REQUIRE": "never",
                "LC_ALL": "C",
                "LANGUAGE": "C",
            }
        )
        env.pop("SSH_ASKPASS", None)
        if ceiling is not None:
            env["GIT_CEILING_DIRECTORIES"] = str(ceiling)
        self.base_env = env

    def may_receive_token(self, url: str | None) -> bool:
        """Is ``url`` an HTTPS URL on a trusted GitHub host? (The only URLs whose
        commands are given the token at all.)"""
        if url is None:
            return False
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme != "https" or not parts.hostname:
            return False
        return is_trusted_github_host(parts.hostname, self._source, port=port or 443)

    def token_withheld(self, url: str | None) -> bool:
        """Was there a token that this URL's commands were not given (an untrusted host)?"""
        return self.token_env is not None and url is not None and not self.may_receive_token(url)

    def env_for(self, url: str | None) -> dict[str, str]:
        """The environment for a command that talks to ``url``: the token only for an
        HTTPS URL on a trusted GitHub host, as the one credential helper of each trusted
        host (so git answers no other host's request with it, even after an
        ``insteadOf`` rewrite, and no helper of the operator's is handed it to store)."""
        env = dict(self.base_env)
        if self.token_env is None or not self.may_receive_token(url):
            return env
        if self._credential is not None:
            try:
                current = self._credential().reveal()
            except (GitHubAppAuthFailed, GitHubAppInstallationMissing) as exc:
                self.credential_failure = self.credential_failure or exc.render()
                return env  # no token: git fails to authenticate, as without one
            if all(s.reveal() != current for s in self._secrets):
                self._secrets.append(Secret(current))
            env[self.token_env] = current
        try:
            count = int(env.get("GIT_CONFIG_COUNT", "0"))
        except ValueError:
            count = 0
        entries: list[tuple[str, str]] = []
        for host in self.trusted:
            key = f"credential.https://{host}.helper"
            # an empty value first clears the helpers configured for this host
            entries += [(key, ""), (key, helper_text(self.token_env))]
        for offset, (key, value) in enumerate(entries):
            env[f"GIT_CONFIG_KEY_{count + offset}"] = key
            env[f"GIT_CONFIG_VALUE_{count + offset}"] = value
        env["GIT_CONFIG_COUNT"] = str(count + len(entries))
        return env

    def scrub(self, text: str) -> str:
        """``text`` with the token (any the App gave this run) hidden, should git echo it."""
        for secret in self._secrets:
            text = secret.scrub(text)
        return text

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        url: str | None = None,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        """Run ``git ARGS``; a timeout kills the command and every helper it started.

        ``env`` adds variables (an identity for a commit); it cannot name the token.
        """
        full_env = self.env_for(url)
        if env:
            full_env.update({k: v for k, v in env.items() if k not in _REPO_VARIABLES})
        data = None if stdin is None else stdin.encode()  # before git starts: cannot fail after
        try:
            proc = subprocess.Popen(
                ["git", *args],
                cwd=cwd,
                env=full_env,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # no controlling terminal: nothing can prompt
            )
        except FileNotFoundError as exc:
            if exc.filename not in ("git", None):
                raise  # the folder to run in is gone: the caller's business
            raise GitMissing(
                "git is not installed (or not on PATH)",
                location=Location(None if cwd is None else str(cwd)),
            ) from None
        try:
            out, err = proc.communicate(data, timeout=self.timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            timed_out = True
        except BaseException:
            # Ctrl-C (KeyboardInterrupt) or any other exit while git runs: git is in its
            # own session, so the terminal's signal never reached it; unkilled it would go
            # on after petrova has gone, its Popen never waited for.
            _kill_group(proc)
            proc.communicate()
            raise
        for secret in self._secrets:
            out = out.replace(secret.reveal().encode(), b"***")
        return Result(
            proc.returncode,
            self.scrub(out.decode("utf-8", "replace")),
            self.scrub(err.decode("utf-8", "replace")),
            timed_out,
            tuple(args),
            out,
            self.timeout,
        )
