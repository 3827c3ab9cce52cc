"""A small writer for the fault and switchover tests: one INSERT per sequence number, autocommit,
through an endpoint port, and a log of every commit the server acknowledged.

Afterwards the rows present on the (new) leader are compared with that log: an acknowledged commit
that is missing is a lost commit.  Failed attempts (an error instead of an acknowledgement) are
counted with their time, so the longest stretch without a successful write is known.
"""
import threading
import time
import uuid

import psycopg

TABLE = "CREATE TABLE IF NOT EXISTS ha_writer (run text, seq int, at timestamptz DEFAULT clock_timestamp(), PRIMARY KEY (run, seq))"


class Writer:
    def __init__(self, connect, port, interval=0.05):
        self.connect, self.port, self.interval = connect, port, interval
        self.run = uuid.uuid4().hex[:12]
        self.acked, self.errors, self.ok_times, self.servers = [], [], [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        with connect(port) as conn:
            conn.execute(TABLE)

    def _loop(self):
        seq, conn = 0, None
        while not self._stop.is_set():
            seq += 1
            try:
                if conn is None or conn.closed:
                    conn = self.connect(self.port, autocommit=True, prepare_threshold=None)
                server = conn.execute("INSERT INTO ha_writer (run, seq) VALUES (%s, %s) RETURNING host(inet_server_addr())",
                                      (self.run, seq)).fetchone()[0]
                self.acked.append(seq)
                self.ok_times.append(time.monotonic())
                self.servers.append(server)
            except psycopg.Error as error:
                self.errors.append((time.monotonic(), seq, type(error).__name__))
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.2)
            time.sleep(self.interval)
        if conn is not None:
            conn.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)

    def first_ok_after(self, moment, not_server=None):
        """Seconds from moment to the first acknowledged commit (by a server other than not_server)."""
        later = [t for t, server in zip(self.ok_times, self.servers) if t > moment and server != not_server]
        return later[0] - moment if later else None

    def longest_gap(self):
        times = self.ok_times
        return max((b - a for a, b in zip(times, times[1:])), default=None)

    def lost(self, connect):
        """Acknowledged sequence numbers that are not in the table (read through the read-write port)."""
        with connect(5000) as conn:
            present = {row[0] for row in conn.execute("SELECT seq FROM ha_writer WHERE run = %s", (self.run,))}
        return sorted(set(self.acked) - present)
