"""FL jobs for fl-sandbox: strategies, the training core, local federation, Azure ML pipelines.

Kept import-light on purpose: infrastructure code imports ``fl_jobs.run.manifest`` without
paying for torch.
"""
