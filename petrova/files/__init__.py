"""Files: the only code that touches the disk's sharp edges.

``disk`` (bounded reads, atomic writes, hashing), ``yaml_strict`` (the strict loader that
locates every error), ``yaml_fast`` (the fast path, used only where it provably agrees),
``lock`` (one writer at a time). Nothing here knows what a registry or a ledger is.
"""
