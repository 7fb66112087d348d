"""The fleet as a whole: read what the registry names, derive the snapshot, gate tiers.

``snapshot`` is the pipeline, top to bottom; ``gather`` reads each migrated repo's
contract and ledger; ``rollout`` counts green days per tier and holds the gate.
"""
