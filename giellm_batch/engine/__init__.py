"""The vLLM engine on an executor: one warm engine per worker process and GPU, reused across Spark tasks.

Modules: vllm_engine (EngineSpec, the cached engine, continuous feeding, sampling params),
placement (GPU assignment from Spark's resources, the stage's resource profile).
May import: nothing else in giellm_batch. vllm and torch are imported inside functions only.
"""
