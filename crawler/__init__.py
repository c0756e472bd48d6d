"""Scrapy side of the XHS crawler: settings, items, parsing, spiders, middlewares."""
