"""The earlier home of the command line; it now lives in `faceinsight.commands` (this module is kept for a
release: `python -m faceinsight.cli ...` and `from faceinsight.cli import main` still work, with a warning)."""

import sys
import warnings

from faceinsight.commands import describe_error, main  # noqa: F401

warnings.warn(
    "faceinsight.cli is deprecated; use faceinsight.commands (python -m faceinsight.commands)",
    FutureWarning,
    stacklevel=2,
)

if __name__ == "__main__":
    sys.exit(main())
