"""Scrapy settings for the XHS crawler: every knob of the project and its default, once.

Every project knob is also an environment variable of the same name (``XHS_BASE_URL``,
``MONGO_URI``, ``ANTIBOT_COOLDOWN`` …), applied by the one loop at the end of this module;
``-s NAME=value`` on the command line wins over both. A *project knob* is a scalar
(str, int, float, bool) upper-case name declared here that Scrapy itself does not
declare, plus ``IMAGES_STORE`` (declared by Scrapy without a value). Scrapy's own
settings are changed with ``-s`` (or Scrapy's ``SCRAPY_``-prefixed variables).

A value from the environment keeps its string form: components read it with
``settings.getint("NAME")`` / ``getfloat`` / ``getbool`` / ``get`` and never repeat the
default. ``crawler/validation.py`` checks every knob once at the start of a crawl.
Derived settings (scrapy-redis, FILES_STORE, the Chromium path) are set by
``crawler/addons.py``.

Add a knob with its default and a one-line comment in the right section, ABOVE the
environment loop at the end.
"""

from __future__ import annotations

import os

from scrapy.settings import default_settings as _scrapy_defaults

BOT_NAME = "xhs"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# --- Site, store and enrichment basics (the README table) -----------------------------
XHS_BASE_URL = "https://www.xiaohongshu.com"
XHS_COOKIES = ""
MONGO_URI = ""  # empty: embedded MongoDB-wire server under ./data/mongo
MONGO_DATABASE = "xhs"
MONGO_DATA_DIR = "data/mongo"  # the embedded server's WiredTiger files
MONGO_SPOOL_PATH = "data/spool/notes.jsonl"  # notes wait here while MongoDB is down
MONGO_BATCH_SIZE = 100  # notes per bulk_write
MONGO_FLUSH_INTERVAL = 2.0  # seconds a note may wait in a batch
GEMINI_API_KEYS = ""
GEMINI_API_KEY = ""
GEMINI_MODELS = "gemini-2.5-flash-lite,gemini-2.5-flash,gemini-3-flash-preview"
GEMINI_BASE_URL = ""
ENRICH_BACKEND = "auto"  # auto | gemini | local | off
IMAGES_STORE = "data/images"
REDIS_URL = ""
# Extra allowed image hosts (comma-separated); the XHS CDN hosts are always allowed.
XHS_IMAGE_HOSTS = ""
# Share-link hosts (host or host:port, comma-separated): a pasted link there is followed
# once to the note URL it redirects to (the sandbox's short-link host in a sandbox crawl).
XHS_SHORT_LINK_HOSTS = "xhslink.com"
CHROMIUM_PATH = ""
# Where original-quality images are tried first; `{token}` is the image token.
XHS_IMAGE_ORIGIN_TEMPLATES = (
    "https://sns-img-bd.xhscdn.com/{token},https://ci.xiaohongshu.com/{token}"
)
# --- Enrichment (pipelines/enrichment/) ------------------------------------------------
ENRICH_CONCURRENCY = 4  # notes enriched at once (own semaphore)
# Images per Gemini request. 9 keeps XHS's common 3x3 grid in ONE request (daily quotas
# count requests); bigger notes (up to 18 images) are split evenly, and a truncated
# answer is retried with the batch halved.
ENRICH_MAX_IMAGES_PER_REQUEST = 9
ENRICH_PROMPT = ""  # template file; empty = pipelines/prompts/note_zh.v2.txt
ENRICH_THINKING = False
ENRICH_RETRY_AFTER = 3600  # seconds before a retryable failure is due again
ENRICH_MAX_ATTEMPTS = 5
# Requests one note may spend in one attempt (batches, halved batches, the re-encoded
# retry); past it the note fails with reason `request_budget` (retried later).
ENRICH_MAX_REQUESTS_PER_NOTE = 3
# Characters of a note's text (title, desc, tags) sent to the model; a longer desc is cut.
ENRICH_MAX_TEXT_CHARS = 20_000
# Several notes per request when the day's known requests cannot cover the notes due
# (auto), or always/never; at most this many notes per packed request.
ENRICH_PACK = "auto"
ENRICH_MAX_NOTES_PER_REQUEST = 12
ENRICH_PACK_WAIT = 5.0  # seconds a note waits for its pack to fill
# `scrapy crawl enrich -a worker=NAME`: claims on backlog notes lapse after this long.
ENRICH_CLAIM_TTL = 300.0

