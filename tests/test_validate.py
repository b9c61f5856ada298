"""The argument checks: each bad value is refused with a sentence naming the argument,
the range it must lie in, and the value given; good values come back converted."""
import numpy as np
import pytest
import torch

from dropout_lab.validate import InvalidArgument, check_float, check_int, check_seeds


@pytest.mark.parametrize("value, expected", [(3, 3), (np.int64(7), 7), (torch.tensor(5), 5)])
def test_check_int_accepts_whole_numbers_of_any_integer_type(value, expected):
    result = check_int("epochs", value, minimum=1)
    assert result == expected and type(result) is int


@pytest.mark.parametrize("value, message", [
    (1.5, "epochs must be a whole number >= 1, got 1.5"),
    (10.0, "epochs must be a whole number >= 1, got 10.0"),
    (True, "epochs must be a whole number >= 1, got True (a bool)"),
    ("10", "epochs must be a whole number >= 1, got '10' (a str)"),
    (None, "epochs must be a whole number >= 1, got None (a NoneType)"),
    (0, "epochs must be a whole number >= 1, got 0"),
    (-3, "epochs must be a whole number >= 1, got -3"),
])
def test_check_int_refuses_with_a_message_saying_what_to_pass(value, message):
    with pytest.raises(InvalidArgument) as error:
        check_int("epochs", value, minimum=1)
    assert str(error.value) == message


def test_invalid_argument_is_both_a_value_and_a_type_error():
    for caught in (ValueError, TypeError):
        with pytest.raises(caught):
            check_int("batch_size", 2.5, minimum=1)


def test_check_int_upper_bound_is_named():
    assert check_int("seed", 2**32 - 1, 0, 2**32 - 1) == 2**32 - 1
    with pytest.raises(InvalidArgument, match=r"seed must be a whole number in \[0, 2\*\*32\)"):
        check_int("seed", 2**32, 0, 2**32 - 1)
    with pytest.raises(InvalidArgument, match=r"in \[1, 9\], got 10"):
        check_int("k", 10, 1, 9)


@pytest.mark.parametrize("value", [0.1, 1, np.float32(0.5), torch.tensor(0.25)])
def test_check_float_accepts_finite_numbers(value):
    result = check_float("lr", value, minimum=0, strict_minimum=True)
    assert result == pytest.approx(float(value)) and type(result) is float


@pytest.mark.parametrize("value, kwargs, message", [
    (float("nan"), {"minimum": 0, "strict_minimum": True},
     "lr must be a finite number > 0, got nan"),
    (float("inf"), {"minimum": 0, "strict_minimum": True},
     "lr must be a finite number > 0, got inf"),
    (0.0, {"minimum": 0, "strict_minimum": True}, "lr must be a finite number > 0, got 0.0"),
    (-1, {"minimum": 0}, "lr must be a finite number >= 0, got -1"),
    (1.5, {"minimum": 0, "maximum": 1}, "lr must be a finite number in [0, 1], got 1.5"),
    (0, {"minimum": 0, "maximum": 1, "strict_minimum": True},
     "lr must be a finite number in (0, 1], got 0"),
    (True, {"minimum": 0}, "lr must be a finite number >= 0, got True (a bool)"),
    ("0.1", {"minimum": 0}, "lr must be a finite number >= 0, got '0.1' (a str)"),
    (float("-inf"), {}, "lr must be a finite number, got -inf"),
])
def test_check_float_refuses_nan_inf_and_out_of_range(value, kwargs, message):
    with pytest.raises(InvalidArgument) as error:
        check_float("lr", value, **kwargs)
    assert str(error.value) == message


def test_check_float_minimum_is_inclusive_unless_strict():
    assert check_float("weight_decay", 0, minimum=0) == 0.0
    assert check_float("p", 1, minimum=0, maximum=1) == 1.0


def test_check_seeds_a_count_becomes_a_range():
    assert check_seeds(3) == [0, 1, 2]
    assert check_seeds(np.int64(2)) == [0, 1]


def test_check_seeds_a_list_is_kept_in_its_order():
    assert check_seeds([5, 0, 2**32 - 1]) == [5, 0, 2**32 - 1]
    assert check_seeds((np.int64(1), 4)) == [1, 4]
    assert check_seeds(range(2, 4)) == [2, 3]


@pytest.mark.parametrize("seeds, message", [
    ([0, 1, 0, 2, 1], r"seeds must be distinct, but these repeat: 0 \(2 times\), 1 \(2 times\)"),
    ([], "seeds is empty"),
    (0, r"seeds \(a number of seeds\) must be a whole number >= 1, got 0"),
    (2.0, r"must be a whole number >= 1, got 2.0"),
    (True, r"got True \(a bool\)"),
    ([0, -1], r"seeds\[1\] must be a whole number in \[0, 2\*\*32\), got -1"),
    ([0, 2**32], r"seeds\[1\] must be a whole number in \[0, 2\*\*32\), got 4294967296"),
    ([0, 1.5], r"seeds\[1\] must be a whole number"),
    ("012", r"seeds must be a number of seeds \(e.g. 5\) or a list"),
    (None, r"got None"),
])
def test_check_seeds_refuses_duplicates_and_bad_seeds(seeds, message):
    with pytest.raises(InvalidArgument, match=message):
        check_seeds(seeds)


def test_check_int_refuses_tensors_with_more_than_a_number():
    with pytest.raises(InvalidArgument, match="epochs must be a whole number"):
        check_int("epochs", torch.tensor([3]), minimum=1)
