"""Migrate: bringing a consumer repo in (bootstrap, its answers) and pinning its contract."""
