"""`python -m pipelines <verb> ...` is the `lipseq` command."""

from pipelines.cli import main

main()
