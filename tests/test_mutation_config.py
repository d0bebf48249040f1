"""`make mutate`'s set-asides: matched on the function and the line's text, so they outlive
code moving, and never left pointing at a line that is gone."""

import textwrap

from tests.mutation import config, mutate


def test_every_set_aside_still_matches_a_mutant_of_the_current_code():
    stale = [e for path in config.MODULES for e in mutate.stale_set_asides(path)]
    assert stale == []


def test_a_set_aside_applies_wherever_its_line_moves_and_only_in_its_function(tmp_path, monkeypatch):
    code = textwrap.dedent(
        """
        def first(x):
            return x + 1


        def second(x):
            return x + 1
        """
    )
    monkeypatch.setattr(mutate, "ROOT", tmp_path)
    (tmp_path / "m.py").write_text(code)
    entry = {"file": "m.py", "function": "second", "text": "return x + 1", "change": "+ → -", "reason": "-"}
    monkeypatch.setattr(config, "SET_ASIDE", [entry])

    def set_aside_lines():
        return [(m.function, m.line) for m in mutate.mutants_of("m.py") if mutate._is_set_aside(m)]

    assert set_aside_lines() == [("second", 7)]
    (tmp_path / "m.py").write_text("import os\n\n\n" + code)  # everything moves down three lines
    assert set_aside_lines() == [("second", 10)]
    assert mutate.stale_set_asides("m.py") == []
    (tmp_path / "m.py").write_text(code.replace("def second(x):\n    return x + 1", "def second(x):\n    return x + 2"))
    assert set_aside_lines() == []
    assert mutate.stale_set_asides("m.py") == [entry]


def test_the_tests_that_failed_are_read_from_pytests_summary():
    from tests.mutation.mutate import _failed_tests

    output = (
        "=========================== short test summary info ============================\n"
        "FAILED tests/test_slow_clients.py::test_trickle - AssertionError: late\n"
        "ERROR tests/test_a.py::test_b[x-1]\n"
        "1 failed, 1 error, 2097 passed in 12.0s\n"
    )
    assert _failed_tests(output) == ["tests/test_slow_clients.py::test_trickle", "tests/test_a.py::test_b[x-1]"]
    assert _failed_tests("2097 passed in 12.0s\n") == []
