# Stand-in for ansible-test's get-pip bootstrap (its download host is not reachable here):
# bootstrap pip with ensurepip, then install the requested pip with the host's pip config.
import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
os.environ.pop('PIP_CONFIG_FILE', None)   # ensurepip isolates itself with /dev/null
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
if args and args[0] == 'install':
    args = args[1:]
subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args)
