"""Training: labelled data for GIELLM and the mixed-task fine-tuning job.

GIELLM is itself a fine-tuning recipe: one causal LM trained on several extraction tasks at once,
all in the same compact prompt/output format. This subpackage turns span-annotated records into
that format (`examples`), generates a labelled Japanese news-style corpus from templates over
gazetteers written in this repository (`synthetic`, `gazetteer`), and trains a model on the mix
with transformers' `Trainer`, fully or with a LoRA adapter (`finetune`, `finetune_config`). The
extraction core never imports this package; this package imports the core's prompt builder,
renderer and parser so training and serving share one format.
"""
