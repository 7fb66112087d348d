"""Documents: each file petrova reads, loaded into models and checked, with its schema.

The catalogue (``contracts/contract.schema.json``), the registry, a consumer's contract,
bootstrap answers, a snapshot read back, and the generated schemas and fixtures. A loader
returns a model or raises a :class:`petrova.errors.PetrovaError` naming the spot.
"""
