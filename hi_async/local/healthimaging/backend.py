"""The HealthImaging rules, free of HTTP: :class:`Backend`, one per account and region.

The rules live in :mod:`.rules`, one module per group of operations: ``datastores``,
``import_jobs``, ``tags``, ``image_sets`` (reading image sets and writing versions),
``instances`` (merging imported instances), ``changes`` (update, copy, delete) and
``search``. Each rules class builds on :class:`.BackendState` (the records, their
persistence and the states that change over time) or on the rules it needs;
:class:`Backend` combines them.
"""

from __future__ import annotations

from .rules.changes import ChangeRules
from .rules.import_jobs import ImportJobRules
from .rules.instances import InstanceRules
from .rules.search import SearchRules
from .rules.tags import TagRules


class Backend(ImportJobRules, TagRules, SearchRules, InstanceRules, ChangeRules):
    """The state and rules of HealthImaging for one account in one region."""
