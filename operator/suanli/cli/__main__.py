"""``python -m suanli.cli``: the same as the ``kubectl-suanli`` console script."""

import sys

from suanli.cli.main import main

sys.exit(main())
