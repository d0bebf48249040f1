"""Mutation testing of the core modules: does the suite fail when the code is wrong?

Each module in ``config.MODULES`` is parsed, and every small change below is made to it one
at a time; for each change (a mutant) the module's mapped tests run with ``pytest -x -q``.
A failing run (or one over the time limit) kills the mutant; a passing one means no test
notices that change. Two workers each run on their own copy of the tree, so the real tree
is never modified; a worker (``worker.py``) forks a child per mutant from a process that has
pytest and Django loaded. A first run of the whole suite records which test runs which line
(``trace_plugin.py``, coverage.py contexts) and how long each takes; a mutant runs only the
tests that run its line, fastest first, and first of all the test that killed the last mutant
of the same function.

Changes: ``<``↔``<=``, ``>``↔``>=``, ``==``↔``!=``, ``in``↔``not in``, ``is``↔``is not``,
``and``↔``or``, ``+``↔``-``, integer constant +1, ``True``↔``False``, a string constant
without a space emptied (codes and names; messages and SQL are left alone), ``return x`` → ``return None``, ``not x`` → ``x``, and a call statement,
augmented assignment, ``raise``, ``continue`` or ``break`` dropped.

    .venv/bin/python -m tests.mutation.mutate [--module beacons/counting/buckets.py] [--workers 2]
"""

import argparse
import ast
import copy
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue

from tests.mutation import config
from tests.mutation.trace_plugin import IMPORT

ROOT = Path(__file__).resolve().parents[2]
PYTEST = [
    "-m",
    "pytest",
    "-x",
    "-q",
    "-p",
    "no:randomly",
    "-p",
    "no:xdist",
    "-p",
    "no:hypothesispytest",
    "-m",
    "not serial and not browser",
]
POSTGRES_URL = f"postgres://postgres@127.0.0.1:5432/beacons_mutate_{os.getpid()}_{{worker}}"

SWAPS = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.And: ast.Or,
    ast.Or: ast.And,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
}
SYMBOLS = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.And: "and",
    ast.Or: "or",
    ast.Add: "+",
    ast.Sub: "-",
}


@dataclass(frozen=True)
class Mutant:
    path: str
    line: int
    change: str
    source: str  # the whole mutated module
    function: str = ""  # qualified name of the function (or class) it is in, "" at module level
    text: str = ""  # the changed line, stripped
    end_line: int = 0  # the last line of the changed node


