"""``python -m crawler.report [RUN_ID] [--out DIR]`` (crawler/report/_cli.py)."""

import sys

from crawler.report import main

sys.exit(main())
