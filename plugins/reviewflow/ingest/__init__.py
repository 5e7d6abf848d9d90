"""Ingest stage: crawl landed review files (parse), validate them with GX (quarantine bad rows), curate the good ones."""
