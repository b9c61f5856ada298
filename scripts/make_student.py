"""Generate the student notebooks exercises/NN_name.md from solutions/NN_name.md.

    python scripts/make_student.py           # (re)write every exercises/NN_name.md
    python scripts/make_student.py --check   # exit 1 if one is out of date or leaks
                                             # solution text (CI, tests)
    python scripts/make_student.py solutions/08_backward.md   # only these
    python scripts/make_student.py --student-toc _build/_toc_student.yml
        # also write _toc.yml without the solutions/ pages (the student site)

The solution notebook is the one source. Its markers (see the exercise format):

* Code, inside any code cell, at any indentation:

      # BEGIN SOLUTION                # or  "# BEGIN SOLUTION: table = None"
      # HINT: text shown to the student (any number of HINT lines)
      ... solution code ...
      # END SOLUTION

  becomes, at the BEGIN line's indentation,

      # TODO: text shown to the student
      raise NotImplementedError("TODO: text shown ...")

  or, with a replacement on the BEGIN line, `table = None  # TODO: text ...`.
  Only the HINT lines of a block survive.

* A code cell tagged `hidden-check` (give it `remove-cell` too, to keep it out
  of the book) is left out of the student notebook: it holds checks that only
  scripts/grade.py runs.

* Prose: everything from a `{solution-start}` directive through the matching
  `{solution-end}` directive, markdown and code cells alike, becomes one
  markdown cell "**Your answer.** ...". So does a one-piece `{solution}`
  directive. Text before and after them in the same cell stays.

Everything else is copied as is (the Colab setup cell included). Labels that
the notebook defines ((label)= targets, :label: and :name: options, mystnb
figure names) get the suffix "-student" in the student notebook, references to
them too, so that both notebooks can sit in one book without duplicate labels.
"""
import argparse
import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
LABEL_SUFFIX = "-student"
HIDDEN_TAG = "hidden-check"   # a solution cell with this tag runs only in the grader
ANSWER_KEY = "answer"         # in the grader's template: this code cell is the student's

BEGIN = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\b\s*(?::\s*(?P<replacement>.*?))?\s*$")
END = re.compile(r"^[ \t]*#\s*END SOLUTION\b\s*$")
HINT = re.compile(r"^[ \t]*#\s*HINT:\s?(?P<text>.*?)\s*$")
MARKER = re.compile(r"#\s*(BEGIN|END) SOLUTION")
FENCE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,}|:{3,})\s*\{(?P<name>solution(?:-start|-end)?)\}")
TARGET = re.compile(r"^\((?P<label>[^()\s]+)\)=\s*$", re.M)
OPTION_LABEL = re.compile(r"^[ \t]*:(?:label|name):[ \t]+(?P<label>\S+)[ \t]*$", re.M)

ANSWER_CELL = ("**Your answer.** Write your answer here: replace this text with your "
               "explanation, and add code cells below it where you need them.")
MAX_LINE = 79


class MarkerError(ValueError):
    """A solution block that is not closed, or closed without being opened."""


# ----------------------------------------------------------------------------- code

def todo_lines(indent, replacement, hints):
    """The lines that stand in for one BEGIN/END SOLUTION block."""
    if replacement:
        one_line = f"{indent}{replacement}  # TODO: {hints[0]}" if len(hints) == 1 else ""
        if one_line and len(one_line) <= MAX_LINE:
            return [one_line]
        comments = [f"{indent}# TODO: {h}" if i == 0 else f"{indent}#       {h}"
                    for i, h in enumerate(hints)]
        return comments + [f"{indent}{replacement}  # TODO"]
    hints = hints or ["write this part"]
    comments = [f"{indent}# TODO: {h}" if i == 0 else f"{indent}#       {h}"
                for i, h in enumerate(hints)]
    return comments + [f"{indent}raise NotImplementedError({short_message(indent, hints[0])})"]


