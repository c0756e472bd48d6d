"""The shared core: what the spiders, the pipelines and the tools all speak.

Nothing here imports Scrapy, pymongo or any other project module outside
``crawler.core``: it is the bottom layer of the dependency rule in
``docs/architecture.md``.

- :mod:`crawler.core.items`: the item dataclasses (notes, and their parts).
- :mod:`crawler.core.enrichment_state`: the typed enrichment state with its rank,
  due-ness, stored form and the Mongo filters that depend on it.
- :mod:`crawler.core.names`: collection names.
- :mod:`crawler.core.timeutil`: UTC time helpers (millisecond precision, as BSON keeps).
- :mod:`crawler.core.text`: the one text-cleaning rule (lone surrogates → U+FFFD).
- :mod:`crawler.core.run_context`: the typed facts of one run (id, stop reason, exit
  status, store handle).
- :mod:`crawler.core.antibot_pause`: the crawl's one anti-bot pause (engine requests
  and browser comment pages alike).
"""
