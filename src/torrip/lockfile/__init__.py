"""PEP 751 lockfiles (``pylock.toml``): written from a resolution, installed with no index.

- ``write``: ``torrip lock``: resolve for the target, lock every wheel with its index,
  URL, size, hashes, upload time, and torrents in ``[packages.tool.torrip]``.
- ``read``: parse, validate and select with ``packaging.pylock`` for a target environment.
- ``install``: a Plan from the selection, for ``torrip install -r pylock.toml`` and
  ``torrip sync``, executed like any other plan (``torrip.install.execute``).
- ``tooldata``: the ``[packages.tool.torrip]`` table.

Usage::

    text = lock_requirements(InstallRequest(requirements=("requests",)), settings).text
    planned = plan_lock_install(LockInstallRequest(Path("pylock.toml")), settings)
"""

from torrip.lockfile.install import LockInstallRequest, plan_lock_install
from torrip.lockfile.read import is_lockfile_name, load_lockfile, select_files, split_extras
from torrip.lockfile.write import LockResult, lock_from_plan, lock_requirements, render_lockfile

__all__ = [
    "LockInstallRequest",
    "LockResult",
    "is_lockfile_name",
    "load_lockfile",
    "lock_from_plan",
    "lock_requirements",
    "plan_lock_install",
    "render_lockfile",
    "select_files",
    "split_extras",
]
