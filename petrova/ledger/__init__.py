"""The probe ledger (``state/<slug>.yaml``): observation, demote-only.

``rules`` (pure functions: hysteresis, promotion, staleness), ``store`` (the file: read,
check, seal, write) and ``record`` (``state record`` and ``state promote``: checked
batches under a lock).
"""
