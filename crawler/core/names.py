"""MongoDB collection names: written once, imported by every reader and writer."""

from __future__ import annotations

NOTES = "notes"
NOTE_STATS = "note_stats"
ENRICH_CACHE = "enrich_cache"
ENRICH_CLAIMS = "enrich_claims"  # who may spend requests on a note now (pipelines/mongo/claims.py)
CRAWL_RUNS = "crawl_runs"
GEMINI_QUOTA = "gemini_quota"
LEASES = "leases"
COMMENTS = "comments"
USERS = "users"
USER_STATS = "user_stats"
