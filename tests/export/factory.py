"""Stored documents in the shapes of docs/schema.md (and issues 14/15 for comments and
users), made deterministically for the export and web tests and the export bench."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

BASE = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
TAGS = ["防晒", "护肤", "旅行", "美食", "穿搭"]
STATUSES = [("done", "gemini"), ("done", "local"), ("deferred", "none"), ("failed", "gemini")]


def note_id(i: int) -> str:
    return f"{i:024x}"


def note_doc(i: int, *, images: int = 3, image_paths: list[str] | None = None) -> dict[str, Any]:
    status, backend = STATUSES[i % len(STATUSES)]
    done = status == "done"
    published = BASE + timedelta(hours=i)
    paths = image_paths or [f"full/{i:04x}{k}.jpg" for k in range(images)]
    return {
        "_id": note_id(i),
        "url": f"https://www.xiaohongshu.com/explore/{note_id(i)}?xsec_token=t{i}",
        "xsec_token": f"t{i}",
        "title": f"笔记 {i} {TAGS[i % 5]}",
        "desc": f"正文 {i} #{TAGS[i % 5]}[话题]#" + (" =SUM(A1)" if i == 7 else ""),
        "type": "normal",
        "user": {"user_id": f"u{i % 40:03d}", "nickname": f"作者{i % 40}", "avatar": None},
        "tags": [TAGS[i % 5], TAGS[(i + 1) % 5]],
        "published_at": published,
        "updated_at": published,
        "ip_location": "上海",
        "interact": {
            "liked": i * 3,
            "collected": i,
            "comments": i % 17,
            "shares": None if i % 9 == 0 else i % 5,
            "raw": {"liked": str(i * 3)},
        },
        "images": [
            {
                "url": f"https://sns-webpic-qc.xhscdn.com/x/{i}_{k}",
                "original_urls": [],
                "width": 800,
                "height": 600,
                "live_photo": False,
                "path": p,
                "sha256": None,
                "mime": "image/jpeg",
                "bytes": 1000,
                "status": "ok",
                "error": None,
            }
            for k, p in enumerate(paths)
        ],
        "video": None,
        "source": "page",
        "fetched_at": published + timedelta(days=1),
        "found_via": "keyword:防晒" if i % 2 else "note_id",
        "enrichment": {
            "status": status,
            "backend": backend,
            "model": "gemini-2.5-flash-lite" if backend == "gemini" else None,
            "key_fp": "k:1a2b3c4d" if backend == "gemini" else None,
            "attempts": 1,
            "reason": None if done else "per_day_quota",
            "next_attempt_at": None if done else published + timedelta(days=2),
            "updated_at": published + timedelta(days=1),
            "result": {
                "summary": f"摘要 {i}",
                "key_points": [f"要点 {i}.1", f"要点 {i}.2"],
                "advice": [f"建议 {i}"],
                "topics": [TAGS[i % 5]],
                "language": "zh",
                "images": [
                    {"index": k, "ocr_text": f"图中文字 {i}-{k} SPF{i}", "caption": f"图 {k}"}
                    for k in range(len(paths))
                ],
            }
            if done
            else None,
            "usage": {"requests": 1, "prompt_tokens": 100, "output_tokens": 50},
        },
        "first_seen_at": published + timedelta(days=1),
        "last_crawled_at": published + timedelta(days=1, hours=i % 24),
        "crawl_run_id": "20261102T000000Z-abcdef",
        "last_change": "new",
        "content_hash": f"sha256:{i:064x}",
        "truncated_fields": [],
        "schema_version": 1,
    }


def note_stats_docs(i: int, points: int = 5) -> list[dict[str, Any]]:
    return [
        {
            "note_id": note_id(i),
            "crawled_at": BASE + timedelta(days=d),
            "crawl_run_id": f"run-{d}",
            "liked": 10 * d * d + i,
            "collected": 3 * d,
            "comments": d,
            "shares": None,
        }
        for d in range(points)
    ]


def comment_docs(i: int, n: int = 3) -> list[dict[str, Any]]:
    nid = note_id(i)
    out = []
    for k in range(n):
        cid = f"c{i}-{k}"
        out.append(
            {
                "_id": cid,
                "comment_id": cid,
                "note_id": nid,
                "root_comment_id": None if k == 0 else f"c{i}-0",
                "target_comment": None
                if k == 0
                else {"id": f"c{i}-0", "user": {"user_id": "u900"}},
                "user": {"user_id": f"u{900 + k}", "nickname": f"读者{k}", "avatar": None},
                "content": f"评论 {k}：请问在哪里买？" if k == 0 else f"回复 {k}",
                "like_count": 5 - k,
                "like_count_raw": str(5 - k),
                "created_at": BASE + timedelta(hours=i, minutes=k),
                "ip_location": "北京",
                "status": 0,
                "is_author": k == 2,
                "reply_count": n - 1 if k == 0 else 0,
                "at_users": [],
                "pictures": [],
                "first_seen_at": BASE + timedelta(days=1),
                "last_seen_at": BASE + timedelta(days=1),
            }
        )
    return out


def user_doc(u: int) -> dict[str, Any]:
    return {
        "_id": f"u{u:03d}",
        "user_id": f"u{u:03d}",
        "red_id": f"{100000 + u}",
        "nickname": f"作者{u}",
        "desc": "分享日常",
        "gender": "female",
        "ip_location": "上海",
        "avatar": None,
        "fans": 1000 + u * 10,
        "follows": 20,
        "likes_and_collects": 5000 + u,
        "fans_raw": str(1000 + u * 10),
        "tags": [{"kind": "location", "name": "上海", "icon": None}],
        "notes_seen": 3,
        "crawl_run_id": "run-3",
        "first_seen_at": BASE,
        "last_crawled_at": BASE + timedelta(days=3),
    }


def user_stats_docs(u: int, points: int = 4) -> list[dict[str, Any]]:
    return [
        {
            "user_id": f"u{u:03d}",
            "crawled_at": BASE + timedelta(days=d),
            "crawl_run_id": f"run-{d}",
            "fans": 1000 + u * 10 + 50 * d,
            "follows": 20,
            "likes_and_collects": 5000 + u + 100 * d,
            "notes_seen": 3,
        }
        for d in range(points)
    ]
