"""Developer tools, not shipped in the plugin: the sample-data generator and the REST driver of `make run`."""
