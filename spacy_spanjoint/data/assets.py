"""Fetch the corpora declared in project.yml, verified by sha256.

The corpora are third-party data, never part of the repository. Each asset of
project.yml has a public `url` and a `sha256`; a local mirror folder (laid out
like `assets/`) stands in for the public sources on a machine without
internet. weasel's own `project assets` checks MD5 only and knows no mirror,
hence this module.

Every destination must lie inside the project folder (and every mirrored
source inside the mirror). A file is fetched into a temporary file beside
its destination and moved into place only once its checksum is right, so the
command never deletes or overwrites a file it did not create: an existing file
with another checksum (a user's edited copy, an older release) is left as it
is and reported.
"""
import hashlib
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Union

import srsly

from .outputs import atomic_path

ASSETS_DIR = "assets"


class AssetError(RuntimeError):
    """An asset is missing or does not match its checksum."""


@dataclass
class Asset:
    """One file of project.yml's `assets` list.

    dest (str): Path relative to the project folder, under `assets/`.
    url (str): The public source.
    sha256 (str): Expected checksum.
    optional (bool): Fetched only on request (e.g. SciERC, not mirrored).
    """

    dest: str
    url: str
    sha256: str
    optional: bool = False


def sha256_of(path: Path) -> str:
    """The sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_assets(project_file: Path) -> List[Asset]:
    """The assets of a project.yml that carry a sha256."""
    config = srsly.read_yaml(project_file)
    assets = []
    for i, entry in enumerate(config.get("assets", [])):
        missing = [key for key in ("dest", "url", "sha256") if key not in entry]
        if missing:
            raise AssetError(f"{project_file}: assets[{i}] lacks {missing}")
        assets.append(Asset(entry["dest"], entry["url"], entry["sha256"], bool(entry.get("optional", False))))
    return assets


def fetch_asset(asset: Asset, project_dir: Path, mirror: Optional[Path] = None, timeout: float = 60.0) -> str:
    """Make `asset` present and verified under `project_dir`.

    A file already there with the right checksum is kept, and one with
    another checksum is left as it is (an error). A missing file comes from
    the mirror (the same path below the mirror as below `assets/`) or, when
    the mirror lacks it, from the public URL, and is put in place only once
    its checksum is right.

    RETURNS (str): Where it came from: "present", the mirror path or the URL.
    RAISES (AssetError): The destination is outside the project, a different
        file is in its place, the file could not be had, or its checksum is
        wrong (the message names the file and both checksums).
    """
    dest = inside(project_dir, asset.dest, "project folder")
    if dest.exists():
        actual = sha256_of(dest)
        if actual == asset.sha256:
            return "present"
        raise AssetError(
            f"{asset.dest}: a file is already there with sha256 {actual}, expected {asset.sha256}; "
            "it was left as it is. Move it away (or delete it) to fetch the expected file."
        )
    relative = Path(asset.dest).relative_to(ASSETS_DIR) if asset.dest.startswith(ASSETS_DIR + "/") else Path(asset.dest)
    mirrored = inside(mirror, str(relative), "mirror") if mirror is not None else None
    with atomic_path(dest) as partial:
        with partial.open("wb") as file:
            if mirrored is not None and mirrored.exists():
                source = str(mirrored)
                with mirrored.open("rb") as original:
                    shutil.copyfileobj(original, file)
            else:
                source = asset.url
                try:
                    with urllib.request.urlopen(asset.url, timeout=timeout) as response:
                        shutil.copyfileobj(response, file)
                except OSError as error:
                    where = f"not in the mirror ({mirrored}) and " if mirrored is not None else ""
                    raise AssetError(f"{asset.dest}: {where}could not be downloaded from {asset.url}: {error}") from None
        actual = sha256_of(partial)
        if actual != asset.sha256:
            # the partial file is ours: atomic_path removes it, and dest never existed
            raise AssetError(f"{asset.dest}: corrupt copy from {source}: sha256 {actual}, expected {asset.sha256}")
    return source


def inside(folder: Path, relative: Union[str, Path], what: str) -> Path:
    """`folder / relative`, refused unless it lies inside `folder`.

    folder (Path): The project folder or the mirror.
    relative (str / Path): A path from project.yml.
    what (str): What the folder is, for the message.
    RETURNS (Path): The path.
    RAISES (AssetError): If the path is absolute or leads out of the folder
        (by `..` or a symlink).
    """
    path = Path(folder) / relative
    if Path(relative).is_absolute() or not path.resolve().is_relative_to(Path(folder).resolve()):
        raise AssetError(f"{relative}: the path leads outside the {what} ({folder}); refusing to use it")
    return path


def fetch_assets(
    project_file: Path, mirror: Optional[Path] = None, include_optional: bool = False
) -> Dict[str, str]:
    """Fetch every (required, or also optional) asset of a project.yml.

    RETURNS (Dict[str, str]): dest -> where it came from.
    RAISES (AssetError): Listing every asset that failed.
    """
    project_dir = Path(project_file).resolve().parent
    results, errors = {}, []
    for asset in read_assets(project_file):
        if asset.optional and not include_optional:
            continue
        try:
            results[asset.dest] = fetch_asset(asset, project_dir, mirror)
        except AssetError as error:
            errors.append(str(error))
    if errors:
        raise AssetError("\n".join(errors))
    return results
