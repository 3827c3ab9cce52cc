# Copyright: quantops.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check that redis-server can load a configuration (or an ACL file) before it is put in place.

Installed as /usr/local/sbin/quantops-redis-check by the role quantops.platform.redis
and used as the validate command of its templates:

    quantops-redis-check FILE            FILE is a redis.conf
    quantops-redis-check --acl FILE      FILE is an ACL file (aclfile)

redis-server has no "check the configuration" switch.  This starts a scratch
redis-server with FILE in an empty temporary directory, listening on nothing
but a unix socket of its own (port 0, tls-port 0, no persistence, no
supervision), so it never touches the running server, its data or its ports.
A file redis-server cannot read (unknown directive, bad value, an ACL syntax
error, an unreadable TLS certificate) makes it exit at once with its FATAL
CONFIG / ACL error: that is printed and the exit status is 1.  A file it
loads leads to "Ready to accept connections": the scratch server is stopped
and the exit status is 0.  Python 3 standard library only.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REDIS_SERVER = "/usr/bin/redis-server"
TIMEOUT = 20.0


def check(path, acl=False):
    scratch = tempfile.mkdtemp(prefix="quantops-redis-check.")
    try:
        os.chmod(scratch, 0o700)
        conf = path
        if acl:
            conf = os.path.join(scratch, "redis.conf")
            with open(conf, "w", encoding="utf-8") as handle:
                handle.write("aclfile %s\n" % path)
        socket = os.path.join(scratch, "check.sock")
        argv = [REDIS_SERVER, conf, "--port", "0", "--tls-port", "0", "--unixsocket", socket,
                "--dir", scratch, "--daemonize", "no", "--supervised", "no", "--logfile", "",
                "--pidfile", "", "--save", "", "--appendonly", "no", "--cluster-enabled", "no"]
        with tempfile.TemporaryFile(dir=scratch) as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + TIMEOUT
            status = None
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    status = 1
                    break
                if os.path.exists(socket):
                    status = 0
                    break
                time.sleep(0.05)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            out.seek(0)
            log = out.read().decode("utf-8", "replace")
        if status is None:
            sys.stderr.write("%s: redis-server did not get ready within %.0f s:\n%s\n" % (path, TIMEOUT, log[-3000:]))
            return 1
        if status:
            lines = [line for line in log.splitlines() if line.strip()]
            sys.stderr.write("%s: redis-server cannot load this %s:\n%s\n" % (
                path, "ACL file" if acl else "configuration", "\n".join(lines[-12:])))
            return 1
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    acl = False
    if args and args[0] == "--acl":
        acl = True
        args = args[1:]
    if len(args) != 1:
        sys.stderr.write("usage: quantops-redis-check [--acl] FILE\n")
        return 2
    return check(args[0], acl=acl)


if __name__ == "__main__":
    sys.exit(main())
