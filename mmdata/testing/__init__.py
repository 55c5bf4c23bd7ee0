"""Generated test data shipped in the library (like lhotse's dummies): tiny real media
(:mod:`mmdata.testing.media`), a user's messy folder with its ground truth
(:mod:`mmdata.testing.messy`), hostile shards, byte by byte (:mod:`mmdata.testing.hostile`), and
processes started as a shell starts them (:mod:`mmdata.testing.procs`).

Everything is a pure function of its arguments, so tests built on it are deterministic.
"""

from __future__ import annotations

from mmdata.testing.media import CLASS_NAMES, audio_bytes, image_bytes, make_class_folders, make_sample_folder, text_for
from mmdata.testing.messy import MessyFolder, Truth, make_messy_folder, truth_table

__all__ = ["CLASS_NAMES", "MessyFolder", "Truth", "audio_bytes", "image_bytes", "make_class_folders",
           "make_messy_folder", "make_sample_folder", "text_for", "truth_table"]
