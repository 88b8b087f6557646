"""Safe output files for every command that writes one.

Two rules hold for each output:

- it is never one of the command's inputs (`check_not_input`), whatever the
  spelling of the path (relative, `..`, a symlink, a hard link);
- it is written atomically (`atomic_output`, `atomic_path`): into a temporary
  file in the same folder, which replaces the output only once it is
  complete. A run that fails halfway leaves an existing output as it was,
  and never a truncated file.
"""
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Optional, Union

PathLike = Union[str, Path]


class OutputError(ValueError):
    """An output that must not or cannot be written."""


def same_file(first: PathLike, second: PathLike) -> bool:
    """Whether two paths name the same file (or folder).

    first (str / Path): A path, which need not exist.
    second (str / Path): Another path.
    RETURNS (bool): True if both exist and are the same file, or if both
        resolve to the same path.
    """
    first, second = Path(first), Path(second)
    try:
        if first.exists() and second.exists():
            return os.path.samefile(first, second)
    except OSError:
        pass
    return first.resolve() == second.resolve()


def check_not_input(output: PathLike, *inputs: Optional[PathLike]) -> None:
    """Refuse an output that is one of the inputs.

    output (str / Path): The output file or folder.
    inputs (Optional[str / Path]): The command's inputs; None is skipped.
    RAISES (OutputError): If the output is one of them.
    """
    for path in inputs:
        if path is not None and same_file(output, path):
            raise OutputError(
                f"The output {output} is the input {path}: writing it would destroy the input. "
                "Choose another output path."
            )


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """A temporary path beside `path` that replaces it on success.

    For writers that take a path (`DocBin.to_disk`, `srsly.write_json`). The
    folder is created; the temporary file keeps the suffix of `path`. On an
    exception the temporary file is removed and `path` is left as it was.

    path (str / Path): The output file.
    YIELDS (Path): Where to write.
    RAISES (OutputError): If the output cannot be written (its folder cannot be
        created, or it is a folder).
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"Cannot write {path}: it is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as err:
        raise OutputError(f"Cannot write {path}: {err.strerror or err}") from None
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        _keep_mode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_output(path: PathLike, mode: str = "w", encoding: Optional[str] = "utf8", newline: Optional[str] = None) -> Iterator[IO]:
    """An open temporary file beside `path` that replaces it on success.

    path (str / Path): The output file.
    mode (str): "w" (text) or "wb" (bytes).
    encoding (Optional[str]): The text encoding (ignored for "wb").
    newline (Optional[str]): As for `open` (ignored for "wb").
    YIELDS (IO): The open file.
    RAISES (OutputError): See `atomic_path`.
    """
    with atomic_path(path) as temporary:
        if "b" in mode:
            file = temporary.open(mode)
        else:
            file = temporary.open(mode, encoding=encoding, newline=newline)
        with file:
            yield file


def _keep_mode(path: Path, temporary: Path) -> None:
    # mkstemp creates 0600 files; give the output the mode a plain open() would.
    try:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
        os.chmod(temporary, mode)
    except OSError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
