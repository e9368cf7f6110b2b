"""The pipeline's stages, one module each, each owning its loop
(``async def run(receive, send, ..., ctx)``): metadata → fetch → decode → sink.
What they share for one run is a :class:`~hi_async.stages.context.RunContext`."""
