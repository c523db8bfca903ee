"""The project's user-facing errors: each one's message names the file once and the problem.

Command-line verbs print such an error as one line and exit 2; anything else is a bug and
keeps its traceback.
"""

import os


class LipseqError(Exception):
    """A problem with the user's input, paths or settings that the user can act on."""

    @staticmethod
    def without_path(detail: str, path: str | os.PathLike) -> str:
        """An error detail with its own mentions of `path` dropped, for a message that names
        the file in front: FFmpeg's errors (PyAV's FFmpegError) end in `: '<path>'`."""
        path = str(path)
        if not path:
            return detail
        return detail.replace(f": {path!r}", "").replace(path, "the file")


class NotPreparedError(LipseqError, FileNotFoundError):
    """A prepared dataset directory is missing, incomplete or of another task."""


class NotAnExportError(LipseqError, FileNotFoundError):
    """A directory is not a lipseq SavedModel export (or not one of the expected task)."""


class NotAWorkdirError(LipseqError, FileNotFoundError):
    """A training workdir is missing, has no config.json, or has no checkpoint."""


class ConfigError(LipseqError, ValueError):
    """A config value that cannot work (unknown task, preset, detector, grammar...)."""


class CorpusLayoutError(LipseqError, ValueError):
    """A corpus directory or manifest file whose layout is not the one its reader expects."""


class CorpusNotFoundError(LipseqError, FileNotFoundError):
    """A corpus root or manifest file that does not exist."""


class CorpusNotADirectoryError(LipseqError, NotADirectoryError):
    """A corpus root that is a file."""
