"""Why an upload is refused: permanent errors carrying a short reason code."""

from __future__ import annotations

from typing import Literal

from nightshift.common.errors import PermanentError

#: The reason codes recorded on the media row and published with ``media.failed``.
RejectionCode = Literal["too_large", "unsupported_type", "too_many_pixels", "corrupt", "missing"]


class MediaRejected(PermanentError):
    """The upload cannot become variants; retrying cannot help.

    Parameters:
      code: What kind of problem it is, for machines.
      detail: What exactly is wrong, for people.
    """

    def __init__(self, code: RejectionCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code: RejectionCode = code
        self.detail = detail
