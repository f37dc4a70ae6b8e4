"""Errors that end a command with a one-line message instead of a traceback."""


class FatoolsError(Exception):
    """A runtime failure the user can act on: the message names the file and what to do."""


class RecordError(FatoolsError):
    """A record line that cannot be read (bad JSON, wrong type, newer schema)."""


class VideoError(FatoolsError):
    """A video or image that cannot be opened or decoded."""


class ModelMissingError(FatoolsError):
    """A model file is absent from the model store."""
