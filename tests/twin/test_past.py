"""twin.past: apps above the twin add keys to its past document, never take the document's own."""

from __future__ import annotations

import pytest

from twin.past import past_read_register


@pytest.mark.parametrize("key", ["hosts", "links", "generatedAt"])
def test_an_addition_may_not_take_one_of_the_documents_own_keys(key):
    with pytest.raises(ValueError, match="taken"):
        past_read_register(key, lambda at: None)


def test_a_second_app_may_not_take_a_key_another_registered():
    with pytest.raises(ValueError, match="alerts"):
        past_read_register("alerts", lambda at: [])
