"""Built-in probes (SPEC §10): observe each wired integration and feed the ledger.

Each integration's probe is data in the catalogue (``x-probe``): checks of a few built-in
kinds (:mod:`~petrova.probe.kinds`) and which outcome each failure means
(:mod:`~petrova.documents.probe_spec`). :mod:`~petrova.probe.plan` decides which cells to probe
and in what order, :mod:`~petrova.probe.run` runs them with bounded concurrency,
:mod:`~petrova.probe.http` applies the probes' policy to :mod:`petrova.net.http` (no
address off the public internet, one phrase for a failed connection, the token allowlist),
and
:mod:`~petrova.probe.github` speaks to GitHub's REST API with ETags and a rate budget.
"""
