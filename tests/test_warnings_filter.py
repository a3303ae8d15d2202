"""pytest's warnings filter: the project's own warnings fail a test, a library's runtime warnings do not.

A real GPU's cupy may warn from inside itself (a cache path, a performance hint); that must not fail
the acceptance run's GPU tests, while a warning from benchbench or its tests still does.
"""
import warnings

import pytest


def test_a_librarys_warning_under_the_configured_filter_does_not_raise():
    scope = {"__name__": "cupy._core._kernel"}
    exec("import warnings\nwarnings.warn('a runtime warning inside a library', RuntimeWarning)", scope)


def test_the_projects_own_warnings_are_errors():
    with pytest.raises(RuntimeWarning):
        warnings.warn("benchbench's own", RuntimeWarning)
    scope = {"__name__": "benchbench.executor.some_module"}
    with pytest.raises(UserWarning):
        exec("import warnings\nwarnings.warn('from a benchbench module')", scope)
