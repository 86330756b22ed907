"""The version of a batch's staged data, kept by the database itself.

``StagingBatch.content_version`` moves whenever the staged rows of the batch change:
every INSERT and DELETE of a staged row (a customer, a balance, a device, a metrics
period, a transaction, an event) and every UPDATE that changes anything but the
bookkeeping the console writes while sending (``BOOKKEEPING``: a customer's outcome and
"send again" flag, a history row's ``sent_at``). Triggers do it, so the version moves
whatever the door: the ORM, ``QuerySet.update``, raw SQL, a shell, psql.

Validation records the version it judged (``validated_version``), approval the version it
froze (``approved_version``), and submission compares: what a job sends was built from
exactly the rows that were approved, proven in constant time whatever the size of the
batch, rather than by rebuilding every request body to compare fingerprints. Imports and
validation record the version at which every staged row's own entry is known to pass the
contract (``entries_checked_version``, see ``customers.services.entries``), so validation
need not check those entries again.

**What a change does to the version.** A change moves the version only while the version
is one that a step recorded (``content_version`` equals ``validated_version``,
``approved_version`` or ``entries_checked_version``); otherwise it already differs from
every recorded one, and a new number would tell nobody anything. So an import of a million
rows in a thousand statements moves it once, not a thousand times: each move is a new
version of the batch's row, and a long transaction cannot clean up the old ones, which
every staged row's foreign-key check on the batch then walks past (a thousand moves made
staging a million rows five times slower). Before deciding, the trigger locks the batch's
row (``FOR NO KEY UPDATE``, as an import, a validation or an approval locks it ``FOR
UPDATE``): a validation or approval under way finishes first, and the trigger then sees
what it recorded.

On PostgreSQL the triggers run once per statement, over the statement's transition
tables (an UPDATE compares each row's old and new values column by column, the bookkeeping
columns left out, and stops at the first row that changed; each staged table has its own
UPDATE function, written from its columns). SQLite has only row triggers, whose
UPDATE of the batch's row finds nothing to do once the version moved; an UPDATE of a
staged row fires only when a watched column changes. SQLite writes one transaction at a
time, so it needs no lock.

The triggers are built from the staged models' columns when the migration that creates
them runs (``install``); a migration that adds or alters a column of a staged model
calls ``install`` again, so the triggers watch the new column (and, on SQLite, exist at all:
SQLite rebuilds a table to alter it, which drops its triggers).
``tests/customers/test_versioning.py`` changes every column of every staged table and
fails on one that is not watched.
"""

from __future__ import annotations

BATCH_TABLE = "customers_stagingbatch"

# Columns the console writes after approval, while and after sending: never what a
# request body is made of, so a change to them is not a change to the batch's data.
BOOKKEEPING: dict[str, frozenset[str]] = {
    "StagedCustomer": frozenset(
        {
            "outcome",
            "outcome_at",
            "outcome_error",
            "outcome_job_id",
            "outcome_chunk_id",
            "outcome_maybe_twice",
            "outcome_other_job_id",
            "resend",
        }
    ),
    "StagedBalance": frozenset(),
    "StagedDevice": frozenset(),
    "StagedMetric": frozenset(),
    "StagedTransaction": frozenset({"sent_at"}),
    "StagedEvent": frozenset({"sent_at"}),
}

_MOVE_FUNCTION = "customers_batch_version_move"
_FUNCTION = "customers_batch_version_bump"
_TRUNCATE_FUNCTION = "customers_batch_version_bump_all"

# The batch's columns where a step records the version it saw (``_recorded``).
RECORDED_VERSIONS = ("validated_version", "approved_version", "entries_checked_version")


def _recorded(batch_columns: set[str], compare: str) -> str:
    """The condition "the version is one a step recorded", over the recording columns the
    batch table has when the triggers are made (a migration's historical model)."""
    compared = [
        f"content_version {compare} {column}"
        for column in RECORDED_VERSIONS
        if column in batch_columns
    ]
    return "(" + " OR ".join(compared) + ")"


def _pg_functions(batch_columns: set[str]) -> str:
    recorded = _recorded(batch_columns, "=")
    return f"""
CREATE OR REPLACE FUNCTION {_MOVE_FUNCTION}(changed bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF changed IS NULL THEN
        RETURN;
    END IF;
    -- Wait for a step that holds the batch (validation, approval) to record its version.
    PERFORM 1 FROM {BATCH_TABLE} WHERE id = ANY(changed) ORDER BY id FOR NO KEY UPDATE;
    UPDATE {BATCH_TABLE} SET content_version = content_version + 1
     WHERE id = ANY(changed)
       AND {recorded};
END
$$;
CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT batch_id) INTO changed FROM new_rows;
    ELSE
        SELECT array_agg(DISTINCT batch_id) INTO changed FROM old_rows;
    END IF;
    PERFORM {_MOVE_FUNCTION}(changed);
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION {_TRUNCATE_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {BATCH_TABLE} SET content_version = content_version + 1;
    RETURN NULL;
END
$$;
"""  # noqa: S608 - the names are the models' tables and columns, never input


def _update_function_name(table: str) -> str:
    return f"{table}_version_changed"


