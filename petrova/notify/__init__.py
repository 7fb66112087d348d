"""Telling the humans (SPEC §13): issues, the tracking issue, chat and the pin PR."""
