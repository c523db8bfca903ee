"""Data the project generates for its demo, tests and benchmarks (nothing is downloaded).

faces: synthetic talking faces whose mouths follow GRID-grammar text (video corpora).
toy_language: a rule-based toy language pair (parallel text corpora).
"""