def _pg_update_function(table: str, watched: list[str]) -> str:
    """The function of ``table``'s UPDATE trigger: the batches with a row whose watched
    columns changed, compared column by column (a bookkeeping-only statement, such as a
    chunk's outcomes, compares every row and finds none)."""
    old = ", ".join(f"o.{_quoted(column)}" for column in watched)
    new = ", ".join(f"n.{_quoted(column)}" for column in watched)
    return f"""
CREATE OR REPLACE FUNCTION {_update_function_name(table)}() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed bigint[];
BEGIN
    -- Per batch, stop at its first row that changed (validation changes them all).
    SELECT array_agg(touched.batch_id) INTO changed
      FROM (SELECT batch_id FROM old_rows UNION SELECT batch_id FROM new_rows) touched
     WHERE EXISTS (
           SELECT 1 FROM old_rows o FULL JOIN new_rows n ON n.id = o.id
            WHERE touched.batch_id IN (o.batch_id, n.batch_id)
              AND (o.id IS NULL OR n.id IS NULL OR ({old}) IS DISTINCT FROM ({new}))
       );
    PERFORM {_MOVE_FUNCTION}(changed);
    RETURN NULL;
END
$$;"""  # noqa: S608 - the names are the models' columns, never input


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _trigger_name(table: str, event: str) -> str:
    return f"{table}_version_{event}"


def _postgresql(table: str, watched: list[str]) -> list[str]:
    quoted = _quoted(table)
    return [
        _pg_update_function(table, watched),
        f"CREATE TRIGGER {_trigger_name(table, 'insert')} AFTER INSERT ON {quoted} "
        f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()",
        f"CREATE TRIGGER {_trigger_name(table, 'delete')} AFTER DELETE ON {quoted} "
        f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()",
        f"CREATE TRIGGER {_trigger_name(table, 'update')} AFTER UPDATE ON {quoted} "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        f"EXECUTE FUNCTION {_update_function_name(table)}()",
        f"CREATE TRIGGER {_trigger_name(table, 'truncate')} AFTER TRUNCATE ON {quoted} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {_TRUNCATE_FUNCTION}()",
    ]


def _sqlite(table: str, watched: list[str], recorded: str) -> list[str]:
    bump = f"UPDATE {BATCH_TABLE} SET content_version = content_version + 1"  # noqa: S608
    quoted = _quoted(table)
    changed = " OR ".join(
        f"OLD.{_quoted(column)} IS NOT NEW.{_quoted(column)}" for column in watched
    )
    return [
        f"CREATE TRIGGER {_trigger_name(table, 'insert')} AFTER INSERT ON {quoted} "
        f"BEGIN {bump} WHERE id = NEW.batch_id AND {recorded}; END",
        f"CREATE TRIGGER {_trigger_name(table, 'delete')} AFTER DELETE ON {quoted} "
        f"BEGIN {bump} WHERE id = OLD.batch_id AND {recorded}; END",
        f"CREATE TRIGGER {_trigger_name(table, 'update')} AFTER UPDATE ON {quoted} "
        f"WHEN {changed} BEGIN {bump} WHERE id IN (OLD.batch_id, NEW.batch_id) "
        f"AND {recorded}; END",
    ]


def _drop(vendor: str, table: str) -> list[str]:
    events = ("insert", "delete", "update", "truncate") if vendor == "postgresql" else (
        "insert", "delete", "update",
    )  # fmt: skip
    suffix = f" ON {_quoted(table)}" if vendor == "postgresql" else ""
    return [f"DROP TRIGGER IF EXISTS {_trigger_name(table, event)}{suffix}" for event in events]


def statements(apps, vendor: str) -> list[str]:
    """The SQL that (re)creates every staged table's version triggers, from the columns the
    staged models have in ``apps`` (a migration's historical models)."""
    batch = apps.get_model("customers", "StagingBatch")
    batch_columns = {field.column for field in batch._meta.concrete_fields}
    found = [] if vendor != "postgresql" else [_pg_functions(batch_columns)]
    # The version moves only while a step's record holds it (see the module's docstring).
    recorded = _recorded(batch_columns, "IS")
    for model_name, ignored in BOOKKEEPING.items():
        model = apps.get_model("customers", model_name)
        table = model._meta.db_table
        columns = [field.column for field in model._meta.concrete_fields]
        unknown = ignored - set(columns)
        if unknown:
            raise ValueError(f"{table} has no column {sorted(unknown)}")
        watched = [column for column in columns if column not in ignored]
        found += _drop(vendor, table)
        if vendor == "postgresql":
            found += _postgresql(table, watched)
        else:
            found += _sqlite(table, watched, recorded)
    return found


def install(apps, schema_editor) -> None:
    """A migration's ``RunPython`` step: create (or recreate) the version triggers."""
    vendor = schema_editor.connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"no version triggers for {vendor}")
    for statement in statements(apps, vendor):
        schema_editor.execute(statement)


def uninstall(apps, schema_editor) -> None:
    """The reverse of ``install``: drop the triggers (and PostgreSQL's functions)."""
    vendor = schema_editor.connection.vendor
    for model_name in BOOKKEEPING:
        table = apps.get_model("customers", model_name)._meta.db_table
        for statement in _drop(vendor, table):
            schema_editor.execute(statement)
        if vendor == "postgresql":
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {_update_function_name(table)}()")
    if vendor == "postgresql":
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {_FUNCTION}()")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {_TRUNCATE_FUNCTION}()")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {_MOVE_FUNCTION}(bigint[])")
