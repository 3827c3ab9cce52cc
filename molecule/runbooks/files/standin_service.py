# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST FIXTURE - a stand-in for one of the trading platform's services.

The molecule scenario `runbooks` has no real trading services (seed 001's
market-data, risk-manager, execution-engine, signal-bridge are not part of
this collection), so each systemd unit of the scenario runs this small HTTP
server instead.  It exists only so that the services and incident runbooks
can be exercised against real systemd units and real HTTP endpoints; it is
not shipped by any role.

Endpoints (the seeds' URLs):
  GET  /health                              seed 004: {"status": "healthy", ...}
  GET  /metrics                             Prometheus text: the --metric NAME=VALUE samples,
                                            risk_circuit_breaker_active, open orders
  GET  /api/v1/trading/status               seed 004: {"trading_active": ...}
  POST /api/v1/circuit-breaker/activate     seed 001 kill switch
  POST /api/v1/circuit-breaker/deactivate   seed 001
  POST /api/v1/orders/cancel                cancel all open orders (the kill switch's step 2)
  POST /api/v1/trading/enable|disable       seed 001 step 7 / seed 004 stop
State (circuit breaker, open orders, trading) is kept in --state-file so a
test can read what the runbook did, also after the unit was stopped.
"""

import argparse
import datetime
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def load_state(path, open_orders):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {'circuit_breaker_active': False, 'open_orders': open_orders, 'cancelled_orders': 0,
                'trading_active': True, 'calls': []}


def save_state(path, state):
    tmp = path + '.tmp'
    with open(tmp, 'w') as handle:
        json.dump(state, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--name', required=True)
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--bind', default='127.0.0.1')
    parser.add_argument('--state-file', required=True)
    parser.add_argument('--metric', action='append', default=[], help='NAME=VALUE sample served on /metrics')
    parser.add_argument('--open-orders', type=int, default=0)
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.timezone.utc)

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code, body, content_type='application/json'):
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header('Content-Type', content_type)
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - http.server's naming
            state = load_state(args.state_file, args.open_orders)
            if self.path == '/health':
                self._send(200, {'status': 'healthy', 'service': args.name, 'version': 'test-fixture',
                                 'timestamp': datetime.datetime.now(datetime.timezone.utc).isoformat(),
                                 'uptime_seconds': int((datetime.datetime.now(datetime.timezone.utc) - started).total_seconds())})
            elif self.path == '/metrics':
                lines = ['%s %s' % tuple(m.split('=', 1)) for m in args.metric]
                lines.append('risk_circuit_breaker_active %d' % (1 if state['circuit_breaker_active'] else 0))
                lines.append('execution_open_orders %d' % state['open_orders'])
                self._send(200, '\n'.join(lines) + '\n', 'text/plain; version=0.0.4')
            elif self.path == '/api/v1/trading/status':
                self._send(200, {'trading_active': state['trading_active'],
                                 'circuit_breaker_active': state['circuit_breaker_active']})
            else:
                self._send(404, {'error': 'not found'})

        def do_POST(self):  # noqa: N802
            state = load_state(args.state_file, args.open_orders)
            path = self.path
            if path == '/api/v1/circuit-breaker/activate':
                state['circuit_breaker_active'] = True
                state['trading_active'] = False
            elif path == '/api/v1/circuit-breaker/deactivate':
                state['circuit_breaker_active'] = False
            elif path == '/api/v1/orders/cancel':
                state['cancelled_orders'] += state['open_orders']
                state['open_orders'] = 0
            elif path == '/api/v1/trading/enable':
                if state['circuit_breaker_active']:
                    self._send(409, {'error': 'circuit breaker is active'})
                    return
                state['trading_active'] = True
            elif path == '/api/v1/trading/disable':
                state['trading_active'] = False
            else:
                self._send(404, {'error': 'not found'})
                return
            state['calls'].append({'path': path, 'time': datetime.datetime.now(datetime.timezone.utc).isoformat()})
            save_state(args.state_file, state)
            self._send(200, {k: v for k, v in state.items() if k != 'calls'})

        def log_message(self, fmt, *fargs):
            print('%s %s' % (args.name, fmt % fargs), flush=True)

    if not os.path.exists(args.state_file):
        save_state(args.state_file, load_state(args.state_file, args.open_orders))
    ThreadingHTTPServer((args.bind, args.port), Handler).serve_forever()


if __name__ == '__main__':
    main()
