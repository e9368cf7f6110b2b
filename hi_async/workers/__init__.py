"""Worker processes: each runs frames of a download (fetch, decode, verify, write) on its
own event loop and interpreter, so that a download uses every core. The run that owns
them keeps discovery, the journal, progress and the summary."""
