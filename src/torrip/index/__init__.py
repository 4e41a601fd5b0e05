"""Index access: links from project pages and the metadata of the files they offer."""
