"""One exception type for bad user input, so scripts can print it without a traceback."""


class GenofmInputError(ValueError):
    """Bad input: the message names the file, line or record and what is wrong."""


def dataclass_from_dict(cls, data: dict, what: str):
    """cls(**data), with unknown keys named in a clear error (a typo, not a crash)."""
    from dataclasses import fields

    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise GenofmInputError(f"unknown {what} keys: {', '.join(unknown)}")
    return cls(**data)
