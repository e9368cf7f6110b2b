"""The rules :class:`.Backend` combines, one module per group of operations.

``state`` holds the records, their persistence and the states derived from the clock;
``datastores`` builds on it and every other rules class on ``datastores`` or
``image_sets``. No module here imports the backend; ``documents`` and
``metadata_updates`` work on the metadata document alone.
"""
