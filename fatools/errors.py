"""Errors that end a command with a one-line message instead of a traceback."""


class FatoolsError(Exception):
    """A runtime failure the user can act on: the message names the file and what to do."""


class RecordError(FatoolsError):
    """A record line that cannot be read (bad JSON, wrong type, newer schema)."""


class VideoError(FatoolsError):
    """A video or image that cannot be opened or decoded."""


class ModelMissingError(FatoolsError):
    """A model file is absent from the model store."""


class Interrupted(FatoolsError):
    """A signal (SIGTERM, SIGINT) asked the run to stop; what is done is kept, resumable."""

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = signum
        super().__init__(
            f"stopped by {signal.Signals(signum).name}; the records so far are kept: "
            "run the same command again to go on"
        )
