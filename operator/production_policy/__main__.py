"""``python -m production_policy`` is the ``production-policy`` command."""

import sys

from production_policy.cli import main

sys.exit(main())
