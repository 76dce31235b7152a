"""What users touch: the command line, derain, the memory explorer, the user study, the book
runner, the benchmark and export."""
