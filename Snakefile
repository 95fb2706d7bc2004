# genofm: reference -> regions -> tokens -> pretraining -> embeddings -> probes -> variant scores.
# Stages live in rules/*.smk; helpers in rules/common.smk; config/schema.yaml documents every key.
from snakemake.utils import min_version, validate

from genofm.schema import check_config_keys

min_version("9.0")


# The embedded demo, unless the user names a config (`--configfile`): then theirs alone.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# Unknown keys first, one line each (the schema's own message prints the whole schema).
check_config_keys(config, workflow.overwrite_configfiles)
validate(config, "config/schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/reference.smk"
include: "rules/alignment.smk"
include: "rules/regions.smk"
include: "rules/tokenize.smk"
include: "rules/pretrain.smk"
include: "rules/models.smk"
include: "rules/embed.smk"
include: "rules/probe.smk"
include: "rules/variants.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