def _skipped_constants(tree: ast.AST) -> set[int]:
    """Constants not worth a mutant: docstrings, f-string pieces and annotations (no behaviour),
    decorator arguments (cache sizes) and prose strings (messages and SQL, which hold a space:
    emptying SQL only crashes; identifiers and codes, which hold none, are mutated)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " " in node.value:
            skipped.add(id(node))
        for decorator in getattr(node, "decorator_list", []):
            skipped.update(id(part) for part in ast.walk(decorator))
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        ):
            skipped.add(id(body[0].value))
        if isinstance(node, ast.JoinedStr):
            skipped.update(id(part) for part in ast.walk(node))
        for annotation in (getattr(node, "annotation", None), getattr(node, "returns", None)):
            if annotation is not None:
                skipped.update(id(part) for part in ast.walk(annotation))
    return skipped


def _changes(tree: ast.AST):
    """Yield (node id, line, description, apply) for each possible change; ``apply`` mutates a copy's node."""
    skipped = _skipped_constants(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for index, op in enumerate(node.ops):
                if type(op) in SWAPS:
                    new = SWAPS[type(op)]
                    yield (
                        node,
                        f"{SYMBOLS[type(op)]} → {SYMBOLS[new]}",
                        lambda n, i=index, new=new: n.ops.__setitem__(i, new()),
                    )
        elif isinstance(node, (ast.BoolOp, ast.BinOp)) and type(node.op) in SWAPS:
            new = SWAPS[type(node.op)]
            yield node, f"{SYMBOLS[type(node.op)]} → {SYMBOLS[new]}", lambda n, new=new: setattr(n, "op", new())
        elif isinstance(node, ast.Constant) and id(node) not in skipped:
            value = node.value
            if isinstance(value, bool):
                yield node, f"{value} → {not value}", lambda n: setattr(n, "value", not n.value)
            elif isinstance(value, int):
                yield node, f"{value} → {value + 1}", lambda n: setattr(n, "value", n.value + 1)
            elif isinstance(value, str) and value:
                shown = value if len(value) <= 30 else value[:27] + "..."
                yield node, f"{shown!r} → ''", lambda n: setattr(n, "value", "")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "not x → x", None  # applied by the parent rewrite below
        elif (
            isinstance(node, ast.Return)
            and node.value is not None
            and not (isinstance(node.value, ast.Constant) and node.value.value is None)
        ):
            yield node, "return x → return None", lambda n: setattr(n, "value", ast.Constant(None))
        elif isinstance(node, (ast.AugAssign, ast.Raise, ast.Continue, ast.Break)) or (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
        ):
            yield (
                node,
                f"{type(node).__name__.lower() if not isinstance(node, ast.Expr) else 'call'} statement dropped",
                "drop",
            )


class _Apply(ast.NodeTransformer):
    """Rewrite the node at ``target`` (its index in ast.walk order) in a copy of the module."""

    def __init__(self, target: int, how):
        self.target, self.how, self.index = target, how, {}

    def visit(self, node):
        if self.index.get(id(node)) == self.target:
            if self.how == "drop":
                return ast.Pass()
            if self.how is None:  # not x → x
                return node.operand
            self.how(node)
            return node
        return self.generic_visit(node)


def _enclosing_names(tree: ast.AST) -> dict[int, str]:
    """Node id → qualified name of the innermost function or class holding it ("" at module level)."""
    names: dict[int, str] = {}

    def visit(node, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = name
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = f"{name}.{child.name}" if name else child.name
            names[id(child)] = inner
            visit(child, inner)

    visit(tree, "")
    return names


def mutation_sites(path: str) -> list[tuple[str, str, str, int]]:
    """(function, stripped line, change, line) of every mutant of ``path``, without building
    the mutated modules (cheap enough for the suite's check of the set-asides)."""
    original = (ROOT / path).read_text()
    lines, tree = original.splitlines(), ast.parse(original)
    names = _enclosing_names(tree)
    return [
        (names.get(id(node), ""), lines[node.lineno - 1].strip(), change, node.lineno)
        for node, change, _ in _changes(tree)
    ]


def mutants_of(path: str) -> list[Mutant]:
    original = (ROOT / path).read_text()
    lines = original.splitlines()
    tree = ast.parse(original)
    positions = {id(node): i for i, node in enumerate(ast.walk(tree))}
    names = _enclosing_names(tree)
    mutants = []
    for node, change, how in list(_changes(tree)):
        clone = copy.deepcopy(tree)
        apply = _Apply(positions[id(node)], how)
        apply.index = {id(n): i for i, n in enumerate(ast.walk(clone))}
        mutated = ast.fix_missing_locations(apply.visit(clone))
        text = lines[node.lineno - 1].strip()
        mutants.append(
            Mutant(path, node.lineno, change, ast.unparse(mutated), names.get(id(node), ""), text, node.end_lineno)
        )
    return mutants


@dataclass(frozen=True)
class FunctionSpan:
    """A function not nested in another: its header (decorators, signature, argument defaults)
    runs at import, under no test; its body runs under the tests that call it."""

    qualname: str  # "bucket_start", "ValueCap.admit"
    first: int  # the first decorator's line, or the def's
    header_end: int  # the last line before the body
    last: int


def _outermost_functions(path: str) -> list[FunctionSpan]:
    spans = []

    def visit(node, inside: bool, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            is_function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            name = f"{prefix}{child.name}" if hasattr(child, "name") else prefix
            if is_function and not inside:
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                spans.append(FunctionSpan(name, first, child.body[0].lineno - 1, child.end_lineno))
            nested = f"{name}." if isinstance(child, ast.ClassDef) and not inside else prefix
            visit(child, inside or is_function, nested)

    visit(ast.parse((ROOT / path).read_text()), False, "")
    return spans


def _span_of(mutant: Mutant, functions: list[FunctionSpan]) -> FunctionSpan | None:
    return next((f for f in functions if f.first <= mutant.line <= f.last), None)


def _lines_reading(path: str, line: int) -> set[int]:
    """The lines of the module that read a name its module-level statement at ``line`` assigns
    (a constant, a table of labels): their tests are the likely killers of a change there, so
    they run first (the rest still run: another module may read the name)."""
    tree = ast.parse((ROOT / path).read_text())
    statement = next((s for s in tree.body if s.lineno <= line <= s.end_lineno), None)
    if statement is None:
        return set()
    targets = getattr(statement, "targets", None) or [getattr(statement, "target", None)]
    names = {n.id for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)}
    return {
        n.lineno for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in names
    }


def _called_at_import(path: str) -> set[str]:
    """Names the module's import calls: decorators, and calls in module-level statements, class
    bodies and argument defaults. Swapping such a function's code after import changes nothing
    it already did."""
    names: set[str] = set()

    def called(node) -> None:
        for part in ast.walk(node):
            if isinstance(part, ast.Call) and isinstance(part.func, ast.Name):
                names.add(part.func.id)

    def visit(body) -> None:
        for statement in body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                for decorator in statement.decorator_list:
                    called(decorator)
                    if isinstance(decorator, ast.Name):
                        names.add(decorator.id)
                if isinstance(statement, ast.ClassDef):
                    visit(statement.body)
                else:
                    called(statement.args)
            else:
                called(statement)

    visit(ast.parse((ROOT / path).read_text()).body)
    return names


def _runs_at_import(path: str, span: FunctionSpan, trace: "Trace") -> bool:
    """Whether importing the module runs the function (a decorator, say): what it did then, every
    test of the module relies on."""
    return span.qualname.split(".")[0] in _called_at_import(path) or trace.runs_at_import(path, span)


def _patch_of(mutant: Mutant, functions: list[FunctionSpan], trace: "Trace") -> dict | None:
    """What a ``preloaded`` worker needs to run the mutant without importing anything: the
    function to swap, when the change is inside the body of a function the module's import
    does not run (None otherwise: a fresh child imports the mutated file)."""
    span = _span_of(mutant, functions)
    if span is None or mutant.line <= span.header_end:
        return None
    if _runs_at_import(mutant.path, span, trace):
        return None
    module = mutant.path.removesuffix(".py").replace("/", ".")
    return {"module_name": module, "path": mutant.path, "source": mutant.source, "qualname": span.qualname}


def _copy_tree(worker: int) -> Path:
    """A copy of what git tracks (tests read the Makefile, .gitignore and bench/ too), in a
    repository of its own so git-reading tests answer as in the real tree."""
    target = Path(tempfile.mkdtemp(prefix=f"beacons-mutate-{worker}-"))
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in sorted({line.split("/", 1)[0] for line in tracked.splitlines()}):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to((ROOT / ".venv").resolve())
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    return target


def _environment(tree: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # a stale .pyc must never stand in for a mutant
    # One SQLite test database per tree copy (not per forked run), so the worker's runs reuse it
    # and two mutation runs at once never share one.
    env["BEACONS_TEST_DATABASE"] = str(tree / "mutate-test.sqlite3")
    env.pop("DATABASE_URL", None)
    return env


def _databases(path: str, worker: int) -> list[str]:
    """DATABASE_URL of each run of a mutant's tests: SQLite (""), then PostgreSQL for the
    modules with a PostgreSQL-only path."""
    return ["", POSTGRES_URL.format(worker=worker)] if path in config.POSTGRES else [""]


@dataclass
class Trace:
    """Which tests run each line of each module (by repository path), and each test's seconds."""

    lines: dict[str, dict[int, set[str]]]
    durations: dict[str, float]
    unsteady: set[str] = field(default_factory=set)  # failed in the traced run, passed alone: never a killer

    def tests_of(self, path: str, lines) -> set[str]:
        by_line = self.lines.get(path, {})
        return set().union(*(by_line.get(line, set()) for line in lines)) - self.unsteady - {IMPORT}

    def runs_at_import(self, path: str, span: "FunctionSpan") -> bool:
        by_line = self.lines.get(path, {})
        return any(IMPORT in by_line.get(line, ()) for line in range(span.header_end + 1, span.last + 1))


def _trace(tree: Path, paths: list[str], tests: list[str]) -> Trace | None:
    """Run the whole suite once (two processes) recording lines and durations; then, for a
    PostgreSQL module, its test files on PostgreSQL. None when a test fails without a mutant."""
    out = tree / "mutate-trace"
    runs = [(["-n", "2", "-m", "not serial and not browser", *tests], "")]
    runs += [(["-m", "not serial and not browser", *config.POSTGRES[p]], POSTGRES_URL.format(worker="trace"))
             for p in paths if p in config.POSTGRES]  # fmt: skip
    trace = Trace({path: {} for path in paths}, {})
    for arguments, database in runs:
        env = {
            **_environment(tree),
            "MUTATE_TRACE_FILES": os.pathsep.join(str(tree / p) for p in paths),
            "MUTATE_TRACE_OUT": str(out),
        }
        if database:
            env["DATABASE_URL"] = database
        for old in tree.glob("mutate-trace.*"):
            old.unlink()
        command = [
            str(tree / ".venv/bin/python"),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "tests.mutation.trace_plugin",
        ]
        result = subprocess.run(
            [*command, "--create-db", *arguments],
            cwd=tree,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if result.returncode != 0:
            failed = _failed_tests(result.stdout)
            if not failed or _run_fails(tree, env, [*command[:-2], *failed]):
                print(result.stdout[-3000:], file=sys.stderr)
                return None
            # A test that fails beside the others and passes alone depends on timing (a loaded
            # machine): a mutant it "kills" would prove nothing, so it runs no mutant.
            print(f"failed in the traced run but passed alone, left out: {' '.join(failed)}", file=sys.stderr)
            trace.unsteady.update(failed)
        for part in tree.glob("mutate-trace.*"):
            recorded = json.loads(part.read_text())
            for path in paths:
                by_line = trace.lines[path]
                for line, tests in recorded["lines"].get(str((tree / path).resolve()), {}).items():
                    by_line.setdefault(int(line), set()).update(tests)
            for test, seconds in recorded["durations"].items():
                trace.durations[test] = max(trace.durations.get(test, 0.0), seconds)
    return trace


def _failed_tests(output: str) -> list[str]:
    """The node ids pytest's short summary names as failed or in error."""
    return re.findall(r"^(?:FAILED|ERROR) (\S+::\S+)", output, flags=re.MULTILINE)


def _run_fails(tree: Path, env: dict, command: list[str]) -> bool:
    return (
        subprocess.run(command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0
    )


def _tests_for(mutant: Mutant, trace: Trace, functions: list[FunctionSpan]) -> set[str]:
    """The tests that run the mutated line. A module-level line, a function's header and the body
    of a function the import calls (a decorator) run at import, under whichever test imported the
    module first, so for those: the tests that run any line of the module, or of the function's
    body for a header."""
    span = _span_of(mutant, functions)
    if span is None or _runs_at_import(mutant.path, span, trace):
        return trace.tests_of(mutant.path, trace.lines.get(mutant.path, {}))
    if mutant.line <= span.header_end:
        return trace.tests_of(mutant.path, range(span.header_end + 1, span.last + 1))
    return trace.tests_of(mutant.path, range(mutant.line, mutant.end_line + 1))


def _set_aside_key(entry: dict) -> tuple:
    return entry["file"], entry["function"], entry["text"], entry["change"]


def _is_set_aside(mutant: Mutant) -> dict | None:
    """The SET_ASIDE entry for this mutant: matched on the file, the function, the stripped line
    and the change, never the line number, so an entry outlives code moving above it."""
    for entry in config.SET_ASIDE:
        if _set_aside_key(entry) == (mutant.path, mutant.function, mutant.text, mutant.change):
            return entry
    return None


def stale_set_asides(path: str) -> list[dict]:
    """Entries for ``path`` that match no mutant any more (the line or its function changed):
    they must be looked up again or removed, not silently stop applying."""
    present = {(path, function, text, change) for function, text, change, _ in mutation_sites(path)}
    return [e for e in config.SET_ASIDE if e["file"] == path and _set_aside_key(e) not in present]


def _drop_postgres_databases() -> None:
    """This run's PostgreSQL test databases (named by its process id) are of no use to the next."""
    import psycopg

    prefix = POSTGRES_URL.rsplit("/", 1)[1].split("{")[0]
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
        names = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [f"%{prefix}%"]).fetchall()
        for (name,) in names:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')


FIRST_STAGE = 20


def _stages(ordered: list[str]) -> list[list[str]]:
    """The fastest tests first, alone: most mutants fail one of them, and a run that names few
    tests collects few test files, which costs more than the tests themselves."""
    return [ordered[:FIRST_STAGE], ordered[FIRST_STAGE:]] if len(ordered) > FIRST_STAGE else [ordered]


def run(paths: list[str], workers: int, tests: list[str] = ()) -> int:
    trees: Queue = Queue()
    for worker in range(workers):
        trees.put((worker, _copy_tree(worker)))
    rows, survivors, set_aside = [], [], []
    began = time.monotonic()
    try:
        worker, tree = trees.get()
        trace = _trace(tree, paths, list(tests))
        trees.put((worker, tree))
        if trace is None:
            print("the suite fails without any mutant; fix it first", file=sys.stderr)
            return 2
        print(f"traced the suite in {(time.monotonic() - began) / 60:.1f} min", file=sys.stderr)
        forks = {
            (tree, kind): subprocess.Popen(
                [str(tree / ".venv/bin/python"), str(tree / "tests/mutation/worker.py"), kind],
                cwd=tree,
                env=_environment(tree),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for worker, tree in list(trees.queue)
            for kind in ("fresh", "preloaded")
        }

        def ask(tree: Path, kind: str, job: dict) -> dict:
            fork = forks[(tree, kind)]
            fork.stdin.write(json.dumps(job) + "\n")
            fork.stdin.flush()
            return json.loads(fork.stdout.readline())

        killers: dict[tuple[str, str], str] = {}  # (module, function) → the test that last killed a mutant there
        for path in paths:
            module_began = time.monotonic()
            mutants = mutants_of(path)
            print(f"{path}: {len(mutants)} mutants", file=sys.stderr)
            for entry in stale_set_asides(path):
                print(
                    f"  stale set-aside (matches no mutant): {entry['function']}: {entry['text']!r} {entry['change']}",
                    file=sys.stderr,
                )
            functions = _outermost_functions(path)

            def attempt(mutant: Mutant) -> tuple[Mutant, bool]:
                if _is_set_aside(mutant):  # equivalent: no test can kill it, and running them all costs most
                    return mutant, False
                tests = _tests_for(mutant, trace, functions)
                if not tests:
                    print(f"  SURVIVED {mutant.path}:{mutant.line} {mutant.change} (no test runs it)", file=sys.stderr)
                    return mutant, False
                began = time.monotonic()
                killer = killers.get((mutant.path, mutant.function))
                readers = (
                    trace.tests_of(path, _lines_reading(path, mutant.line))
                    if _span_of(mutant, functions) is None
                    else set()
                )
                ordered = sorted(tests, key=lambda t: (t != killer, t not in readers, trace.durations.get(t, 1.0)))
                timeout = 3 * sum(trace.durations.get(t, 1.0) for t in ordered) + 30
                patch = _patch_of(mutant, functions, trace)
                worker, tree = trees.get()
                target = tree / mutant.path
                try:
                    target.write_text(mutant.source)  # for the fresh kind, and tests that start a process
                    passed = True
                    # The next database, and the next stage, only when everything before passed.
                    runs = [(db, stage) for db in _databases(mutant.path, worker) for stage in _stages(ordered)]
                    for database, stage in runs:
                        job = {"args": [*PYTEST[2:], *stage], "timeout": timeout, "database": database}
                        answer = {"unpatchable": True}
                        if patch and not database:
                            answer = ask(tree, "preloaded", {**job, "patch": patch})
                        if answer.get("unpatchable"):
                            answer = ask(tree, "fresh", job)
                        passed = answer["passed"]
                        if not passed:
                            if answer.get("failed"):
                                killers[(mutant.path, mutant.function)] = answer["failed"]
                            break
                finally:
                    shutil.copy2(ROOT / mutant.path, target)
                    trees.put((worker, tree))
                print(
                    f"  {'killed  ' if not passed else 'SURVIVED'} {mutant.path}:{mutant.line} {mutant.change}"
                    f"  ({time.monotonic() - began:.1f} s, {len(tests)} tests{'' if patch else ', fresh import'})",
                    file=sys.stderr,
                )
                return mutant, not passed

            pool = ThreadPoolExecutor(workers)
            try:
                outcomes = list(pool.map(attempt, mutants))
            finally:
                pool.shutdown(cancel_futures=True)  # Ctrl-C: finish the running mutants, start no more
            live = [m for m, killed in outcomes if not killed]
            aside = [(m, entry) for m in live if (entry := _is_set_aside(m))]
            counted = len(mutants) - len(aside)
            killed = counted - (len(live) - len(aside))
            rows.append((path, counted, killed, len(aside), time.monotonic() - module_began))
            survivors += [m for m in live if not _is_set_aside(m)]
            set_aside += aside
        for fork in forks.values():
            fork.stdin.close()
            fork.wait()
    finally:
        while not trees.empty():
            shutil.rmtree(trees.get()[1], ignore_errors=True)
        if any(path in config.POSTGRES for path in paths):
            _drop_postgres_databases()

    print("\n| module | mutants | killed | score | set aside | time |\n|---|---:|---:|---:|---:|---:|")
    for path, counted, killed, aside, seconds in rows:
        score = f"{math.floor(1000 * killed / counted) / 10:g}" if counted else "100"  # 99.7, never rounded up to 100
        print(f"| `{path}` | {counted} | {killed} | {score} % | {aside} | {seconds / 60:.1f} min |")
    print(f"\ntotal {(time.monotonic() - began) / 60:.1f} min on {workers} workers (tracing included)")
    if survivors:
        print("\nSurvivors (no test fails with this change):")
        for m in survivors:
            print(f"  {m.path}:{m.line} in {m.function or '(module)'}  {m.change}    | {m.text[:90]}")
    if set_aside:
        print("\nSet aside as equivalent (tests/mutation/config.py):")
        for m, entry in set_aside:
            print(f"  {m.path}:{m.line} in {m.function or '(module)'}  {m.change}    — {entry['reason']}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", choices=list(config.MODULES), help="only this module (repeatable)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--list", action="store_true", help="print the mutants and stop")
    parser.add_argument(
        "--tests", nargs="+", default=[], help="trace only these test paths (a quick look; scores need the whole suite)"
    )
    args = parser.parse_args()
    paths = args.module or list(config.MODULES)
    if args.list:
        stale = []
        for path in paths:
            mutants = mutants_of(path)
            for m in mutants:
                aside = " (set aside)" if _is_set_aside(m) else ""
                print(f"{m.path}:{m.line} in {m.function or '(module)'}  {m.change}{aside}    | {m.text[:90]}")
            stale += stale_set_asides(path)
        for entry in stale:
            print(
                f"stale set-aside (matches no mutant): {entry['file']} {entry['function']}: {entry['text']!r} {entry['change']}"
            )
        return 1 if stale else 0
    return run(paths, args.workers, args.tests)


if __name__ == "__main__":
    sys.exit(main())
