"""What users call on trained models: export a training run, batch transcription, the HTTP
service and its page.

export: a training run -> an export, the task deciding the signatures.
batch: many raw videos -> JSON Lines and subtitles, through the export's front door.
service: the FastAPI app (static/ holds its page).
"""
