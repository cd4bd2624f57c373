"""The one exception type a user can cause.

Every error that bad input can trigger (an unknown primitive, a size that is not an integer for some layer,
malformed JSON, a wrong rank) is raised as :class:`SynoError` with a message that says what is wrong and what
to do.  The CLI prints it on one line and exits 2; anything else escaping is a bug in syno-tvm.
"""


class SynoError(Exception):
    """A problem with the user's input, phrased so that the user can fix it."""
