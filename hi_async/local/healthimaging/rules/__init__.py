"""The rules :class:`.Backend` combines, one module per group of operations.

``state`` holds the records, their persistence and the states derived from the clock;
each rules class builds on it (``datastores``) or on the rules it needs, and no module
here imports the backend. ``documents`` and ``metadata_updates`` work on the metadata
document alone.
"""
