"""The media service: uploaded images validated, oriented, stripped and turned into variants."""
