"""Tests of the shared argument checks in benchbench.core.functions._checks."""
import numpy
import pytest

from benchbench.core import Variable
from benchbench.core.functions import _checks


def test_check_float_returns_the_array_of_a_variable_or_an_array():
    a = numpy.zeros((2, 3), dtype=numpy.float32)
    assert _checks.check_float("f", "x", a) is a
    assert _checks.check_float("f", "x", Variable(a)) is a
    assert _checks.check_float("f", "x", a, ndim=2) is a


def test_check_float_messages_name_function_argument_and_what_came():
    with pytest.raises(TypeError, match=r"^f: W must be a Variable or an array, got list$"):
        _checks.check_float("f", "W", [1.0])
    with pytest.raises(TypeError, match=r"^f: W must be a float array, got dtype int64$"):
        _checks.check_float("f", "W", numpy.zeros(3, dtype=numpy.int64))
    with pytest.raises(ValueError, match=r"^f: W must have 2 axes, got shape \(3,\)$"):
        _checks.check_float("f", "W", numpy.zeros(3, dtype=numpy.float32), ndim=2)


def test_check_operand_accepts_variables_and_arrays_only():
    a = numpy.zeros(2, dtype=numpy.int32)
    assert _checks.check_operand("g", "y", a) is a
    v = Variable(numpy.zeros(2, dtype=numpy.float32))
    assert _checks.check_operand("g", "y", v) is v
    with pytest.raises(TypeError, match=r"^g: y must be a Variable or an array, got NoneType$"):
        _checks.check_operand("g", "y", None)


def test_array_of_unwraps_variables_only():
    a = numpy.ones(2, dtype=numpy.float32)
    assert _checks.array_of(Variable(a)) is a
    assert _checks.array_of(a) is a
    assert _checks.array_of(3) == 3
