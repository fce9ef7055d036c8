"""Providers: the speech, language and embedding models pipelines call (``base`` holds the interfaces,
``registry.build_providers`` chooses the implementations from the settings). Importing this package imports
nothing heavy: offline models load only when chosen."""
