"""What a trained model serves: export to SavedModel, and the inference wrappers.

saved_model: write and read exports (assets.extra/lipseq.json beside the graph).
export: a training run -> an export, the task deciding the signatures.
translator, transcriber: the in-graph wrappers (strings -> translations, frames -> text)
and their use from Python on raw input (files of text, raw videos).
"""
