"""Scrapy commands of the project (``COMMANDS_MODULE``): ``crawl`` (crawl.py) replaces
Scrapy's own with config checks and exit statuses (exit_status.py)."""
