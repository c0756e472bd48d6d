"""MongoDB for the crawler: settings, connection, the embedded server, the quota state
store, the run lease and the escaping of outside field names.

One concern per module:

- :mod:`.settings`: :class:`MongoSettings` (read once from the Scrapy settings,
  validated: :class:`MongoSettingsError`) and :func:`mask_uri`;
- :mod:`.handle`: :class:`MongoHandle`, :func:`get_mongo` (per crawler, kept in the run
  context), :func:`open_database` / :func:`close_databases` (per process),
  :func:`crawl_run_id`;
- :mod:`.embedded`: the embedded secantus server (start, join via
  ``<data dir>/embedded.json``, take over, ``python -m pipelines.mongo serve``);
- :mod:`.quota`: :class:`MongoQuotaStateStore` and the shared day counts
  :class:`MongoQuotaLedger` (collection ``gemini_quota``);
- :mod:`.leases`: :func:`acquire_lease`, :func:`renew_lease`, :func:`release_lease`,
  :func:`take_over_dead_lease` (a holder dead on this host: :func:`holder_dead`),
  :func:`this_process` (the holder fields);
- :mod:`.claims`: claims on notes before a model request is spent (``claim``, ``renew``,
  ``release``, ``held_by_others``; :class:`NoteClaims` for one run);
- :mod:`.keys`: the one escaping scheme for outside field names (full-width ``＄``/``．``);
- :mod:`.errors`: transient-error classification and stats-key names of errors.
"""

from crawler.core.timeutil import Clock, utcnow
from pipelines.mongo.claims import NoteClaims
from pipelines.mongo.embedded import (
    EMBEDDED_JSON,
    EMBEDDED_LOCK,
    EmbeddedUnavailable,
    pid_alive,
    read_embedded_info,
    stop_server,
)
from pipelines.mongo.errors import error_reason, is_transient, snake_case
from pipelines.mongo.handle import (
    MongoHandle,
    close_databases,
    close_mongo,
    crawl_run_id,
    get_mongo,
    open_database,
)
from pipelines.mongo.keys import escape_key, escape_keys, unescape_key, unescape_keys
from pipelines.mongo.leases import (
    acquire_lease,
    holder_dead,
    release_lease,
    renew_lease,
    take_over_dead_lease,
    this_process,
)
from pipelines.mongo.quota import MongoQuotaLedger, MongoQuotaStateStore
from pipelines.mongo.settings import MongoSettings, MongoSettingsError, mask_uri

__all__ = [
    "EMBEDDED_JSON",
    "EMBEDDED_LOCK",
    "Clock",
    "EmbeddedUnavailable",
    "MongoHandle",
    "MongoQuotaLedger",
    "MongoQuotaStateStore",
    "MongoSettings",
    "MongoSettingsError",
    "NoteClaims",
    "acquire_lease",
    "close_databases",
    "close_mongo",
    "crawl_run_id",
    "error_reason",
    "escape_key",
    "escape_keys",
    "get_mongo",
    "holder_dead",
    "is_transient",
    "mask_uri",
    "open_database",
    "pid_alive",
    "read_embedded_info",
    "release_lease",
    "renew_lease",
    "snake_case",
    "stop_server",
    "take_over_dead_lease",
    "this_process",
    "unescape_key",
    "unescape_keys",
    "utcnow",
]
