"""Reading users' text files as UTF-8, with errors that point at the bad byte."""

from recipes.common.errors import UsageError


def read_utf8(path, what):
    """The text of `path`, decoded as UTF-8 (a leading BOM, as Excel writes, dropped).

    Args:
        path: The file to read.
        what: How the message names it, e.g. "--csv_file".

    Raises:
        UsageError: the file is not UTF-8; the message gives the file, the
            line and the byte offset.
    """
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise UsageError(
            f"{what} must be UTF-8 text, but line {line} of {path} has a byte "
            f"that is not valid UTF-8 (0x{raw[error.start]:02x} at offset "
            f"{error.start}: {error.reason}); convert the file to UTF-8. "
            f"Received: {path!r}") from None