# Client-side Gemini limits per model, also lowered by what 429s report.
GEMINI_LIMITS = ""  # e.g. "gemini-2.5-flash-lite:rpm=15,tpm=250000,rpd=20;gemini-2.5-flash:rpd=20"
GEMINI_MAX_IN_FLIGHT = 4  # requests in flight at once
GEMINI_TIMEOUT = 120  # seconds per request
GEMINI_MAX_RETRY_DELAY = 60  # cap on one per-minute wait, seconds
GEMINI_MAX_WAIT = 90  # longer than this for a slot: defer the note instead
GEMINI_SERVER_RETRIES = 2  # 5xx/timeouts before the next model
GEMINI_MAX_OUTPUT_TOKENS = 8192
# The client's retry tuning (pipelines/gemini/settings.py holds the same defaults for its
# Scrapy-free use from os.environ; declared here so that a crawl takes their env vars).
GEMINI_BACKOFF_BASE = 1.0  # first back-off after a 5xx, seconds (doubled each try)
GEMINI_BACKOFF_MAX = 30.0  # cap of one back-off, seconds
GEMINI_JITTER = 0.1  # waits are stretched by up to this share, never shortened
GEMINI_MAX_ATTEMPTS = 12  # requests one generate() call may send in total
GEMINI_SERVER_ERROR_DEFER = 600.0  # every model failed with 5xx: defer the note this long
GEMINI_TIMEOUT_RETRY_FACTOR = 2.0  # the one retry after a client timeout waits this much longer
GEMINI_UNKNOWN_RPM_SPACING = 0.05  # seconds between requests while a model's RPM is unknown
# --- Analyst web app (crawler/web) and exports (crawler/export) ------------------------
WEB_HOST = "127.0.0.1"  # another address needs WEB_TOKEN
WEB_PORT = 8080
WEB_TOKEN = ""  # required when WEB_HOST is not loopback: header, cookie or ?token=
WEB_PAGE_SIZE = 50  # notes per list page
EXPORT_BATCH_SIZE = 1000  # documents per cursor batch / Parquet row group
FEED_EXPORTERS = {"csv": "crawler.export.feed.FlatCsvItemExporter"}  # `-O notes.csv`: flat columns

# --- Hygiene --------------------------------------------------------------------------
ROBOTSTXT_OBEY = False  # the site's robots.txt forbids all crawlers; operators decide
REMOTE_CONTROL_ENABLED = False  # Scrapy 2.19's code-executing control server: off
TELNETCONSOLE_ENABLED = False
# A note page yields one item and a listing answer a few dozen requests, yet Scrapy
# starts CONCURRENT_ITEMS worker tasks for every response's output (100 by default:
# about a quarter of the crawl process's CPU per note page, measured in
# bench/crawl_throughput.py). Items of different responses still run concurrently.
CONCURRENT_ITEMS = 8
# Scrapy's check for `return value` in generator callbacks caches bound methods weakly,
# so it re-reads and re-parses the callback's source for every response (~6 % of the
# crawl's CPU). ruff's checks cover our callbacks instead.
WARN_ON_GENERATOR_RETURN_VALUE = False
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
DEFAULT_REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8",
}

# --- Politeness (the real site blocks after a few hundred fast requests) --------------
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 2.0
DOWNLOAD_DELAY_JITTER = 0.5  # ±50 % around DOWNLOAD_DELAY
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 2.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
DOWNLOAD_TIMEOUT = 30
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408]
HTTPERROR_ALLOWED_CODES = [461, 471]
REDIRECT_ENABLED = True

