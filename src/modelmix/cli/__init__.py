"""The `modelmix` command."""
