"""Render: a snapshot as JSON, a table, Markdown, or the self-contained fleet page."""
