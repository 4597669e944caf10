"""The earlier home of the model-source check; it now lives in `faceinsight.folders` beside the output-folder guard.
Kept for a release: the old names still import, with a warning."""

import warnings

from faceinsight.folders import check_model_source, looks_local  # noqa: F401

warnings.warn("faceinsight.hub.sources is deprecated; use faceinsight.folders", FutureWarning, stacklevel=2)
