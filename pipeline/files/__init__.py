"""Files on disk. Reading files a user or a pipelines file names (the pipelines file itself, keys, trust
configs, CA files, build secrets, ignore files): regular files only, at most MAX_FILE_BYTES, opened without
ever blocking, so a FIFO, a device or a huge file is refused with a one-line error instead of hanging or
exhausting memory. Writing what a run hands on (report, JUnit, dotenv, schema) whole, by rename; private
files made exclusively, never through a link (create_private, fresh_file).

    data = read_regular_file(Path("cosign.pub"), "public key")   # bytes, or ConfigError (exit 2)
"""

from pipeline.files.reading import MAX_FILE_BYTES, check_regular_file, read_regular_file
from pipeline.files.writing import append_text, create_private, fresh_file, write_text

__all__ = [
    "MAX_FILE_BYTES",
    "append_text",
    "check_regular_file",
    "create_private",
    "fresh_file",
    "read_regular_file",
    "write_text",
]
