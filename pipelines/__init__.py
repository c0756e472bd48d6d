"""Item pipelines (media, enrichment, storage) and the Scrapy-free Gemini client."""
