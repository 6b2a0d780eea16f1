"""FL examples: data loader + model + loss + metric, looked up by name in ``registry``."""
