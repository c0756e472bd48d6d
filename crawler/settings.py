"""Scrapy settings for the XHS crawler.

Every user-facing knob is also an environment variable of the same name (``XHS_BASE_URL``,
``MONGO_URI``, ``GEMINI_API_KEYS`` …); ``-s NAME=value`` on the command line wins over
both. Components read these once, in ``from_crawler``, into typed dataclasses.
"""

from __future__ import annotations

import os
import shutil

BOT_NAME = "xhs"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# --- Configuration names users and tests rely on (env vars, also settings) -----------
_ENV_NAMES = (
    "XHS_BASE_URL",
    "XHS_COOKIES",
    "MONGO_URI",
    "MONGO_DATABASE",
    "MONGO_DATA_DIR",
    "MONGO_SPOOL_PATH",
    "MONGO_BATCH_SIZE",
    "MONGO_FLUSH_INTERVAL",
    "GEMINI_API_KEYS",
    "GEMINI_API_KEY",
    "GEMINI_MODELS",
    "GEMINI_BASE_URL",
    "ENRICH_BACKEND",
    "IMAGES_STORE",
    "REDIS_URL",
    "XHS_IMAGE_HOSTS",
    "CHROMIUM_PATH",
    "XHS_IMAGE_ORIGIN_TEMPLATES",
    "XHS_MAX_PAGE_BYTES",
    "MEDIA_MAX_BYTES",
    "XHS_DOWNLOAD_VIDEOS",
    "ENRICH_CONCURRENCY",
    "ENRICH_MAX_IMAGES_PER_REQUEST",
    "ENRICH_PROMPT",
    "ENRICH_THINKING",
    "ENRICH_RETRY_AFTER",
    "ENRICH_MAX_ATTEMPTS",
    "GEMINI_LIMITS",
    "GEMINI_MAX_IN_FLIGHT",
    "GEMINI_TIMEOUT",
    "GEMINI_MAX_RETRY_DELAY",
    "GEMINI_MAX_WAIT",
    "GEMINI_SERVER_RETRIES",
    "GEMINI_MAX_OUTPUT_TOKENS",
)
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
CHROMIUM_PATH = ""
# Where original-quality images are tried first; `{token}` is the image token.
XHS_IMAGE_ORIGIN_TEMPLATES = (
    "https://sns-img-bd.xhscdn.com/{token},https://ci.xiaohongshu.com/{token}"
)
# --- Enrichment (pipelines/enrichment.py) ----------------------------------------------
ENRICH_CONCURRENCY = 4  # notes enriched at once (own semaphore)
# Images per Gemini request. 9 keeps XHS's common 3x3 grid in ONE request (daily quotas
# count requests); bigger notes (up to 18 images) are split evenly, and a truncated
# answer is retried with the batch halved.
ENRICH_MAX_IMAGES_PER_REQUEST = 9
ENRICH_PROMPT = ""  # template file; empty = pipelines/prompts/note_zh.v1.txt
ENRICH_THINKING = False
ENRICH_RETRY_AFTER = 3600  # seconds before a retryable failure is due again
ENRICH_MAX_ATTEMPTS = 5

# Client-side Gemini limits per model, also lowered by what 429s report.
GEMINI_LIMITS = ""  # e.g. "gemini-2.5-flash-lite:rpm=15,tpm=250000,rpd=20;gemini-2.5-flash:rpd=20"
GEMINI_MAX_IN_FLIGHT = 4  # requests in flight at once
GEMINI_TIMEOUT = 120  # seconds per request
GEMINI_MAX_RETRY_DELAY = 60  # cap on one per-minute wait, seconds
GEMINI_MAX_WAIT = 90  # longer than this for a slot: defer the note instead
GEMINI_SERVER_RETRIES = 2  # 5xx/timeouts before the next model
GEMINI_MAX_OUTPUT_TOKENS = 8192
for _name in _ENV_NAMES:
    if os.environ.get(_name):
        globals()[_name] = os.environ[_name]

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
_chromium = CHROMIUM_PATH or shutil.which("chromium") or ""
if _chromium:
    # Debian's Chromium; without it Playwright's own browser is used where installed.
    PLAYWRIGHT_LAUNCH_OPTIONS["executable_path"] = _chromium
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
    "crawler.extensions.XhsLogStats": 0,
    "crawler.extensions.CollectorTuning": 10,
    "crawler.extensions.RunExtension": 500,
}
GC_GEN0_THRESHOLD = 10_000  # allocations between young-generation collections (0: Python's)
RUN_LEASE_ENABLED = True  # overlap guard: one run per spider + arguments at a time
RUN_LEASE_TTL = 600.0  # seconds; renewed while running, so a crashed run frees it
RUN_REPORT_DIR = "data/reports"  # HTML run report per run ("" to skip)
XHS_MAX_PAGE_BYTES = 16 * 1024 * 1024  # larger note pages raise PageTooLarge

# --- Media (pipelines/media.py) -------------------------------------------------------
MEDIA_MAX_BYTES = 20 * 1024 * 1024  # per image; bigger bodies are cut off by the downloader
MEDIA_MAX_VIDEO_BYTES = 200 * 1024 * 1024
MEDIA_DOWNLOAD_TIMEOUT = 30
XHS_DOWNLOAD_VIDEOS = False  # opt-in: store the first allowed video candidate

ADDONS = {"crawler.addons.XhsAddon": 0}
MEDIA_ALLOW_REDIRECTS = True
# Distributed mode (REDIS_URL set): workers of one run share keys under REDIS_RUN.
REDIS_RUN = "default"
DISTRIBUTED_IDLE_TIMEOUT = 30.0  # seconds an idle worker waits for more queued work
COMMANDS_MODULE = "crawler.commands"
