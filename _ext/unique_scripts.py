"""Drop repeated <script> entries from each page.

sphinx-thebe registers its inline configuration (`const THEBE_JS_URL = ...`)
once per read phase; with Jupyter Book 1.x the page gets it twice and the
second copy is a JavaScript error ("Identifier 'THEBE_JS_URL' has already been
declared"). Keeping the first of identical entries removes the error.
"""


def keep_first(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # the two copies differ only in filename: None in one, "" in the other
        key = (str(getattr(script, "filename", script) or ""),
               tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique


def setup(app):
    app.connect("html-page-context", keep_first, priority=10000)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
