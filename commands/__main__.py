import sys

from faceinsight.commands import main

sys.exit(main())
