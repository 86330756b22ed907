"""A message kept untranslated (its msgid and parameters) reads in the active language."""

import json

import pytest
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from console.messages import FileSize, Message, message_from_json, message_render
from customers.contract.messages import ERR_EMAIL, ERR_REQUIRED
from customers.services.problems import ERR_CHILD_ELSEWHERE

EMAIL_ES = "“bob” no es una dirección de correo electrónico válida."


def test_a_message_keeps_the_msgid_whatever_the_active_language():
    with translation.override("es"):
        message = Message.of(ERR_EMAIL, value="bob")

    assert message.template == "“%(value)s” is not a valid email address."
    assert message.params == {"value": "bob"}


def test_a_message_reads_in_the_active_language():
    message = Message.of(ERR_EMAIL, value="bob")

    with translation.override("es"):
        assert str(message) == EMAIL_ES
    with translation.override("en"):
        assert str(message) == "“bob” is not a valid email address."


def test_english_is_the_msgid_rendered_even_while_spanish_is_active():
    with translation.override("es"):
        assert Message.of(ERR_EMAIL, value="bob").english() == (
            "“bob” is not a valid email address."
        )


def test_a_nested_label_reads_in_the_readers_language_after_a_json_round_trip():
    message = Message.of(
        ERR_CHILD_ELSEWHERE, kind=Message.of(_("balance")), legacy_id="c-1", other="winter"
    )
    stored = json.loads(json.dumps(message.params_json()))

    with translation.override("es"):
        shown = message_render(message.template, stored)

    assert shown.startswith("Este registro de saldo está preparado en este lote")
    assert message_from_json(message.template, stored) == message


def test_a_file_size_is_written_the_readers_way():
    stored = Message.of("Takes %(size)s.", size=FileSize(70_000)).params_json()

    assert stored == {"size": {"file_size": 70_000}}
    with translation.override("en"):
        assert message_render("Takes %(size)s.", stored) == "Takes 68.4\xa0KB."
    with translation.override("es"):
        assert message_render("Takes %(size)s.", stored) == "Takes 68,4\xa0KB."


def test_verbatim_words_are_shown_as_they_are_in_every_language():
    message = Message.verbatim("Ce champ est obligatoire.")

    with translation.override("es"):
        assert str(message) == "Ce champ est obligatoire."
    assert message.is_verbatim


def test_a_translation_that_does_not_fit_its_parameters_falls_back_to_the_template():
    assert message_render("%(missing)s and %(value)s", {"value": "x"}) == (
        "%(missing)s and %(value)s"
    )
    assert message_render("Reaches 100%", {}) == "Reaches 100%"


def test_a_message_without_parameters_is_translated_too():
    with translation.override("es"):
        assert str(Message.of(ERR_REQUIRED)) == str(ERR_REQUIRED)


def test_a_plural_message_cannot_be_kept_for_later():
    plural = ngettext_lazy("%(n)s row", "%(n)s rows", "n")

    with pytest.raises(ValueError, match="plural"):
        Message.of(plural, n=2)
