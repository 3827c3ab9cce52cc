# -*- coding: utf-8 -*-
# Copyright: quantops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options of plugins/module_utils/postgres.py:postgres_common_argument_spec(): the names, aliases
    # and defaults of community.postgresql's, so one module_defaults group (quantops.platform.postgresql) serves both.
    DOCUMENTATION = r'''
options:
  login_user:
    description:
      - The role the module connects as.
      - With the default and an empty O(login_host), run the task with C(become_user=postgres)
        so that peer authentication on the unix socket accepts it.
    type: str
    default: postgres
    aliases: [ login ]
  login_password:
    description:
      - Password of O(login_user).
      - Left out of the connection when empty, so libpq may use peer authentication or C(~/.pgpass).
      - Never shown in results or error messages.
    type: str
    default: ''
  login_host:
    description:
      - Host name or IP address of the server.
      - Empty means a unix-domain socket (see O(login_unix_socket)).
    type: str
    default: ''
    aliases: [ host ]
  login_port:
    description:
      - TCP port of the server, also the suffix of the unix socket file (C(.s.PGSQL.<port>)).
    type: int
    default: 5432
    aliases: [ port ]
  login_unix_socket:
    description:
      - Directory holding the server's unix socket, for example C(/var/run/postgresql).
      - Used when O(login_host) is empty or C(localhost).
      - Empty means libpq's compiled-in directory (C(/var/run/postgresql) on Debian).
    type: str
    default: ''
    aliases: [ unix_socket ]
  login_db:
    description:
      - Database to connect to. The checks of a module run in this database.
    type: str
    default: quant_platform
    aliases: [ db ]
  ssl_mode:
    description:
      - Whether and how an SSL/TLS TCP connection is negotiated with the server (libpq C(sslmode)).
      - Ignored for unix-socket connections.
      - Across the network use C(verify-full) with O(ca_cert). C(prefer) and C(require) encrypt but do not
        check who the server is.
      - See U(https://www.postgresql.org/docs/current/libpq-ssl.html) for the modes.
    type: str
    default: prefer
    choices: [ allow, disable, prefer, require, verify-ca, verify-full ]
  ca_cert:
    description:
      - File of certificate authority certificates used to verify the server with
        O(ssl_mode=verify-ca) or O(ssl_mode=verify-full) (libpq C(sslrootcert)).
      - For a server set up by the quantops.platform.postgresql role, the CA of the quantops.platform.pki role
        (C(ca.crt) in its C(pki_dir) on the controller, or C(/etc/postgresql/<version>/<cluster>/tls/ca.crt) on the host).
      - With O(ssl_mode=verify-full) across the network, the server's name must be in its certificate.
    type: path
    aliases: [ ssl_rootcert ]
  ssl_cert:
    description:
      - Client certificate file for a server that asks for one (pg_hba method C(cert)) (libpq C(sslcert)).
    type: path
  ssl_key:
    description:
      - Private key of O(ssl_cert) (libpq C(sslkey)). Must not be readable by group or others unless owned by root.
    type: path
  connect_params:
    description:
      - "Further libpq connection parameters, passed to the connection as they are, for example
        C({connect_timeout: 5}) or C({options: '-c search_path=ohlcv'})."
      - C(connect_timeout) (seconds to wait for the connection, C(0) waits forever) is C(10) unless set here.
      - See U(https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS).
    type: dict
    default: {}
  session_role:
    description:
      - Role to switch to after connecting (C(SET ROLE)); the work then runs with that role's privileges.
      - O(login_user) must be a member of it.
    type: str
  statement_timeout:
    description:
      - Longest time any one statement of the module may run (the session's C(statement_timeout)); a statement
        running longer is cancelled and the module fails, or reports that check as failed.
      - An integer is milliseconds; a string may carry a PostgreSQL unit (C(us), C(ms), C(s), C(min), C(h), C(d)),
        for example C(30s) or C(10min). C(0) means no limit.
      - When not set, the module's own limit applies (given in its notes).
    type: raw
requirements:
  - psycopg >= 3.1 on the managed node (C(python3-psycopg) on Debian 12 and later, or C(pip install psycopg[binary]))
notes:
  - Connections identify themselves as C(application_name=ansible-quantops.platform) in C(pg_stat_activity).
'''
