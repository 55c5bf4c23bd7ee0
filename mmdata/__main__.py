"""``python -m mmdata``: the ``mmdata`` command (the same typer app as the console script)."""

from __future__ import annotations

from mmdata.cli.main import main

if __name__ == "__main__":
    main()
