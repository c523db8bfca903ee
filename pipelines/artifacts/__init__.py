"""What training leaves on disk: a run's workdir (config and checkpoints) and exports (a
SavedModel with its info file). The bottom layer of pipelines/: it needs no task."""
