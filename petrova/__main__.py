from __future__ import annotations

from petrova.cli import main

main()
