"""The product's configuration: the bottom layer every part is built on (docs/architecture.md)."""
