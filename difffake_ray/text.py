"""Names shown to people: a file name is data, and must not write its own lines in a report."""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` with every character that is not printable (newlines, carriage returns, escape
    codes, the lone surrogates of a non-UTF-8 file name) written as its Python escape."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))


def utf8_safe(text: str) -> str:
    """``text`` as valid UTF-8: the bytes of a non-UTF-8 file name (which Python keeps as lone
    surrogates) written as ``\\xNN`` escapes; any other text unchanged."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
