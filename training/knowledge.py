"""The earlier home of the knowledge derivation; it now lives beside the modules that use it, in
`faceinsight.modeling.knowledge_faceinsight` (`derive_knowledge`, `held_out_rules`, `knowledge_summary`), and the
training run writes it into the config with `write_knowledge` there too. Kept for a release:
the old names still import, with a warning."""

import warnings

from faceinsight.modeling.knowledge_faceinsight import derive_knowledge, held_out_rules  # noqa: F401
from faceinsight.modeling.knowledge_faceinsight import knowledge_summary as summary_text  # noqa: F401

warnings.warn(
    "faceinsight.training.knowledge is deprecated; use faceinsight.modeling.knowledge_faceinsight",
    FutureWarning,
    stacklevel=2,
)
