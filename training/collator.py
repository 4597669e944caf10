"""The earlier home of the collator; it now lives beside the trainer in `faceinsight.training.trainer`, as TRL keeps
its collators in its trainer's module. Kept for a release: the old names still import, with a warning."""

import warnings

from faceinsight.training.trainer import PARSING_MAP_SOURCES, FaceInsightCollator, parsing_maps_from  # noqa: F401

warnings.warn(
    "faceinsight.training.collator is deprecated; use faceinsight.training.trainer", FutureWarning, stacklevel=2
)
