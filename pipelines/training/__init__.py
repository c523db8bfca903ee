"""Training, shared by every task: the loop, schedules, distribution, metrics, restoring runs.

loop.train(config, workdir) asks the task (pipelines/tasks) for its model, data and metric,
and the model for its loss; nothing here knows which task it is training.
"""
