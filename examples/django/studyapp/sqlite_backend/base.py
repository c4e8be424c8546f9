"""Django's SQLite backend plus the study's per-connection settings.

Django 5.1 added OPTIONS["transaction_mode"] ("IMMEDIATE" makes atomic()
begin with BEGIN IMMEDIATE). Debian 12 ships Django 3.2, so this subclass
does the same through the hook every Django version since 2.0 calls when
atomic() opens a transaction on SQLite: _start_transaction_under_autocommit.
It also applies the per-connection PRAGMAs (synchronous, and the rollback
journal modes that are not stored in the file).
"""
from django.db.backends.sqlite3 import base

# Journal modes that last only as long as the connection; WAL and DELETE are
# properties of the file and are set by `manage.py study_setup`.
PER_CONNECTION_JOURNAL_MODES = ("truncate", "persist")


class DatabaseWrapper(base.DatabaseWrapper):
    def _study(self):
        return self.settings_dict.get("STUDY", {})

    def get_new_connection(self, conn_params):
        conn = super().get_new_connection(conn_params)
        study = self._study()
        mode = study.get("journal_mode")
        if mode in PER_CONNECTION_JOURNAL_MODES:
            conn.execute("PRAGMA journal_mode = %s" % mode)
        sync = study.get("synchronous")
        if sync:
            conn.execute("PRAGMA synchronous = %s" % sync)
        return conn

    def _start_transaction_under_autocommit(self):
        # A deferred transaction starts as a reader and must upgrade its lock
        # at the first write; SQLite refuses the upgrade at once (no busy
        # wait) when another connection writes. IMMEDIATE takes the write
        # lock up front, where the busy timeout applies.
        if self._study().get("txlock") == "immediate":
            self.cursor().execute("BEGIN IMMEDIATE")
        else:
            self.cursor().execute("BEGIN")
