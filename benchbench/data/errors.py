"""The one error type of the data layer."""


class DataError(Exception):
    """A dataset file is missing, truncated, corrupt or not the published one.

    The message is one line that names the file and says what to do about it.
    """
