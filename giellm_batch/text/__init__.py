"""Japanese text: sentence segmentation with offsets (fugashi/MeCab), span grounding, entity keys.

Modules: segmentation (Segmenter, PromptBudget), offsets (an answer's spans -> character offsets
in the article), entity_keys (normalised keys for joining entities across articles).
May import: giellm, isolation.
"""