# A note is fetched once whatever listing token its URL carries (see crawler/fingerprint.py).
REQUEST_FINGERPRINTER_CLASS = "crawler.fingerprint.NoteFingerprinter"

# --- Anti-bot reactions (crawler/middlewares.py) ---------------------------------------
ANTIBOT_COOLDOWN = 60.0  # seconds without requests after a captcha (HTTP 461/471)
ANTIBOT_MAX_RETRIES = 5  # captcha retries per request
DISCOVERY_WAIT = 5.0  # seconds to wait for a listing page's next API answer
DISCOVERY_IDLE_ROUNDS = 3
DISCOVERY_MAX_RELOADS = 8  # per listing: captchas, rotated signatures, 5xx

# --- Comments (crawler/comments/; `-a comments=N|all -a replies=M|all`) ------------------
COMMENTS_MAX_SECONDS = 300.0  # per note: reading its thread in the browser stops after this
COMMENTS_MAX_PAGES = 500  # per note: comment API answers read (comment pages + reply pages)
COMMENTS_WAIT = 5.0  # seconds to wait for the page's next comment answer after an action
# seconds: a thread whose note shows the same bucketed count ("1.2万", "100+": it may hide
# new comments) is not read again within this long after a complete read (0: always read)
COMMENTS_REFRESH = 86400.0
COMMENTS_MAX_RELOADS = 8  # per note: page loads again after captchas, rotations, stalls
PRIVACY = "off"  # off | pseudonymize: commenters' ids as keyed hashes, no nicknames/avatars
PRIVACY_KEY = ""  # secret key of those hashes (required with PRIVACY=pseudonymize)

# --- Creator profiles (crawler/spiders/profiles.py; `-a users=… -a authors=1`) -----------
USER_REFRESH = 86400.0  # seconds: an author's profile stored more recently is not fetched again

# --- Async stack ----------------------------------------------------------------------
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"

# --- Browser discovery (keyword search and user profiles) -----------------------------
DOWNLOAD_HANDLERS = {
    # Both schemes: the sandbox and local copies are plain http.
    "http": "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler",
    "https": "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler",
}
PLAYWRIGHT_BROWSER_TYPE = "chromium"
PLAYWRIGHT_LAUNCH_OPTIONS = {
    "headless": True,
    "args": [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ],
}
# CHROMIUM_PATH (or Debian's `chromium` on PATH) becomes executable_path in crawler/addons.py.
PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT = 30_000
PLAYWRIGHT_MAX_PAGES_PER_CONTEXT = 4

# --- Components -----------------------------------------------------------------------
DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.AntiBotMiddleware": 560,
    # After Scrapy's CookiesMiddleware (700), which rewrites the Cookie header.
    "crawler.middlewares.SessionCookiesMiddleware": 710,
}
ITEM_PIPELINES = {
    "pipelines.incremental.IncrementalPipeline": 100,
    "pipelines.media.NoteMediaPipeline": 200,
    "pipelines.enrichment.EnrichmentPipeline": 300,
    "pipelines.storage.MongoStoragePipeline": 400,
}
EXTENSIONS = {
    "scrapy.extensions.logstats.LogStats": None,
    "crawler.extensions.Progress": 0,  # the periodic line: target, %, rate, ETA, stages
    "crawler.extensions.CollectorTuning": 10,
    # Run components (crawler/extensions/): the record first, then who connects to its
    # run_starting / run_finished signals. Lease, report and distributed idle switch
    # themselves off (NotConfigured) when their settings say so.
    "crawler.extensions.RunRecord": 500,
    "crawler.extensions.RunLease": 510,
    "crawler.extensions.RunReport": 520,
    "crawler.extensions.RunSummary": 525,  # the human summary above Scrapy's stats dump
    "crawler.extensions.DistributedIdle": 530,
}
GC_GEN0_THRESHOLD = 10_000  # allocations between young-generation collections (0: Python's)
RUN_LEASE_ENABLED = True  # overlap guard: one run per spider + arguments at a time
RUN_LEASE_TTL = 600.0  # seconds; renewed while running, so a crashed run frees it
RUN_REPORT_DIR = "data/reports"  # HTML run report per run ("" to skip)
PROGRESS_INTERVAL = 30.0  # seconds between progress lines (the first comes 2 s after start)
XHS_MAX_PAGE_BYTES = 16 * 1024 * 1024  # larger note pages raise PageTooLarge

