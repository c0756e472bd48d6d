"""Typed parse errors: each names what was wrong and carries a stats key in ``.reason``.

Callers count failures as ``xhs/parse_error/<reason>``, so a reason is a short
snake_case key that never contains data from the page. Messages are for humans and
may quote (truncated) page content, but never cookies or keys: the parser never sees
either.
"""

from __future__ import annotations

from typing import ClassVar


class ParseError(Exception):
    """Base of every parser failure: ``.reason`` is the stats key, ``str()`` the detail."""

    reason: ClassVar[str] = "parse_error"

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code  # the site's error code when the site gave one


class StateMissing(ParseError):
    """No ``window.__INITIAL_STATE__`` and no usable ``og:*`` fallback."""

    reason = "state_missing"


class EmptyPage(StateMissing):
    """The body is empty or only whitespace."""

    reason = "empty_page"


class BinaryContent(StateMissing):
    """The body is not text (an image, compressed bytes, random garbage)."""

    reason = "binary_content"


class StateMalformed(ParseError):
    """The state script is there but is not a parseable object literal."""

    reason = "state_malformed"

    def __init__(self, message: str, *, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position  # character offset inside the state text


class NoteNotFound(ParseError):
    """The state parsed but does not hold the requested note."""

    reason = "note_not_found"

    def __init__(self, message: str, *, note_id: str | None = None) -> None:
        super().__init__(message)
        self.note_id = note_id


class NoteGone(ParseError):
    """The note was deleted or is not viewable (-510000, -510001, 300031)."""

    reason = "note_gone"


class XsecTokenInvalid(ParseError):
    """The xsec_token is missing, wrong or expired (300017, redirect away from the note)."""

    reason = "xsec_invalid"


class LoginRequired(ParseError):
    """The site wants a (fresh) login: code -100 or a login page."""

    reason = "login_required"


class Captcha(ParseError):
    """The site answered with a captcha / verification page."""

    reason = "captcha"


class IpBlocked(ParseError):
    """Code 300012: the IP is blocked."""

    reason = "ip_blocked"


class AccountFlagged(ParseError):
    """Code 300011: the account is flagged."""

    reason = "account_flagged"


class SignatureRejected(ParseError):
    """Code -1 (HTTP 406): the API call's signature headers were rejected."""

    reason = "signature_rejected"


class ApiError(ParseError):
    """An API answer with a non-zero code this parser has no specific meaning for."""

    reason = "api_error"


class ResponseMalformed(ParseError):
    """An API answer that is not the JSON shape it should be."""

    reason = "response_malformed"


class PageTooLarge(ParseError):
    """The body is larger than the configured maximum page size."""

    reason = "page_too_large"

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


# --- comments and profiles: an entry that is skipped is recorded as one of these -------


class CommentMalformed(ParseError):
    """One comment entry is not the shape it should be (no usable id, wrong types)."""

    reason = "comment_malformed"


class CommentWrongNote(ParseError):
    """A comment entry names another note than the one being read."""

    reason = "comment_wrong_note"


class ReplyOrphan(ParseError):
    """A reply whose root is unknown or is not the thread it came with."""

    reason = "reply_orphan"


class CommentDuplicate(ParseError):
    """A comment id seen twice in one answer (the later entry is dropped)."""

    reason = "comment_duplicate"


class ProfileMissing(ParseError):
    """The state holds no (rendered) profile: no ``user.userPageData``, or ``undefined``
    where the profile's basic info or counts should be, or another user's profile."""

    reason = "profile_missing"


class ProfileMalformed(ParseError):
    """The profile data is there but has wrong types (e.g. ``basicInfo`` a list)."""

    reason = "profile_malformed"


class ProfileUnavailable(ParseError):
    """The site says the profile cannot be shown (its ``result`` failed, or banned)."""

    reason = "profile_unavailable"
