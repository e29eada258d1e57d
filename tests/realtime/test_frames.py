import pytest

from realtime.frames import FrameError, encode_frame, frame_of, parse_frame, too_large


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (None, "invalid_json"),  # a binary frame
        ("{", "invalid_json"),
        ('{"type": NaN}', "invalid_json"),
        ("[" * 100_000, "invalid_json"),
        ("[1]", "invalid_frame"),
        ('{"type": 3}', "invalid_frame"),
    ],
)
def test_bad_frames_are_frame_errors_with_their_code(text: str | None, code: str) -> None:
    with pytest.raises(FrameError) as caught:
        frame_of(parse_frame(text)[0])

    assert caught.value.code == code


def test_the_client_id_of_a_frame_is_kept_for_its_error() -> None:
    _, client_id = parse_frame('{"type": "nope", "client_id": "c-1"}')

    assert client_id == "c-1"
    assert FrameError("unknown_type", "no").frame(client_id) == {
        "type": "error",
        "code": "unknown_type",
        "detail": "no",
        "client_id": "c-1",
    }


def test_a_lone_surrogate_is_escaped_so_the_frame_stays_valid_utf8() -> None:
    text = encode_frame({"client_id": "\ud800"})

    assert text == '{"client_id":"\\ud800"}'
    text.encode("utf-8")


def test_the_size_limit_counts_utf8_bytes(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CHAT_MAX_FRAME_BYTES = 8

    assert not too_large("12345678")
    assert too_large("123456789")
    assert too_large("ééééé")  # 5 characters, 10 bytes