# --- Media (pipelines/media/) ---------------------------------------------------------
MEDIA_MAX_BYTES = 20 * 1024 * 1024  # per image; bigger bodies are cut off by the downloader
MEDIA_MAX_VIDEO_BYTES = 200 * 1024 * 1024
MEDIA_DOWNLOAD_TIMEOUT = 30  # seconds per image/video download; its own knob, not DOWNLOAD_TIMEOUT
XHS_DOWNLOAD_VIDEOS = False  # opt-in: store the first allowed video candidate
MEDIA_MODEL_LONG_SIDE = 1536  # long side (px) of the JPEG copy sent to the model
MEDIA_MAX_PIXELS = 64_000_000  # bigger images are refused before decoding (bomb guard)
MEDIA_MAX_REDIRECTS = 3  # redirect hops per candidate URL, each checked by the URL policy
MEDIA_MAX_IMAGES_PER_NOTE = 18  # pictures fetched per note (real notes: ≤ 18); rest skipped
MEDIA_DECODE_CONCURRENCY = 0  # images decoded at once (threads); 0: min(4, CPU count)

ADDONS = {"crawler.addons.XhsAddon": 0}
MEDIA_ALLOW_REDIRECTS = True
# Distributed mode (REDIS_URL set): workers of one run share keys under REDIS_RUN.
REDIS_RUN = "default"
DISTRIBUTED_IDLE_TIMEOUT = 30.0  # seconds an idle worker waits for more queued work
COMMANDS_MODULE = "crawler.commands"

# --- Storage and MongoDB (pipelines/storage, pipelines/mongo) -------------------------
MONGO_EMBEDDED_HOST = "127.0.0.1"  # where the embedded server listens
MONGO_EMBEDDED_PORT = 0  # 0: any free port
MONGO_EMBEDDED_WAIT = 15.0  # seconds to wait for another process's embedded server
MONGO_RETRY_TIMES = 3  # retries of a batch on transient errors, then the spool
MONGO_RETRY_BACKOFF = 0.5  # seconds before the first retry, doubled each retry
MONGO_RETRY_BACKOFF_MAX = 8.0  # cap of the retry delay (seconds)
# Keep >= 1000: pymongo re-checks a lost server at most every 500 ms.
MONGO_SERVER_SELECTION_TIMEOUT_MS = 5000
MONGO_SOCKET_TIMEOUT_MS = 60_000  # a hung server must not hang the crawl's close
MONGO_PROBE_INTERVAL = 10.0  # seconds between re-checks of a database that is down
MONGO_MAX_STRING_CHARS = 100_000  # longer scraped strings are truncated
CRAWL_RUN_ID = ""  # the run id stored with notes; empty: generated per run

# --- Environment (keep this last: it applies to every knob declared above) -------------
# Scrapy declares IMAGES_STORE without a value; here it is a project knob like the others.
_own_despite_scrapy = frozenset({"IMAGES_STORE"})
# Every project knob and its declared default (lower-case: not itself a Scrapy setting).
knob_defaults = {
    _name: _value
    for _name, _value in dict(globals()).items()
    if _name.isupper()
    and isinstance(_value, str | int | float | bool)
    and (_name in _own_despite_scrapy or not hasattr(_scrapy_defaults, _name))
}
for _name in knob_defaults:
    if _name in os.environ:  # set, even to "" (e.g. RUN_REPORT_DIR= skips the report)
        globals()[_name] = os.environ[_name]
del _name
