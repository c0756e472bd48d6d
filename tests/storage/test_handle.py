"""pipelines/mongo/handle.py: one started client and database per crawler or per
process (against the real Mongo server), and the run id."""

from __future__ import annotations

import re

import pytest

from pipelines.mongo import close_databases, close_mongo, crawl_run_id, get_mongo, open_database
from tests.factories import mongo_settings, project_crawler


async def test_uri_handle_is_shared_per_crawler(mongo_uri, mongo_db_name):
    crawler = project_crawler({"MONGO_URI": mongo_uri, "MONGO_DATABASE": mongo_db_name})
    a = await get_mongo(crawler)
    b = await get_mongo(crawler)
    assert a is b and not a.embedded and a.uri_fingerprint == mongo_uri
    assert a.db.name == mongo_db_name
    await a.db.probe.insert_one({"x": 1})
    await close_mongo(crawler)
    with pytest.raises(RuntimeError):
        _ = a.db


async def test_open_database_is_shared_per_process(mongo_uri, mongo_db_name):
    settings = mongo_settings(uri=mongo_uri, database=mongo_db_name)
    client1, db1 = await open_database(settings)
    client2, _ = await open_database(settings)
    assert client1 is client2 and db1.name == mongo_db_name
    await close_databases()


def test_the_run_id_is_the_setting_else_made_once_per_crawler() -> None:
    assert crawl_run_id(project_crawler({"CRAWL_RUN_ID": "nightly-7"})) == "nightly-7"
    crawler = project_crawler({"CRAWL_RUN_ID": ""})
    made = crawl_run_id(crawler)
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", made), made
    assert crawl_run_id(crawler) == made  # storage and the run record share it
    assert crawl_run_id(project_crawler({"CRAWL_RUN_ID": ""})) != made
