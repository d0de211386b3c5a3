"""``python -m suanli.localcluster``: see :mod:`suanli.localcluster.cli`."""

import sys

from suanli.localcluster.cli import main

sys.exit(main())
