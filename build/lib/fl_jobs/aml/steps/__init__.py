"""Entry scripts of the Azure ML components: parse paths and parameters, call the FL core."""
