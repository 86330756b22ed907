import pytest

from console.ids import ID_MAX, IdConverter, id_parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("0042", 42),
        (str(ID_MAX), ID_MAX),
        (str(ID_MAX + 1), None),
        ("99999999999999999999", None),
        ("9" * 5000, None),
        ("0", None),
        ("-1", None),
        ("", None),
        (None, None),
        ("1.0", None),
        (" 1", None),
        ("١٢", None),  # Arabic-Indic digits: digits, but not an id's
        ("²", None),
    ],
)
def test_an_id_is_ascii_digits_within_the_keys_range(text, expected):
    assert id_parse(text) == expected


def test_the_path_converter_matches_only_ids_in_range():
    converter = IdConverter()
    assert converter.to_python("7") == 7
    assert converter.to_url(7) == "7"
    with pytest.raises(ValueError, match=str(ID_MAX + 1)):
        converter.to_python(str(ID_MAX + 1))
