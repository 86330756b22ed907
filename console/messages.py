"""Sentences kept for a later reader, and rendered in the reader's language.

Validation runs in the language of whoever validates, but its problems are read later, by
others, in theirs. So what is kept is a ``Message``: the sentence's template untranslated
(its msgid, as the catalogue knows it) and its parameters; whoever shows it renders it in
the active language, ``gettext(template) % params``::

    message = Message.of(ERR_EMAIL, value="bob-at-example")
    message.template, message.params_json()   # what is stored
    str(message)                              # in the active language, now

A parameter may itself be a ``Message`` (a word of the console, such as a kind of row, or
another sentence) or a ``FileSize``: those are rendered in the reader's language too.
Text that comes from elsewhere (a library's words, already translated) is kept as it is,
with ``Message.verbatim``, and never translated again.

A template is one of the console's message constants (``gettext_lazy``, so that
``makemessages`` finds it); its msgid is what the constant says with translation turned
off. A plural constant (``ngettext_lazy``) cannot be kept this way: a sentence stored for
later says its numbers without choosing between singular and plural words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.template.defaultfilters import filesizeformat
from django.utils import translation
from django.utils.functional import Promise

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class FileSize:
    """A number of bytes, written for the reader (``64.0 KB``, ``64,0 KB``)."""

    size: int

    def __str__(self) -> str:
        return str(filesizeformat(self.size))


@dataclass(frozen=True, slots=True)
class Message:
    """A sentence kept untranslated: ``template`` (its msgid) and ``params``, or words kept
    as they are (``is_verbatim``: ``template`` is the text itself)."""

    template: str
    params: Mapping[str, Any] = field(default_factory=dict)
    is_verbatim: bool = False

    @classmethod
    def of(cls, template: Message | Promise | str, /, **params: Any) -> Message:
        """``template`` (a message constant, or a msgid) with ``params``: plain values,
        ``Message`` or ``FileSize``."""
        if isinstance(template, Message):
            return cls(template.template, {**template.params, **params}, template.is_verbatim)
        if isinstance(template, Promise):
            return cls(_msgid(template), params)
        return cls(str(template), params)

    @classmethod
    def verbatim(cls, text: str) -> Message:
        """Words from elsewhere, already in some language: shown as they are."""
        return cls(str(text), is_verbatim=True)

    def __str__(self) -> str:
        """The sentence in the active language."""
        if self.is_verbatim:
            return self.template
        return message_render(self.template, self.params)

    def english(self) -> str:
        """The sentence in the console's own language (its msgids' English)."""
        with translation.override(None):
            return str(self)

    def params_json(self) -> dict[str, Any]:
        """The parameters as JSON values (``message_from_json`` reads them back)."""
        return {name: _value_json(value) for name, value in self.params.items()}


# The msgid of each message constant met, by identity (the constant is kept with it, so
# its id cannot be reused); constants are few and live as long as the process.
_MSGIDS: dict[int, tuple[Promise, str]] = {}
_MSGIDS_MAX = 10_000


def _msgid(template: Promise) -> str:
    """What ``template`` says with translation turned off: its msgid."""
    found = _MSGIDS.get(id(template))
    if found is None:
        with translation.override(None):
            found = (template, str(template))
        if not found[1]:
            raise ValueError(f"{template!r} has no msgid of its own (a plural message?)")
        if len(_MSGIDS) < _MSGIDS_MAX:
            _MSGIDS[id(template)] = found
    return found[1]


def _value_json(value: Any) -> Any:
    if isinstance(value, Message):
        if value.is_verbatim:
            return value.template
        return {"template": value.template, "params": value.params_json()}
    if isinstance(value, FileSize):
        return {"file_size": value.size}
    if isinstance(value, Scalar):
        return value
    return str(value)


def _value_read(value: Any) -> Any:
    if isinstance(value, Mapping):
        if "file_size" in value:
            return FileSize(int(value["file_size"]))
        return message_from_json(value.get("template", ""), value.get("params"))
    return value


def as_message(value: Any) -> Message:
    """What a producer of problems gave, kept for a later reader: a ``Message`` as it is;
    a message constant without parameters; whatever carries one as ``untranslated`` (a
    ``ContractError``, a ``FieldProblem``, a ``FileReadError``); an exception raised with
    one of these as its argument (``ValueError(Message.of(...))``); anything else as the
    words it already says (``Message.verbatim``)."""
    if isinstance(value, Message):
        return value
    if isinstance(value, Promise):
        return Message.of(value)
    untranslated = getattr(value, "untranslated", None)
    if isinstance(untranslated, Message):
        return untranslated
    if isinstance(value, BaseException) and len(value.args) == 1:
        value = value.args[0]
        if isinstance(value, Message | Promise):
            return as_message(value)
    return Message.verbatim(str(value))


def message_from_json(template: str, params: Mapping[str, Any] | None) -> Message:
    """A ``Message`` as stored: its template and its ``params_json()``."""
    return Message(template, {name: _value_read(value) for name, value in (params or {}).items()})


def message_render(template: str, params: Mapping[str, Any] | None) -> str:
    """``gettext(template) % params`` in the active language, each parameter read back
    (``params_json``) and rendered in that language too. A translation that does not fit
    its parameters falls back to the template itself."""
    values = {name: _value_read(value) for name, value in (params or {}).items()}
    shown = {
        name: str(value) if isinstance(value, Message | FileSize) else value
        for name, value in values.items()
    }
    for text in (translation.gettext(template), template):
        try:
            return text % shown
        except (KeyError, ValueError, TypeError):
            continue
    return template
