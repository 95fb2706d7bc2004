"""genofm: genomic foundation models, the shared module behind the Snakemake workflow."""

__version__ = "0.1.0"
