"""Comments and replies of notes, read in Chromium through the page's own JavaScript
(issue 14). One concern per module:

- :mod:`.settings`: :class:`CommentLimits` (``-a comments=N|all -a replies=M|all``) and
  :class:`CommentSettings` (``COMMENTS_*``, ``PRIVACY``, ``PRIVACY_KEY``);
- :mod:`.thread`: :class:`ThreadState`, the answers of one thread folded in (pure);
- :mod:`.browser`: :func:`read_thread`, the page actions (scroll, reply controls by
  text) and the anti-bot reactions;
- :mod:`.privacy`: :class:`Pseudonymizer` (``PRIVACY=pseudonymize``);
- :mod:`.reader`: :class:`ThreadReader`, the spider's side (which notes, the request,
  the note item with its thread).
"""

from crawler.comments.browser import ReadOutcome, read_thread
from crawler.comments.privacy import Pseudonymizer
from crawler.comments.reader import ThreadReader, thread_unchanged
from crawler.comments.settings import CommentLimits, CommentSettings
from crawler.comments.thread import Answer, ThreadState, Trouble

__all__ = [
    "Answer",
    "CommentLimits",
    "CommentSettings",
    "Pseudonymizer",
    "ReadOutcome",
    "ThreadReader",
    "ThreadState",
    "Trouble",
    "read_thread",
    "thread_unchanged",
]
