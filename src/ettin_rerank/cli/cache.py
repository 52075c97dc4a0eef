"""`cache`: show and clear the indexes `search` keeps of folders it searched directly."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# The library (retrieval/folder_cache: bm25s, numpy through SearchIndex) is imported when the
# command runs, so `cache --help` stays light.


def register(subparsers) -> None:
    subparsers.add_parser(
        "cache",
        help="show or clear the indexes `search` keeps of folders it searched",
        description="`search FOLDER` keeps the folder's index in the user's cache directory and updates it by "
        "each file's size and modification time. `cache` lists the entries (folder, documents, size on "
        "disk, last update); `cache clear` removes them all, `cache clear FOLDER` those of one folder.",
        add_arguments=add_cache_arguments,
    ).set_defaults(handler=run_cache)


def add_cache_arguments(cache: argparse.ArgumentParser) -> None:
    cache.add_argument("action", nargs="?", choices=("list", "clear"), default="list")
    cache.add_argument(
        "folder", nargs="?", type=Path, metavar="FOLDER", help="clear only this folder's entries"
    )
    cache.add_argument("--json", action="store_true", help="print JSON instead of text")


def run_cache(args) -> int:
    from ..retrieval.folder_cache import cache_entries, clear_cache, folders_dir

    if args.action == "list" and args.folder is not None:
        raise ValueError("a FOLDER goes with `cache clear FOLDER`; `cache` lists every entry")
    entries = clear_cache(args.folder) if args.action == "clear" else cache_entries()
    if args.json:
        payload = {
            "cache_dir": str(folders_dir()),
            "cleared" if args.action == "clear" else "entries": [entry.to_dict() for entry in entries],
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    if args.action == "clear":
        what = f" of {args.folder}" if args.folder is not None else ""
        print(f"removed {len(entries)} kept index(es){what} from {folders_dir()}")
        return 0
    if not entries:
        print(f"no kept indexes in {folders_dir()}")
        return 0
    print(f"kept indexes in {folders_dir()}:")
    for entry in entries:
        if entry.folder is None:
            print(
                f"  {entry.path.name}: unreadable (rebuilt by the next search of its folder), {_size(entry.size_bytes)}"
            )
            continue
        passages = entry.passages or {}
        settings = ", ".join(f"{key} {value}" for key, value in passages.items())
        print(
            f"  {entry.folder}  {entry.documents} documents from {entry.files} files ({settings}), "
            f"{_size(entry.size_bytes)}, updated {entry.updated}"
        )
    return 0


def _size(size_bytes: int) -> str:
    size = float(size_bytes)
    for unit in ("B", "KB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
