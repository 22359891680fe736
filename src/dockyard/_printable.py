"""Text made safe to print on a terminal: every control character shown as an escape.

Text from the server or from a run (names, messages, log lines, tracebacks) may hold
anything a flow printed or a client sent, terminal escape sequences included. What the CLI
and a worker print passes through :func:`printable`, so no stored text can retitle the
terminal, clear it, move the cursor or hide what follows.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 controls, DEL and C1 controls (a terminal reads U+009B as ESC [), the bidirectional
# overrides and isolates that can show text in another order than it has, and lone
# surrogates (which cannot even be written out as UTF-8). Newline and tab are kept where
# text spans lines.
_UNSAFE_IN_LINES = "\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(f"[{_UNSAFE_IN_LINES}]")
_UNSAFE_IN_ONE_LINE = re.compile(f"[\t\n{_UNSAFE_IN_LINES}]")


def printable(text: str, *, lines: bool = False) -> str:
    """Return ``text`` with every control character shown as an escape (``\\x1b``).

    Args:
        lines: keep newlines and tabs (a log line, a traceback); without it they are
            escaped too, for text that must stay on one line (a table cell).
    """
    if lines:
        text = text.replace("\r\n", "\n")
        return _UNSAFE.sub(_escape, text)
    return _UNSAFE_IN_ONE_LINE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