def short_message(indent, hint):
    """A Python string literal "TODO: hint", cut at a word so the line fits."""
    room = max(24, MAX_LINE - len(indent) - len('raise NotImplementedError("TODO: ")'))
    text = hint if len(hint) <= room else hint[:room - 3].rsplit(" ", 1)[0] + " ..."
    return '"TODO: ' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def transform_code(source, where):
    """Return (student source, secret lines, hint lines) of one code cell."""
    out, secret, hints_seen = [], [], []
    block = None  # (indent, replacement, hints, first line number)
    for number, line in enumerate(source.split("\n"), 1):
        begin, end, hint = BEGIN.match(line), END.match(line), HINT.match(line)
        if begin:
            if block:
                raise MarkerError(f"{where}, line {number}: BEGIN SOLUTION inside the block "
                                  f"opened on line {block[3]} (close it with # END SOLUTION)")
            block = (begin["indent"], begin["replacement"], [], number)
        elif end:
            if not block:
                raise MarkerError(f"{where}, line {number}: END SOLUTION without BEGIN SOLUTION")
            out.extend(todo_lines(*block[:3]))
            hints_seen.extend(block[2])
            block = None
        elif block and hint:
            block[2].append(hint["text"])
        elif block:
            secret.append(line)
        elif MARKER.search(line):
            raise MarkerError(f"{where}, line {number}: unreadable marker {line.strip()!r} "
                              "(write '# BEGIN SOLUTION', '# BEGIN SOLUTION: value' or "
                              "'# END SOLUTION' alone on its line)")
        else:
            out.append(line)
    if block:
        raise MarkerError(f"{where}: BEGIN SOLUTION on line {block[3]} is never closed "
                          "(add # END SOLUTION)")
    return "\n".join(out), secret, hints_seen


# ------------------------------------------------------------------------- markdown

def split_markdown(source, in_solution, where):
    """Cut a markdown cell at solution directives.

    Returns (pieces, in_solution, secret lines): pieces is a list of ("text", str)
    and ("answer", None) in order; in_solution says whether the cell ends inside
    a {solution-start} ... {solution-end} span.
    """
    lines = source.split("\n")
    pieces, kept, secret = [], [], []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        name = match["name"] if match else None
        if name in ("solution", "solution-start") and in_solution:
            raise MarkerError(f"{where}: {{{name}}} inside an open {{solution-start}}")
        if name == "solution-end" and not in_solution:
            raise MarkerError(f"{where}: {{solution-end}} without {{solution-start}}")
        if name:
            closing = close_fence(lines, i, match["fence"], where)
            secret.extend(lines[i:closing + 1])
            if name == "solution-start":
                if kept:
                    pieces.append(("text", "\n".join(kept)))
                kept = []
                in_solution = True
            elif name == "solution-end":
                pieces.append(("answer", None))
                in_solution = False
            else:  # a one-piece {solution} directive
                if kept:
                    pieces.append(("text", "\n".join(kept)))
                kept = []
                pieces.append(("answer", None))
            i = closing + 1
            continue
        (secret if in_solution else kept).append(lines[i])
        i += 1
    if kept:
        pieces.append(("text", "\n".join(kept)))
    return pieces, in_solution, secret


def close_fence(lines, start, fence, where):
    """Index of the line that closes the directive opened on lines[start]."""
    closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
    for j in range(start + 1, len(lines)):
        if closing.match(lines[j]):
            return j
    raise MarkerError(f"{where}: the directive {lines[start].strip()!r} is not closed "
                      f"by a line of {fence} in the same cell")


# ------------------------------------------------------------------------- notebook

def new_markdown(text, metadata=None):
    cell = nbformat.v4.new_markdown_cell(text.strip("\n"))
    cell.metadata.update(metadata or {})
    return cell


