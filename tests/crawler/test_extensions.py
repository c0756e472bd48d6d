"""crawler/extensions/: components switch themselves off (NotConfigured), the distributed
keep-alive, and the run record → lease → report sequence against the real Mongo server."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.utils.test import get_crawler

from crawler.core.names import CRAWL_RUNS, LEASES
from crawler.core.run_context import RunContext
from crawler.extensions import (
    EXIT_OK,
    EXIT_STORAGE_DOWN,
    DistributedIdle,
    RunLease,
    RunRecord,
    RunReport,
    lease_key,
)
from crawler.settings import knob_defaults
from pipelines.mongo import close_mongo


def crawler_with(**settings: object) -> Crawler:
    return get_crawler(Spider, {**knob_defaults, **settings})


@pytest.mark.parametrize(
    ("component", "settings", "why"),
    [
        (RunLease, {"RUN_LEASE_ENABLED": False}, "RUN_LEASE_ENABLED is off"),
        (RunLease, {"RUN_LEASE_ENABLED": "0"}, "RUN_LEASE_ENABLED is off"),
        (RunLease, {"REDIS_URL": "redis://127.0.0.1:6379"}, "distributed"),
        (RunReport, {"RUN_REPORT_DIR": ""}, "RUN_REPORT_DIR is empty"),
        (DistributedIdle, {"REDIS_URL": ""}, "REDIS_URL is unset"),
    ],
)
def test_a_component_that_is_off_raises_not_configured(
    component: type, settings: dict[str, object], why: str
) -> None:
    with pytest.raises(NotConfigured, match=why):
        component.from_crawler(crawler_with(**settings))


def test_components_are_on_when_their_settings_say_so(tmp_path: Path) -> None:
    assert RunLease.from_crawler(crawler_with()).ttl == knob_defaults["RUN_LEASE_TTL"]
    assert RunReport.from_crawler(crawler_with(RUN_REPORT_DIR=str(tmp_path))).directory == tmp_path
    idle = DistributedIdle.from_crawler(crawler_with(REDIS_URL="redis://127.0.0.1:6379"))
    assert idle.timeout == knob_defaults["DISTRIBUTED_IDLE_TIMEOUT"]


def test_an_idle_distributed_worker_waits_then_lets_go() -> None:
    now = [100.0]
    crawler = crawler_with(REDIS_URL="redis://x")
    idle = DistributedIdle(crawler, timeout=30, clock=lambda: now[0])
    with pytest.raises(DontCloseSpider):
        idle.spider_idle()
    now[0] += 20
    with pytest.raises(DontCloseSpider):
        idle.spider_idle()
    idle.request_scheduled()  # more work arrived: idleness starts again
    now[0] += 20
    with pytest.raises(DontCloseSpider):
        idle.spider_idle()
    now[0] += 31
    idle.spider_idle()  # idle long enough: the spider may close
    RunContext.of(crawler).stop_reason = "cookie_expired"
    idle.request_scheduled()
    idle.spider_idle()  # a stopping run is never kept alive


def test_lease_key_depends_on_spider_and_arguments() -> None:
    one, other = Spider("xhs"), Spider("xhs")
    one.xhs_args, other.xhs_args = {"keywords": "a"}, {"keywords": "b"}
    assert lease_key(one).startswith("run:xhs:") and lease_key(one) != lease_key(other)
    assert lease_key(Spider("enrich")) != lease_key(Spider("xhs"))


async def test_record_lease_and_report_in_order(
    mongo_uri: str, mongo_db_name: str, mongo_sync, tmp_path: Path
) -> None:
    crawler = crawler_with(
        MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name, RUN_REPORT_DIR=str(tmp_path)
    )
    crawler.stats.open_spider()
    # Held here as Scrapy's extension manager holds them (signals keep weak references).
    record, lease = RunRecord.from_crawler(crawler), RunLease.from_crawler(crawler)
    report = RunReport.from_crawler(crawler)
    spider = Spider("xhs")
    spider.xhs_args = {"note_ids": "x", "api_key": "AIza-secret"}
    try:
        await record.spider_opened(spider)
        run = mongo_sync[CRAWL_RUNS].find_one({"_id": record.run_id})
        assert run["status"] == "running" and run["args"]["api_key"] == "***"
        held = mongo_sync[LEASES].find_one({"_id": lease_key(spider)})
        assert held is not None and lease.name == lease_key(spider)

        crawler.stats.set_value("storage/spooled", 2)
        await record.spider_closed(spider, "finished")
    finally:
        lease.stop_renewing()
        await close_mongo(crawler)
    context = RunContext.of(crawler)
    assert context.exit_status == EXIT_STORAGE_DOWN != EXIT_OK
    run = mongo_sync[CRAWL_RUNS].find_one({"_id": record.run_id})
    assert run["status"] == "failed" and run["exit_status"] == EXIT_STORAGE_DOWN
    assert mongo_sync[LEASES].find_one({"_id": lease_key(spider)}) is None  # released
    assert list(report.directory.glob("*.html")), "no report after the final record"
