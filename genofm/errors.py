"""One exception type for bad user input, so scripts can print it without a traceback."""


class GenofmInputError(ValueError):
    """Bad input: the message names the file, line or record and what is wrong."""