def transform(nb, source_name, for_grader=False):
    """Return (student notebook, secret lines, public text) for a solution notebook.

    for_grader: keep the hidden check cells, and mark each code cell that holds
    the student's answer with metadata {ANSWER_KEY: True} (the grader's template).
    """
    cells, secret, public = [], [], []
    in_solution, start_cell = False, None
    for index, cell in enumerate(nb.cells, 1):
        where = f"{source_name}, cell {index}"
        if cell.cell_type == "code":
            hidden = HIDDEN_TAG in cell.metadata.get("tags", [])
            if in_solution or (hidden and not for_grader):
                secret.extend(cell.source.split("\n"))
                continue
            source, code_secret, hints = transform_code(cell.source, where)
            secret.extend(code_secret)
            public.append(source)
            public.extend(hints)
            metadata = dict(cell.metadata)
            if for_grader and source != cell.source:
                metadata[ANSWER_KEY] = True
            cells.append(nbformat.v4.new_code_cell(source, metadata=metadata))
            continue
        if cell.cell_type != "markdown":  # raw cells: copied
            public.append(cell.source)
            cells.append(cell)
            continue
        was_in = in_solution
        pieces, in_solution, md_secret = split_markdown(cell.source, in_solution, where)
        if in_solution and not was_in:
            start_cell = index
        secret.extend(md_secret)
        for kind, text in pieces:
            if kind == "answer":
                cells.append(new_markdown(ANSWER_CELL))
            elif text.strip():
                public.append(text)
                cells.append(new_markdown(text, cell.metadata))
    if in_solution:
        raise MarkerError(f"{source_name}: the {{solution-start}} in cell {start_cell} is "
                          "never closed by a {solution-end}")
    student = nbformat.v4.new_notebook(metadata=dict(nb.metadata))
    student.cells = cells
    return student, secret, "\n".join(public)


def defined_labels(text):
    return set(TARGET.findall(text)) | set(OPTION_LABEL.findall(text))


def label_pattern(label):
    return re.compile(rf"(?<![\w-]){re.escape(label)}(?![\w-])")


def rename_labels(student, secret_text, source_name):
    """Suffix every label the student notebook defines, and the references to them."""
    text = "\n".join(c.source for c in student.cells if c.cell_type == "markdown")
    labels = defined_labels(text)
    for cell in student.cells:
        figure = cell.metadata.get("mystnb", {})
        for value in figure.values() if isinstance(figure, dict) else []:
            if isinstance(value, dict) and isinstance(value.get("name"), str):
                labels.add(value["name"])
    hidden = defined_labels(secret_text) - labels
    for label in hidden:  # defined only inside a solution: the student text must not cite it
        if any(label_pattern(label).search(c.source) for c in student.cells
               if c.cell_type == "markdown"):
            raise MarkerError(f"{source_name}: the label {label!r} is defined inside a "
                              "solution block but the exercise text refers to it")
    for label in sorted(labels, key=len, reverse=True):
        pattern = label_pattern(label)
        for cell in student.cells:
            if cell.cell_type == "markdown":
                cell.source = pattern.sub(label + LABEL_SUFFIX, cell.source)
            figure = cell.metadata.get("mystnb", {})
            for value in figure.values() if isinstance(figure, dict) else []:
                if isinstance(value, dict) and value.get("name") == label:
                    value["name"] = label + LABEL_SUFFIX


def header_of(text):
    """The YAML front matter (with its --- lines) at the top of a MyST notebook."""
    match = re.match(r"---\n.*?\n---\n", text, re.S)
    if not match:
        raise MarkerError("no jupytext front matter (--- ... ---) at the top")
    return match.group(0)


def student_text(solution_path):
    """The student notebook's text, and the solution's secret lines and public text."""
    solution_path = Path(solution_path)
    text = solution_path.read_text()
    name = display_path(solution_path)
    nb = jupytext.reads(text, fmt="md:myst")
    student, secret, public = transform(nb, name)
    rename_labels(student, "\n".join(secret), name)
    title = next((line[2:].strip() for c in nb.cells if c.cell_type == "markdown"
                  for line in c.source.split("\n") if line.startswith("# ")), solution_path.stem)
    note = (f"<!-- This is the student version of \"{title}\", generated by "
            f"scripts/make_student.py from {name}; do not edit it by hand: edit the "
            "solution and run `python scripts/make_student.py`. -->")
    student.cells.insert(0, new_markdown(note))
    out = jupytext.writes(student, fmt="md:myst")
    out = header_of(text) + out[len(header_of(out)):]
    return out, secret, public


def grader_template(solution_path):
    """The student notebook as the grader runs it: hidden check cells kept, answers marked."""
    solution_path = Path(solution_path)
    nb = jupytext.reads(solution_path.read_text(), fmt="md:myst")
    return transform(nb, display_path(solution_path), for_grader=True)[0]


def display_path(path):
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def secret_lines(secret, public):
    """The solution lines that must not appear in the student notebook."""
    lines = set()
    for line in secret:
        stripped = line.strip()
        if len(stripped) < 6 or not re.search(r"[A-Za-z0-9]", stripped):
            continue  # "```", "else:", ")" ...: too short to tell anything away
        if stripped.startswith("#") and HINT.match(stripped):
            continue
        if stripped in public:
            continue  # the same line is also outside the solution: not a secret
        lines.add(stripped)
    return lines


