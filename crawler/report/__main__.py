import sys

from crawler.report import main

sys.exit(main())
