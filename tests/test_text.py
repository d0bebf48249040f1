import pytest

from beacons.text import is_storable_json, is_storable_text, storable_text


@pytest.mark.parametrize(
    ("value", "storable"),
    [("/page ü 😀", True), ("", True), ("a\x00b", False), ("lone \ud800 high", False), ("lone \udfff low", False)],
)
def test_nul_and_lone_surrogates_are_not_storable(value, storable):
    assert is_storable_text(value) is storable


def test_storable_text_marks_each_bad_character_with_one_replacement_character():
    assert storable_text("a\x00b\ud800c") == "a\ufffdb\ufffdc"
    assert storable_text(b"a\x00b\xffc") == "a\ufffdb\ufffdc"
    assert storable_text("/page ü 😀".encode()) == "/page ü 😀"


def test_storable_text_is_always_storable():
    for value in ("\x00", "\ud800\udfff", b"\xed\xa0\x80", b"\x00\xff\xfe"):
        assert is_storable_text(storable_text(value))


@pytest.mark.parametrize(
    "value, storable",
    [
        ({"a": ["b", {"c": 1.5, "d": None}]}, True),
        ({"a": ["b", {"c": "x\x00"}]}, False),
        ({"k\ud800": 1}, False),
        (["ok", ["\udfff"]], False),
        (42, True),
    ],
)
def test_a_json_value_is_storable_when_every_key_and_string_inside_is(value, storable):
    assert is_storable_json(value) is storable
