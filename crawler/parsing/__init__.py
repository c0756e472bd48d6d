"""Pure parsing of Xiaohongshu pages and API answers (no Scrapy imports).

Entry points: ``notes.parse_note_page`` / ``notes.note_from_api_card`` (→ ``NoteItem``),
``listing.parse_listing`` / ``listing.refs_from_profile_state`` (→ ``ListingRef``),
``state.extract_initial_state``, ``signals.classify_response``, ``counts.parse_count``,
``images.original_candidates``. Every failure is a ``errors.ParseError`` subclass whose
``.reason`` is the stats key.
"""
