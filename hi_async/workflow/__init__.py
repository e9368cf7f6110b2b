"""The seed workflow: deploy infra/, copy studies, import them, download, report, clean up.

``run.run_workflow`` is the entry point; the other modules are its stages, each usable and
testable on its own against any endpoint (the local stack or AWS).
"""
