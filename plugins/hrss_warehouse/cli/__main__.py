"""`python -m hrss_warehouse.cli`: the `hrss` command without its console script."""

import sys

from hrss_warehouse.cli import main

sys.exit(main())
