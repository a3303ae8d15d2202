"""The one error type of the data layer."""


from benchbench.errors import UserError


class DataError(UserError):
    """A dataset file is missing, truncated, corrupt or not the published one.

    The message is one line that names the file and says what to do about it.
    """
