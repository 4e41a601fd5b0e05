"""PEP 751 lockfiles (``pylock.toml``): written from a resolution, installed with no index.

- ``names``: which ``-r`` arguments are lockfiles (cheap; the install command asks first).
- ``write``: ``torrip lock``: resolve for the target, lock every wheel with its index,
  URL, size, hashes, upload time, and torrents in ``[packages.tool.torrip]``.
- ``read``: parse, validate and select with ``packaging.pylock`` for a target environment.
- ``install``: a Plan from the selection, for ``torrip install -r pylock.toml`` and
  ``torrip sync``, executed like any other plan (``torrip.install.execute``).
- ``tooldata``: the ``[packages.tool.torrip]`` table.

The package imports only ``names``; import the others from their modules::

    from torrip.lockfile.write import lock_requirements
    text = lock_requirements(InstallRequest(requirements=("requests",)), settings).text

    from torrip.lockfile.install import LockInstallRequest, plan_lock_install
    planned = plan_lock_install(LockInstallRequest(Path("pylock.toml")), settings)
"""

from torrip.lockfile.names import is_lockfile_name, split_extras

__all__ = ["is_lockfile_name", "split_extras"]
