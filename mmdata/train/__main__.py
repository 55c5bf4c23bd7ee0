"""``python -m mmdata.train DATA [options]`` / ``torchrun --nproc_per_node 2 -m mmdata.train DATA ...``:
the same options as ``mmdata train``."""

from __future__ import annotations

import sys

from mmdata.cli.main import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
