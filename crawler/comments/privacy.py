"""``PRIVACY=pseudonymize``: commenters as keyed hashes, without nicknames or avatars.

Data minimisation for research use: a study of what readers say needs to tell
commenters apart, not to know who they are. Every user a comment names (its author, the
author of the comment it answers, the users it ``@``-mentions) becomes
``user_id = "p:" + HMAC-SHA256(PRIVACY_KEY, user_id)[:24]`` with no nickname and no
avatar, and an ``@nickname`` mention in the text becomes ``@p:…`` of that user. The same
key gives the same pseudonym in every crawl, so threads and "most active commenters"
still add up; without the key a pseudonym cannot be traced back. The key is a secret:
it is never logged or stored. Applied in the spider, before any pipeline, feed or log
sees a comment. The note's own author (``notes.user``) is not a commenter and is kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

from crawler.core.items import CommentItem, CommentTarget, NoteUser

PREFIX = "p:"


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("Pseudonymizer needs a key")
        self._key = key

    def __repr__(self) -> str:  # the key stays out of any log line
        return "Pseudonymizer(<key>)"

    def user_id(self, user_id: str) -> str:
        digest = hmac.new(self._key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()
        return PREFIX + digest[:24]

    def user(self, user: NoteUser | None) -> NoteUser | None:
        if user is None:
            return None
        return NoteUser(user_id=self.user_id(user.user_id), nickname=None, avatar=None)

    def comment(self, comment: CommentItem) -> CommentItem:
        content = comment.content
        for mention in comment.at_users:
            if mention.nickname:
                content = content.replace(
                    f"@{mention.nickname}", f"@{self.user_id(mention.user_id)}"
                )
        target = comment.target_comment
        return dataclasses.replace(
            comment,
            user=self.user(comment.user),
            content=content,
            at_users=[u for u in map(self.user, comment.at_users) if u is not None],
            target_comment=(
                None
                if target is None
                else CommentTarget(comment_id=target.comment_id, user=self.user(target.user))
            ),
        )
