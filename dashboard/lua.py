"""The server-side scripts: Lua in `.lua` files beside the Python that calls them, read once
at import, so they can be read and linted as Lua.

`prelude.lua` is the one library a script may start with: the key prefix `P`, the change
log's `emit`/`flush`, `restate` and the revision helpers. `Store.script` puts it in front of a
body and passes its two arguments (ARGV[1] the prefix, ARGV[2] the log's cap).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final


def source(anchor: str, *names: str) -> str:
    """The text of the `.lua` files `names`, in order, from the folder of the module file
    `anchor` (pass `__file__`)."""
    folder = Path(anchor).resolve().parent
    return "".join((folder / name).read_text(encoding="utf-8") for name in names)


PRELUDE: Final = source(__file__, "prelude.lua")
