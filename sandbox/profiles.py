"""Creator profiles of the sandbox (issue 15): counts that grow from one day to the next.

Ground truth: ``Dataset.profile(user_id, day)`` -> ``ProfileSpec``. On day ``d``:
- ``fans = base + rate * (d - joined)`` and ``follows = base_follows + (d - joined) // 30``
  (``joined`` is the user's creation day), so fans rise every day;
- ``interaction`` ("获赞与收藏") is the sum of ``liked + collected`` of the user's live notes
  on that day (exact counts), so it rises with them, except on a day one of their notes is
  posted again (that note's counts start over, as in ``sandbox.dataset``);
- ``shown`` holds the strings the page writes: plain below 10,000, then ``"1.2万"``, and
  ``"10万+"`` for some users above 100,000 (``profile_count``).
The profile page's ``user.userPageData`` is built from it in ``sandbox.site.shapes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sandbox.dataset import (
    DAY,
    NoteUserSpec,
    _rng,
    _user,
    generate_note,
    user_note_indices,
)
from sandbox.vocabulary import IP_LOCATIONS

if TYPE_CHECKING:
    from sandbox.dataset import Dataset

_DESCS = ("记录生活，分享干货", "互联网打工人｜不定期更新", "一起变好呀～", "", "合作请私信",
          "学习中的小透明", "📍 上海 ｜ 日常分享")  # fmt: skip
_PROFESSIONS = ("学生", "算法工程师", "产品经理", "设计师", "摄影师", "自由职业")


@dataclass(frozen=True)
class ProfileSpec:
    """A creator as the profile page shows them on one day."""

    user: NoteUserSpec
    red_id: str
    desc: str
    gender: int  # 0 male, 1 female
    ip_location: str
    tags: tuple[tuple[str, str], ...]  # (name, tagType): info | location | profession
    follows: int
    fans: int
    interaction: int  # likes and collects of their notes
    shown: dict[str, str]  # follows / fans / interaction as the page writes them
    notes: int  # live notes in the dataset
    verify_type: int = 0  # 0 none, 1 personal, 2 official (``verifyInfo``)


def profile_count(n: int, plus: bool) -> str:
    """A profile count as shown: ``"182"``, ``"1.2万"``, or ``"10万+"`` (``plus`` users)."""
    if n < 10000:
        return str(n)
    if n >= 100_000 and plus:
        return "10万+"
    return f"{n / 10000:.1f}".rstrip("0").rstrip(".") + "万"


def profile_on(dataset: Dataset, user_index: int, day: int) -> ProfileSpec:
    seed = dataset.seed
    user = _user(seed, user_index)
    rng = _rng("profile", seed, user_index)
    joined = int(user.user_id[:8], 16) // DAY
    age = max(0, day - joined)
    base = int(rng.paretovariate(0.8) * 40)
    if rng.random() < 0.08:
        base = rng.randrange(20_000, 400_000)
    rate = max(1, base // 400)
    fans = base + rate * age
    follows = rng.randrange(0, 400) + age // 30
    owned = [
        i
        for i in user_note_indices(seed, user_index)
        if i < dataset.size and not dataset.is_deleted(i)
    ]
    notes = [generate_note(seed, i, day) for i in owned]
    interaction = sum(n.interact_exact["liked"] + n.interact_exact["collected"] for n in notes)
    plus = rng.random() < 0.5
    gender = rng.randrange(2)
    location = rng.choice(IP_LOCATIONS)
    tags = (
        (f"{rng.randrange(18, 40)}岁", "info"),
        (location, "location"),
        (rng.choice(_PROFESSIONS), "profession"),
    )
    return ProfileSpec(
        user=user,
        red_id=str(int(user.user_id[:8], 16) % 10**10),
        desc=rng.choice(_DESCS),
        gender=gender,
        ip_location=location,
        tags=tags[: rng.randint(1, 3)],
        follows=follows,
        fans=fans,
        interaction=interaction,
        shown={
            "follows": profile_count(follows, plus),
            "fans": profile_count(fans, plus),
            "interaction": profile_count(interaction, plus),
        },
        notes=len(notes),
        verify_type=(1 if rng.random() < 0.7 else 2) if rng.random() < 0.06 else 0,
    )
