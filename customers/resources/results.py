"""What a staging resource reports: every problem with a file, by row and column, and the
counts and preview rows of what it read."""

from __future__ import annotations

from collections.abc import Callable

from import_export.results import Result

from console.messages import as_message
from customers.models import OnProblems, StagingBatch
from customers.row_problems import PROBLEMS_SHOWN, RowProblem, more_problems_text


class StagingResult(Result):
    """What an import found: counts, every problem, and a few rows to preview."""

    def __init__(self, *, kind: str, file_name: str = "", batch: StagingBatch | None = None):
        super().__init__()
        # What to do with flaggable problems (``OnProblems``); set by the resource.
        self.on_problems: str = OnProblems.REFUSE
        self.flaggable_count = 0
        # The row being read (number, cells) and how to read its id from the cells, so a
        # problem found while reading a row names its id; set by the resource.
        self.reading: tuple[int, list] | None = None
        self.record_of: Callable[[list], str] | None = None
        self.kind = kind
        self.file_name = file_name or ""
        self.batch = batch
        self.encoding = ""
        self.row_count = 0
        self.staged: dict[str, int] = {}
        self.problems: list[RowProblem] = []
        self.sample_headers: list[str] = []
        self.sample_rows: list[list[str]] = []
        # The file's name of each column, when a mapping renamed them.
        self.labels: dict[str, str] = {}
        # The mapping document the file was read with; one to offer when it had none.
        self.mapping_document: dict | None = None
        self.suggested_mapping: dict | None = None

    def add_problem(
        self, row: int | None, column: str, message: object, *, record=None, is_flaggable=False
    ) -> None:
        """``message``: a ``Message``, a message constant, what carries one (a
        ``ContractError``, a ``FieldProblem``, an exception raised with one), or words kept
        as they are (``console.messages.as_message``). ``record``: the row's id (by default
        read from the row being read, if it is this one); ``is_flaggable``: see
        ``RowProblem``."""
        # A mapped file's problems name the file's own columns.
        column = self.labels.get(column, column)
        if record is None:
            reading = self.reading
            is_read = reading is not None and row == reading[0] and self.record_of is not None
            record = self.record_of(reading[1]) if is_read else ""
        self.flaggable_count += is_flaggable
        self.problems.append(RowProblem(row, column, as_message(message), record, is_flaggable))

    def problems_sort(self) -> None:
        """The problems in the order of the rows (the file's own first): checks across rows
        find theirs after the rows are read."""
        self.problems.sort(key=lambda problem: -1 if problem.row is None else problem.row)

    def has_errors(self) -> bool:
        """Whether the file is refused: any problem but those the operator chose to stage
        and leave for validation to flag (``on_problems``)."""
        if self.base_errors or self.has_unstorable_problems:
            return True
        return self.flaggable_count > 0 and self.on_problems != OnProblems.FLAG

    @property
    def has_unstorable_problems(self) -> bool:
        return len(self.problems) > self.flaggable_count

    def has_validation_errors(self) -> bool:
        return False

    def messages(self, limit: int | None = None) -> list[str]:
        """Every problem (or the first ``limit``) as one line that names the file, row and
        column."""
        return [problem.line(self.file_name) for problem in self.problems[:limit]]

    @property
    def shown_problems(self) -> list[RowProblem]:
        """The problems a page, a command or an answer lists (see ``PROBLEMS_SHOWN``)."""
        return self.problems[:PROBLEMS_SHOWN]

    @property
    def hidden_problem_count(self) -> int:
        return max(0, self.problem_count - PROBLEMS_SHOWN)

    @property
    def shown_lines(self) -> list[str]:
        """The first ``PROBLEMS_SHOWN`` problems as lines."""
        return self.messages(PROBLEMS_SHOWN)

    @property
    def more_problems(self) -> str:
        """What ends a list cut at ``PROBLEMS_SHOWN`` (empty when nothing is cut)."""
        hidden = self.hidden_problem_count
        return more_problems_text(hidden) if hidden else ""

    def shown_messages(self) -> list[str]:
        """The first ``PROBLEMS_SHOWN`` problems as lines, and one that counts the rest."""
        return self.shown_lines + ([self.more_problems] if self.more_problems else [])

    @property
    def problem_count(self) -> int:
        return len(self.problems)

    @property
    def staged_total(self) -> int:
        return sum(self.staged.values())
