"""The hand-written fast paths say exactly what the DRF serializers they stand in for say.

Every ack, broadcast and history page goes through ``message_payload`` and every
socket send through ``message_input``; the schema and the REST errors come from the
serializers. These tests hold each pair to one answer, so a field added to one and not
the other fails here rather than in a client.
"""

import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from accounts.serializers import UserBriefSerializer, user_brief
from common.text import has_forbidden_characters
from messaging.models import Message
from messaging.serializers import (
    MessageInputSerializer,
    MessageSerializer,
    message_input,
    message_payload,
    message_payloads,
)
from tests.factories import MessageFactory, UserFactory


def _declared(serializer_class: type[serializers.Serializer], instance: object) -> dict:
    """What the serializer's declared fields produce, without the fast path."""
    return dict(serializers.Serializer.to_representation(serializer_class(), instance))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"client_id": "c-1"},
        {"body": "edited ✓ 🙂", "edited_at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)},
        {"body": "", "is_deleted": True},
        # Stored aware in another zone: shown in the current zone (UTC), with a Z.
        {"created_at": datetime(2026, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))},
    ],
)
def test_message_payload_is_the_serializer_output(changes: dict) -> None:
    author = UserFactory.create(display_name="Ünïcode <b>")
    message = MessageFactory.create(author__display_name="x", **changes)
    message.author = author
    Message.objects.filter(pk=message.pk).update(author=author)
    message = Message.objects.select_related("author").get(pk=message.pk)

    payload = message_payload(message)

    assert payload == _declared(MessageSerializer, message)
    assert list(payload) == list(MessageSerializer().fields)  # same keys, same order
    assert MessageSerializer(message).data == payload
    assert MessageSerializer([message], many=True).data == [payload]
    assert payload["created_at"].endswith("Z")


@pytest.mark.django_db
def test_history_rows_read_as_the_messages_payloads() -> None:
    message = MessageFactory.create(client_id="c-1")
    MessageFactory.create(room=message.room, body="", is_deleted=True, edited_at=message.created_at)
    messages = Message.objects.filter(room=message.room).order_by("seq")

    assert message_payloads(messages, limit=10) == [
        message_payload(m) for m in messages.select_related("author")
    ]
    assert len(message_payloads(messages, limit=1)) == 1


@pytest.mark.django_db
def test_user_brief_is_the_serializer_output() -> None:
    user = UserFactory.create(display_name="Zoë")
    assert user_brief(user) == _declared(UserBriefSerializer, user)
    assert UserBriefSerializer(user).data == user_brief(user)


def _serializer_answer(data: dict) -> tuple[str, object]:
    serializer = MessageInputSerializer(data=data)
    if serializer.is_valid():
        return "valid", dict(serializer.validated_data)
    return "invalid", serializer.errors


def _fast_answer(data: dict) -> tuple[str, object]:
    try:
        return "valid", message_input(data)
    except serializers.ValidationError as invalid:
        return "invalid", invalid.detail


_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(
            [
                *["\t", "\n", "\r", "\x00", "\x07", "\x7f", "\x85", "\ud800", " "],
                # Format characters (Cf): a body of only these and white space is blank.
                *["\u200b", "\u200c", "\u200d", "\u202e", "\ufeff", "\u00ad", "\U000e0001"],
            ]
        ),
    ),
    max_size=80,
)
_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _text,
    st.text(alphabet="abcXYZ019-_", min_size=0, max_size=70),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers()),
)  # fmt: skip


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    frame=st.fixed_dictionaries(
        {"type": st.just("message.send")},
        optional={"body": _values, "client_id": _values, "extra": _values},
    )
)
@example(frame={"body": "x" * 4000, "client_id": "a" * 64})
@example(frame={"body": "x" * 4001})
@example(frame={"body": "ok", "client_id": "a" * 65})
@example(frame={"body": "   \n\t"})
@example(frame={"body": "\u200b\u200b"})
@example(frame={"body": " \ufeff\u200d\n"})
@example(frame={"body": "\u200bx"})
@example(frame={"body": "tab\tand\r\nnewlines", "client_id": "id_-9"})
@example(frame={"body": "ok", "client_id": ""})
@example(frame={"body": "ok", "client_id": None})
def test_message_input_answers_as_the_serializer_does(frame: dict) -> None:
    assert _fast_answer(frame) == _serializer_answer(frame)


def test_forbidden_characters_are_unicode_control_and_surrogate_characters() -> None:
    """The character class is the Cc and Cs categories, checked on every code point."""
    for allowed in ("", "\t\n\r"):
        wrong = [
            hex(code)
            for code in range(0x110000)
            if has_forbidden_characters(chr(code), allowed=allowed)
            != (unicodedata.category(chr(code)) in ("Cc", "Cs") and chr(code) not in allowed)
        ]
        assert wrong == []
