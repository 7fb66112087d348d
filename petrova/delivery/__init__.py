"""Delivery: sending a snapshot to the dashboards' ingest and checking the hop."""
