"""``petrova sync``: the fleet's clones in the workspace, made and updated with real git."""
