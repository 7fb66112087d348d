"""Talking to other programs and machines: the one HTTP layer and the one git runner.

:mod:`~petrova.net.http` holds every rule for a request petrova sends (deadline, secret,
loopback, proxy, redirect, address and body-size rules); :mod:`~petrova.net.git` runs
every git command (timeout, cleaned environment, no prompts, the token's credential
helper scoped to trusted hosts). Callers above decide policy: retries, what a failure
means, what is recorded.
"""
