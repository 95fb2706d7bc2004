"""Research and generator code, outside the runtime package (genofm): the demo-data
generator (`python -m tools.demo`) and the benchmark-only references of the model-quality
benchmark. Run from the repository root, which puts this package on sys.path."""
