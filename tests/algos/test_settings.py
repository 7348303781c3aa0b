"""The base algorithms' setting checks: accepted values and messages that name the range."""

import math

import pytest

from gradmanip.algos.settings import check_float, check_int


def test_check_float_accepts_the_range_and_returns_a_float():
    assert check_float("tau", 1, 0.0, 1.0) == 1.0
    assert isinstance(check_float("tau", 1, 0.0, 1.0), float)
    assert check_float("gamma", 0, 0.0, 1.0, open_low=False) == 0.0
    assert check_float("lr", 1e9, 0.0) == 1e9


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("tau", 0.0, 0.0, 1.0), {}, r"tau must be a number in \(0.0, 1.0\], got 0.0"),
        (("tau", 1.5, 0.0, 1.0), {}, r"tau must be a number in \(0.0, 1.0\], got 1.5"),
        (
            ("gamma", -0.1, 0.0, 1.0),
            {"open_low": False},
            r"gamma must be a number in \[0.0, 1.0\], got -0.1",
        ),
        (("lr", 0, 0.0), {}, "lr must be a finite number > 0.0, got 0.0"),
        (("lr", math.inf, 0.0), {}, "lr must be a finite number > 0.0, got inf"),
        (("lr", math.nan, 0.0), {}, "lr must be a finite number > 0.0, got nan"),
        (("norm", -1, 0.0), {"open_low": False}, "norm must be a finite number >= 0.0, got -1.0"),
        (("lr", "3e-4", 0.0), {}, "lr must be a number, got '3e-4'"),
        (("lr", True, 0.0), {}, "lr must be a number, got True"),
    ],
)
def test_check_float_names_the_setting_and_its_range(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_float(*args, **kwargs)


def test_check_int_accepts_whole_numbers_and_names_the_minimum():
    assert check_int("actor_delay", 2.0, 1) == 2
    for bad in (0, 1.5, "2", False):
        with pytest.raises(ValueError, match="actor_delay must be an integer >= 1"):
            check_int("actor_delay", bad, 1)