def leaks(secret, public, student):
    """Secret solution lines found, as whole lines, in the student notebook's text
    (a short secret line such as "answer." may well occur inside a public one)."""
    shown = {line.strip() for line in student.split("\n")}
    return sorted(line for line in secret_lines(secret, public) if line in shown)


def pairs(solutions=SOLUTIONS, exercises=EXERCISES, only=None):
    """(solution, exercise) paths for every solution notebook NN_name.md (or those in only)."""
    found = sorted(Path(solutions).glob("*.md")) if not only else [Path(p) for p in only]
    return [(path, Path(exercises) / path.name) for path in found
            if re.match(r"\d\d_", path.name)]


def check(solutions=SOLUTIONS, exercises=EXERCISES, only=None):
    problems = []
    for solution, exercise in pairs(solutions, exercises, only):
        expected, secret, public = student_text(solution)
        if not exercise.exists():
            problems.append(f"{display_path(exercise)}: missing")
            continue
        actual = exercise.read_text()
        if actual != expected:
            problems.append(f"{display_path(exercise)}: out of date with "
                            f"{display_path(solution)}")
        for line in leaks(secret, public, actual):
            problems.append(f"{display_path(exercise)}: leaks solution text {line!r}")
    sources = {s.name for s, _ in pairs(solutions, exercises)}
    for exercise in [] if only else sorted(Path(exercises).glob("*.md")):
        if re.match(r"\d\d_", exercise.name) and exercise.name not in sources:
            problems.append(f"{display_path(exercise)}: no solutions/{exercise.name} to "
                            "generate it from")
    return problems


def build(solutions=SOLUTIONS, exercises=EXERCISES, only=None):
    Path(exercises).mkdir(exist_ok=True)
    for solution, exercise in pairs(solutions, exercises, only):
        text, secret, public = student_text(solution)
        found = leaks(secret, public, text)
        if found:  # a bug in this script, not in the notebook
            raise MarkerError(f"{display_path(solution)}: generated text leaks {found[0]!r}")
        if not exercise.exists() or exercise.read_text() != text:
            exercise.write_text(text)
            print("written:", display_path(exercise))


def without_solutions(entries):
    """A jupyter-book toc list with every solutions/ page (and emptied part) removed."""
    kept = []
    for entry in entries:
        if not isinstance(entry, dict):
            kept.append(entry)
            continue
        if str(entry.get("file", "")).startswith("solutions/"):
            continue
        entry = dict(entry)
        for key in ("parts", "chapters", "sections"):
            if key in entry:
                entry[key] = without_solutions(entry[key])
                if not entry[key]:
                    del entry[key]
        if "file" in entry or "url" in entry or any(
                k in entry for k in ("parts", "chapters", "sections")):
            kept.append(entry)
    return kept


def write_student_toc(out, toc=ROOT / "_toc.yml"):
    """Write the book's toc without the solutions, for `jupyter-book build --toc out`."""
    import yaml
    data = yaml.safe_load(Path(toc).read_text())
    for key in ("parts", "chapters", "sections"):
        if key in data:
            data[key] = without_solutions(data[key])
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(f"# Generated by scripts/make_student.py from {Path(toc).name}: "
                         "the book without solutions/.\n"
                         + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", type=Path,
                        help="solution notebooks to process (default: every solutions/NN_*.md)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a student notebook is out of date or leaks solution text")
    parser.add_argument("--student-toc", metavar="OUT", type=Path,
                        help="also write _toc.yml without solutions/ pages to OUT")
    parser.add_argument("--solutions", default=SOLUTIONS, type=Path)
    parser.add_argument("--exercises", default=EXERCISES, type=Path)
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = check(args.solutions, args.exercises, args.only)
            for line in problems:
                print(line)
            if problems:
                print("run: python scripts/make_student.py")
            return 1 if problems else 0
        build(args.solutions, args.exercises, args.only)
        if args.student_toc:
            write_student_toc(args.student_toc)
            print("written:", display_path(args.student_toc))
    except MarkerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
