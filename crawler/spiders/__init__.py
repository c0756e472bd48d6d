"""The spiders (``SPIDER_MODULES``): ``xhs`` (xhs.py, with inputs, profiles and pages
beside it) and ``enrich`` (enrich.py, the stored backlog)."""
