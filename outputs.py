"""The earlier home of the output-folder guard; it now lives in `faceinsight.folders` beside the model-source check.
Kept for a release: the old names still import, with a warning."""

import warnings

from faceinsight.folders import LOCK, MARKER, OutputDirError, output_dir, owner  # noqa: F401

warnings.warn("faceinsight.outputs is deprecated; use faceinsight.folders", FutureWarning, stacklevel=2)
