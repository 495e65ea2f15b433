"""Patterns for text that mean the same to msgspec, which validates with Python's `re`, and to the
OpenAPI's readers, which use ECMA-262 regular expressions: the two disagree on `\\s` (Python counts the
information separators U+001C-U+001F and U+0085 as whitespace, ECMA-262 counts U+FEFF), so a name of
U+001E alone was refused here while the published schema allowed it. Both engines read these alike.
"""

from __future__ import annotations

WHITESPACE = r"\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# Somewhere a character that is not whitespace: a blank name or message is no name or message.
NOT_BLANK = rf"[^{WHITESPACE}]"
# The characters of a URL as sent (RFC 3986; anything else is percent-encoded): printable ASCII.
URL_CHARACTER = "[!-~]"
URL_CHARACTER_BUT_AT = "[!-?A-~]"  # no `@`: no credentials in the URL
