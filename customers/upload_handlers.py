"""The size limit of an uploaded file, kept while the request's body arrives.

Django writes an upload to memory or to a temporary file as it arrives, and a form or a
serializer sees its size only once all of it is there: a file of gigabytes would fill the
disk before being refused. ``UploadLimitHandler`` comes first in ``FILE_UPLOAD_HANDLERS``:
it passes each block on to Django's own handlers while the file is within
``MIGRATION_UPLOAD_MAX_BYTES`` (``upload_size_check``), and once it is not, it throws away
what they kept and lets nothing more through. The rest of the body is still read (the
form's other fields may follow the file, and a browser cut off while it sends shows an
error page instead of the answer) but never kept. The file then arrives as an
``OversizedUpload``: its name and its whole size, no content. The admin's import form and
the API's serializer check every file's size, so it is refused there with the usual
message; anything that tries to read it gets that message too.
"""

from __future__ import annotations

import io

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from console.errors import InvalidInput
from customers.services.uploads import upload_size_check


class _Refused(io.RawIOBase):
    """The content of a file refused while it arrived: reading it raises the refusal."""

    def __init__(self, refusal: InvalidInput) -> None:
        super().__init__()
        self.refusal = refusal

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise self.refusal


class OversizedUpload(UploadedFile):
    """A file over the size limit: its name and size as it arrived, nothing of its bytes."""

    def __init__(self, *, name: str, size: int, content_type: str, charset, refusal) -> None:
        super().__init__(
            file=_Refused(refusal),
            name=name,
            content_type=content_type,
            size=size,
            charset=charset,
        )


class UploadLimitHandler(FileUploadHandler):
    """Passes a file's blocks on while it is within the limit; past it, keeps nothing."""

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0
        self.is_over = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.is_over:
            return None
        try:
            upload_size_check(size=self.received)
        except InvalidInput:
            self.is_over = True
            self._drop_kept()
            return None
        return raw_data

    def file_complete(self, file_size: int) -> UploadedFile | None:
        if not self.is_over:
            return None  # Django's own handlers have the file
        try:
            upload_size_check(size=self.received)
        except InvalidInput as refusal:  # the whole size, now that it is known
            return OversizedUpload(
                name=self.file_name,
                size=self.received,
                content_type=self.content_type,
                charset=self.charset,
                refusal=refusal,
            )
        return None

    def _drop_kept(self) -> None:
        """Close what the handlers after this one kept of the file (a temporary file is
        deleted when closed)."""
        handlers = getattr(self.request, "upload_handlers", [])
        for handler in handlers[handlers.index(self) + 1 :] if self in handlers else []:
            kept = getattr(handler, "file", None)
            if kept is not None:
                kept.close()
