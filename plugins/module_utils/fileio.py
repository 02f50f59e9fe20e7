# -*- coding: utf-8 -*-
# Copyright: (c) 2026, runbook.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Atomic file writes shared by every runbook.ops module that writes a file: a reader
(or a crash) never sees half a file.  Nothing here imports Ansible."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile


def fsync_path(path):
    """fsync a file or a directory."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir_quietly(path):
    """fsync a directory after a rename in it, where a filesystem that cannot (or a
    directory gone meanwhile) must not fail an operation that already succeeded."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomically(path, data, mode=0o644, move=None, suffix=''):
    """Write ``data`` (text or bytes) to ``path`` through a temporary file in the same
    directory: written, fsynced, given ``mode``, then renamed over ``path`` and the
    directory fsynced.  ``move(temporary, path)`` replaces the rename where the caller
    wants more (AnsibleModule.atomic_move keeps the SELinux context and ownership of
    the file it replaces).  ``suffix`` ends the temporary name (``~`` makes logrotate
    skip it).  On any failure the temporary file is removed and ``path`` is as before;
    the error is raised."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix=suffix,
                                         dir=directory)
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(data.encode('utf-8') if not isinstance(data, bytes) else data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        if move is None:
            os.rename(temporary, path)
        else:
            move(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    if move is not None:
        os.chmod(path, mode)  # atomic_move may keep the replaced file's mode
    fsync_path(directory)
