"""HubSpot's firstname/lastname against our one name: the split rule and the round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmsync.crm.hubspot.names import join_name, split_name


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("Ada", ("Ada", "")),
        ("John Smith", ("John", "Smith")),
        ("Mary Ann Smith", ("Mary", "Ann Smith")),
        ("Gabriel García Márquez", ("Gabriel", "García Márquez")),
        ("Ludwig van Beethoven", ("Ludwig", "van Beethoven")),
        ("  John \t  Smith \n", ("John", "Smith")),
        ("Jean-Luc Picard", ("Jean-Luc", "Picard")),
        ("Zoë O'Brien", ("Zoë", "O'Brien")),
        ("Иван Петрович Сидоров", ("Иван", "Петрович Сидоров")),
        ("محمد بن سلمان", ("محمد", "بن سلمان")),
        ("山田\u3000太郎", ("山田", "太郎")),  # an ideographic space is whitespace too
        ("毛泽东", ("毛泽东", "")),  # no space: not split
        ("", ("", "")),
        ("   ", ("", "")),
    ],
)
def test_the_first_word_is_the_first_name_and_the_rest_the_last_name(name: str, parts: tuple[str, str]) -> None:
    assert split_name(name) == parts


@pytest.mark.parametrize(
    ("first", "last", "name"),
    [
        ("Ada", "", "Ada"),
        ("", "Lovelace", "Lovelace"),
        (None, None, ""),
        ("Mary Ann", "Smith", "Mary Ann Smith"),
        (" John ", " Smith ", "John Smith"),
        ("Иван", "Сидоров", "Иван Сидоров"),
    ],
)
def test_join_trims_each_part_and_leaves_empty_ones_out(first: str | None, last: str | None, name: str) -> None:
    assert join_name(first, last) == name


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60))
def test_a_name_survives_the_round_trip_with_its_whitespace_normalised(name: str) -> None:
    first, last = split_name(name)
    assert " " not in first and first == first.strip() and last == last.strip()
    assert join_name(first, last) == " ".join(name.split())
    assert split_name(join_name(first, last)) == (first, last)
