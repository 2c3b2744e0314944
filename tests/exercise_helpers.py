"""Helpers for the tests of the exercise self-checks (flcourse.exercises.chNN)."""


def raises(*args):
    """An answer that fails: the self-check must turn the exception into a hint."""
    raise ValueError("boom")


def assert_hint(capsys, hint):
    """The self-check printed a "Not yet." message that contains ``hint``."""
    out = capsys.readouterr().out
    assert out.startswith("Not yet.") and hint in out, out
