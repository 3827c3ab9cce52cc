# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-bed connection: run tasks in a local podman container through nsenter.

Why it exists: containers.podman.podman runs four ``podman`` commands per task (mount,
mkdir of the remote tmp dir, the module, the clean-up; no pipelining) and each costs
0.6-1.5 s on the 2-core test machine, so a no-op run of site.yml on two hosts took
10 minutes.  This plugin asks podman once for the container's PID (cached, checked
against the process start time), then enters the container's namespaces with
util-linux's nsenter (about 30 ms) and supports pipelining: one process per task.

It is for the lab and the Molecule scenarios on this machine only (rootful podman,
the controller is the container host); real hosts use ssh.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
    name: podman_nsenter
    short_description: Run tasks in a local rootful podman container through nsenter (test bed)
    description:
      - Runs commands in the namespaces of a running container's PID 1 with C(nsenter), with a
        clean environment, and transfers files through the same channel. Supports pipelining.
      - Needs root on the container host and C(nsenter) (util-linux). Only C(root) as remote user.
    author: quantops.platform contributors
    options:
      remote_addr:
        description:
          - Name or ID of the container (as containers.podman.podman, the play context's address, that is
            C(ansible_host), else the inventory name; the delegated host's under C(delegate_to)).
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
      remote_user:
        description: Must be unset or C(root); use become for other users.
        vars:
          - name: ansible_user
      podman_executable:
        description: The podman command, used once to find the container's PID.
        default: podman
        vars:
          - name: ansible_podman_executable
"""

import os
import shlex
import subprocess
import tempfile

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()

ENVIRONMENT = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
               'HOME=/root', 'LANG=C.UTF-8', 'container=podman']


def _start_time(pid):
    """Start time of a process (field 22 of /proc/PID/stat), or None if it does not exist."""
    try:
        with open('/proc/%s/stat' % pid) as handle:
            stat = handle.read()
    except (IOError, OSError):
        return None
    return stat.rsplit(')', 1)[1].split()[19]


class Connection(ConnectionBase):
    """nsenter into a local podman container."""

    transport = 'podman_nsenter'
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super(Connection, self).__init__(*args, **kwargs)
        self._pid = None

    def _container(self):
        # As containers.podman.podman: the play context knows the delegated host's address.
        return self._play_context.remote_addr or self.get_option('remote_addr')

    def _container_pid(self):
        name = self._container()
        cache_dir = os.path.join(tempfile.gettempdir(), 'podman-nsenter-%d' % os.getuid())
        cache = os.path.join(cache_dir, name.replace('/', '_'))
        try:
            with open(cache) as handle:
                pid, start = handle.read().split()
            if _start_time(pid) == start:
                return pid
        except (IOError, OSError, ValueError):
            pass
        cmd = [self.get_option('podman_executable'), 'inspect', '--type', 'container',
               '--format', '{{.State.Pid}}', name]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        pid = to_native(proc.stdout).strip()
        if proc.returncode != 0 or pid in ('', '0'):
            raise AnsibleConnectionFailure('container %s is not running (podman inspect: %s)'
                                           % (name, to_native(proc.stderr).strip() or 'no PID'))
        start = _start_time(pid)
        if not os.path.isdir(cache_dir):
            os.makedirs(cache_dir, 0o700)
        handle, tmp = tempfile.mkstemp(dir=cache_dir)
        with os.fdopen(handle, 'w') as out:
            out.write('%s %s\n' % (pid, start))
        os.rename(tmp, cache)
        return pid

    def _connect(self):
        if self.get_option('remote_user') not in (None, '', 'root'):
            raise AnsibleError('podman_nsenter runs as root only; use become for user %s'
                               % self.get_option('remote_user'))
        if not self._connected:
            self._pid = self._container_pid()
            self._connected = True
        return self

    def _run(self, argv, in_data=None):
        cmd = ['nsenter', '--target', self._pid, '--mount', '--uts', '--ipc', '--net', '--pid',
               '--root', '--wd', '--', '/usr/bin/env', '-i'] + ENVIRONMENT + argv
        display.vvv('NSENTER %s' % argv, host=self._container())
        proc = subprocess.run([to_bytes(c, errors='surrogate_or_strict') for c in cmd], input=in_data,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        return self._run(shlex.split(to_native(cmd, errors='surrogate_or_strict')), in_data)

    def put_file(self, in_path, out_path):
        super(Connection, self).put_file(in_path, out_path)
        self._connect()
        with open(to_bytes(in_path, errors='surrogate_or_strict'), 'rb') as handle:
            data = handle.read()
        rc, dummy, stderr = self._run(['/bin/sh', '-c', 'cat > "$1"', 'put_file', out_path], data)
        if rc != 0:
            raise AnsibleError('failed to write %s in %s: %s'
                               % (out_path, self._container(), to_native(stderr)))

    def fetch_file(self, in_path, out_path):
        super(Connection, self).fetch_file(in_path, out_path)
        self._connect()
        rc, data, stderr = self._run(['/bin/cat', '--', in_path])
        if rc != 0:
            raise AnsibleError('failed to read %s in %s: %s'
                               % (in_path, self._container(), to_native(stderr)))
        with open(to_bytes(out_path, errors='surrogate_or_strict'), 'wb') as handle:
            handle.write(data)

    def close(self):
        self._connected = False
